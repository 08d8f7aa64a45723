// The scale phase's cache budget (issue 14's --cache-bytes): how many bytes the metcd nodes get,
// whether the node in this tree takes the flag at all (it refuses unknown flags, and the flag
// comes with the tiered storage), and the `cache` object of a node's /status, when it has one.

import type { Engine } from './metcd.ts';
import { runCli } from '../support/node-process.ts';
import type { CacheStatus } from '../../worker/peer/outcomes.ts';

/** The engines whose key space lives in their table, with a bounded cache in front. */
export const CACHED_ENGINES: readonly Engine[] = ['sqlite', 'leveldb'];
export const DEFAULT_CACHE_PERCENT = 10;

/** P% of the loaded values' bytes (keys × valueBytes), the issue's "10% cache": whole bytes, ≥ 1. */
export function cacheBytesFor(keys: number, valueBytes: number, percent: number): number {
  if (!(percent > 0 && percent <= 100)) throw new RangeError(`cache percent must be in (0, 100], got ${percent}`);
  return Math.max(1, Math.round((keys * valueBytes * percent) / 100));
}

/** Whether a node's --help lists --cache-bytes. */
export function helpHasCacheFlag(help: string): boolean {
  return /^\s*--cache-bytes\s/m.test(help);
}

/** Runs `metcd --help` once: does this tree's node take --cache-bytes? */
export async function nodeTakesCacheFlag(): Promise<boolean> {
  const r = await runCli(['--help'], 30_000);
  if (r.code !== 0) throw new Error(`metcd --help exited ${r.code}: ${(r.stderr || r.stdout).slice(0, 300)}`);
  return helpHasCacheFlag(r.stdout);
}

/** The node arguments for a budget: only on the cached engines (memory stays all in memory). */
export function cacheArgs(engine: Engine, cacheBytes: number | null): string[] {
  return cacheBytes !== null && CACHED_ENGINES.includes(engine) ? ['--cache-bytes', String(cacheBytes)] : [];
}

/** The `cache` object of a node's /status (worker/peer/outcomes.ts). */
export type { CacheStatus };

const CACHE_COUNTS = ['capacityBytes', 'bytes', 'entries', 'hits', 'misses', 'evictions', 'pending'] as const;

/** The `cache` object of a /status answer; null when absent (a node without the tiers). */
export function cacheOf(status: object): CacheStatus | null {
  const c = (status as { cache?: unknown }).cache;
  if (c === undefined || c === null) return null;
  if (typeof c !== 'object') throw new Error(`/status cache is not an object: ${JSON.stringify(c)}`);
  const fields = c as Record<string, unknown>;
  for (const f of CACHE_COUNTS) {
    if (typeof fields[f] !== 'number') throw new Error(`/status cache.${f} is not a number: ${JSON.stringify(c)}`);
  }
  if (typeof fields['hitRate'] !== 'number' && fields['hitRate'] !== null)
    throw new Error(`/status cache.hitRate is neither a number nor null: ${JSON.stringify(c)}`);
  return c as CacheStatus;
}
