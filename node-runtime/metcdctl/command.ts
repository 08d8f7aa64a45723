// What every metcdctl command is made of: its context, argument and flag readers, output
// (simple, json or table), and waiting for Ctrl-C. As etcdctl: errors are printed `Error: …` on
// stderr with exit code 1; bad arguments exit 128 (etcdctl's ExitBadArgs).

import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import Table from 'cli-table3';
import { MetcdError, type MetcdClient } from '../../worker/client/index.ts';
import { BackupFormatError } from '../../worker/backup/format.ts';

export const EXIT_ERROR = 1;
export const EXIT_BAD_ARGS = 128;

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | undefined>;
export type WriteOut = 'simple' | 'json' | 'table';

/** Bad arguments: exit 128. */
export class UsageError extends Error {}

export interface Ctx {
  client: MetcdClient;
  values: Values;
  args: string[];
  /** The words after the command's own positionals, flags and all (`lock NAME CMD ARGS…`). */
  passThrough: string[];
  writeOut: WriteOut;
  json: boolean;
  /** --command-timeout: the deadline of each request the command makes. */
  timeoutMs: number;
  out: (line: string) => void;
}

export interface Command {
  usage: string;
  options?: Options;
  /** Parse only this many positionals: what follows (a command to run, its flags) is passed
   *  through untouched, as is everything after `--`. */
  passThroughAfter?: number;
  /** Resolves to the exit code (0 when nothing is returned). */
  run(ctx: Ctx): Promise<number | void>;
}

/** Prints `rows` under `head` as a table (cli-table3, no colours: output is often piped). */
export function table(ctx: Ctx, head: string[], rows: Array<Array<string | number | boolean>>): void {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map(String));
  ctx.out(t.toString());
}

export function message(err: unknown): string {
  if (err instanceof MetcdError) {
    if (err.code === 'timeout') return `context deadline exceeded (${err.message})`;
    return err.status === 0 ? err.message : `${err.message} (${err.status} ${err.code})`;
  }
  if (err instanceof BackupFormatError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

export function intFlag(values: Values, name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(v);
}

export function intArg(args: string[], at: number, missing: string): number {
  const v = args[at];
  if (v === undefined) throw new UsageError(missing);
  if (!/^\d+$/.test(v)) throw new UsageError(`bad argument ${JSON.stringify(v)}: expected a non-negative integer`);
  return Number(v);
}

/** '5s', '500ms', '1m', '1h', or a bare number of seconds. */
export function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (m === null) throw new UsageError(`bad duration ${JSON.stringify(text)} (e.g. 5s, 500ms)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : m[2] === 'h' ? n * 3_600_000 : n * 1000;
}

/** A signal aborted by Ctrl-C or SIGTERM. */
export function interrupted(): AbortController {
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return ctl;
}

export function untilAborted(signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(undefined);
    signal.addEventListener('abort', () => resolve(undefined), { once: true });
  });
}

/** Waits `ms`; false when interrupted first. */
export function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => resolve(true), ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve(false);
      },
      { once: true },
    );
  });
}
