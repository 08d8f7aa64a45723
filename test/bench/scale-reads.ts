// The scale phase's reads (issue 14: "serve reads at ≥ 50% of the all-hot rate with a 10% cache
// and a Zipfian (s = 0.99) key choice"): after the load, R reads (200,000 by default) from C
// keep-alive connections to the leader with the key drawn Zipfian over all N loaded keys
// (zipf.ts; the popular keys scattered over the key space), and R more over the first 1,000
// keys drawn uniformly (a set every cache holds: the all-hot rate). The two alternate in four
// rounds after an untimed warm-up (a tenth as many Zipfian reads, one read of each hot key), so
// both are steady-state rates taken under the same conditions. Every answer must be a 200; one
// read in SAMPLE_EVERY is parsed and its value compared with scaleValue(i), so a wrong answer
// is a problem, not a fast read.
//
// The read level: metcd's default (`GET /key/<k>`, served by the leader while its lease holds)
// against etcd's default range (`serializable: false`, a ReadIndex round per batch). Both are
// linearizable reads answered by a leader that knows it still leads (etcd has no lease read,
// so its default is the nearest one); neither is a follower's possibly stale local read.
//
// The client is this Node process (undici, one pool of C connections): its CPU is reported, as
// on 2 cores a client near one core may be what limits both rates, and then the ratio says less.

import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { forEachParallel, fetchJson } from './http.ts';
import { cacheOf, type CacheStatus } from './scale-cache.ts';
import { failedRow, scaleKey, scaleValue, type ScaleCluster } from './scale-common.ts';
import { ZipfSampler, rankSpreader } from './zipf.ts';

export const ZIPF_EXPONENT = 0.99;
export const HOT_KEYS = 1000;
/** One read in this many has its value checked (parsing every answer would cost client CPU). */
const SAMPLE_EVERY = 16;
const READ_TIMEOUT_MS = 10_000;
const ROUNDS = 4;

export interface ScaleReadsOptions {
  keys: number;
  valueBytes: number;
  reads: number;
  clients: number;
  seed?: number;
}

export interface ReadRate {
  reads: number;
  ms: number;
  readsPerS: number;
  /** Values parsed and compared with scaleValue. */
  checked: number;
  /** CPU of this process (the client) over the run, in cores. */
  clientCores: number;
}

export interface ScaleReadsResult {
  zipf: ReadRate;
  hot: ReadRate;
  /** zipf.readsPerS / hot.readsPerS. */
  ratio: number;
  clients: number;
  /** Per node after the reads: its /status cache (null: the node reports none). */
  cache: Array<{ id: string; cache: CacheStatus | null }>;
  /** The leader's hit rate over the timed Zipfian reads (null: no cache reported). */
  zipfLeaderHitRate: number | null;
  problems: string[];
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** One read of key i over `pool`: its value when `parse`, else undefined (the body drained). */
async function readKey(pool: Pool, system: ScaleCluster['system'], i: number, parse: boolean): Promise<string | undefined> {
  const key = scaleKey(i);
  const res =
    system === 'metcd'
      ? await pool.request({ method: 'GET', path: `/key/${key}`, headersTimeout: READ_TIMEOUT_MS })
      : await pool.request({
          method: 'POST',
          path: '/v3/kv/range',
          body: JSON.stringify({ key: b64(key) }),
          headers: { 'content-type': 'application/json' },
          headersTimeout: READ_TIMEOUT_MS,
        });
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    throw new Error(`read ${key}: HTTP ${res.statusCode} ${text.slice(0, 160)}`);
  }
  if (!parse) {
    await res.body.dump({ limit: 1 << 20 });
    return undefined;
  }
  if (system === 'metcd') return ((await res.body.json()) as Record<string, string>)[key];
  const v = ((await res.body.json()) as { kvs?: Array<{ value?: string }> }).kvs?.[0]?.value;
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString();
}

/** What one timed batch of reads took. */
interface Chunk {
  reads: number;
  ms: number;
  checked: number;
  clientCpuMs: number;
}

/** `count` reads of keys pick(), C at a time; timed, one in SAMPLE_EVERY checked, the client's CPU taken. */
async function timedReads(
  pool: Pool,
  system: ScaleCluster['system'],
  count: number,
  clients: number,
  valueBytes: number,
  pick: () => number,
  problems: string[],
): Promise<Chunk> {
  let checked = 0;
  let wrong = 0;
  let firstWrong = '';
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  await forEachParallel(count, clients, async (n) => {
    const i = pick();
    const check = n % SAMPLE_EVERY === 0;
    const got = await readKey(pool, system, i, check);
    if (!check) return;
    checked++;
    if (got !== scaleValue(i, valueBytes)) {
      wrong++;
      firstWrong ||= `${scaleKey(i)}: ${got === undefined ? 'missing' : `read ${JSON.stringify(got.slice(0, 40))}`}`;
    }
  });
  const ms = performance.now() - began;
  const cpu = process.cpuUsage(cpuBefore);
  if (wrong > 0) problems.push(`${wrong} of ${checked} checked reads answered a wrong value (first: ${firstWrong})`);
  return { reads: count, ms, checked, clientCpuMs: (cpu.user + cpu.system) / 1000 };
}

/** The rate of several chunks taken together. */
function rateOf(chunks: readonly Chunk[]): ReadRate {
  const sum = (f: (c: Chunk) => number): number => chunks.reduce((a, c) => a + f(c), 0);
  const ms = sum((c) => c.ms);
  return {
    reads: sum((c) => c.reads),
    ms: Math.round(ms),
    readsPerS: Math.round(sum((c) => c.reads) / (ms / 1000)),
    checked: sum((c) => c.checked),
    clientCores: Math.round((sum((c) => c.clientCpuMs) / ms) * 100) / 100,
  };
}

/** A metcd node's id and /status cache (the tiered storage adds it; null before). */
async function nodeCache(url: string): Promise<{ id: string; cache: CacheStatus | null }> {
  const s = await fetchJson<{ id: string }>(`${url}/status`, {}, 5000);
  return { id: s.id, cache: cacheOf(s) };
}

/** Hits and lookups between two reads of the same cache's counters (null: no cache reported). */
function cacheDelta(before: CacheStatus | null, after: CacheStatus | null): { hits: number; lookups: number } | null {
  if (before === null || after === null) return null;
  const hits = after.hits - before.hits;
  return { hits, lookups: hits + (after.misses - before.misses) };
}

export async function measureScaleReads(
  cluster: ScaleCluster,
  opts: ScaleReadsOptions,
  note: (text: string) => void = () => undefined,
): Promise<ScaleReadsResult> {
  const problems: string[] = [];
  const leader = await cluster.leader(30_000);
  const pool = new Pool(leader.url, { connections: opts.clients, pipelining: 1 });
  const run = (count: number, pick: () => number) => timedReads(pool, cluster.system, count, opts.clients, opts.valueBytes, pick, problems);
  try {
    const spread = rankSpreader(opts.keys);
    const z = new ZipfSampler(opts.keys, ZIPF_EXPONENT, opts.seed ?? 1);
    const zipfian = (): number => spread(z.next());
    const hotKeys = Math.min(HOT_KEYS, opts.keys);
    let u = (opts.seed ?? 1) >>> 0;
    const uniformHot = (): number => {
      // A small LCG is enough for a uniform choice among 1,000 keys.
      u = (Math.imul(u, 1664525) + 1013904223) >>> 0;
      return u % hotKeys;
    };
    const metcd = cluster.system === 'metcd';
    const leaderCache = async (): Promise<CacheStatus | null> => (metcd ? (await nodeCache(leader.url)).cache : null);

    // Warm-up: a tenth as many Zipfian reads, every hot key once.
    await run(Math.ceil(opts.reads / 10), zipfian);
    let next = 0;
    await run(hotKeys, () => next++);
    // The two alternate in ROUNDS rounds, so a drift of the cluster under them (a compaction
    // after the load, a neighbour's load) falls on both alike.
    const zipfChunks: Chunk[] = [];
    const hotChunks: Chunk[] = [];
    let hits = 0;
    let lookups = 0;
    let cacheReported = metcd;
    for (let k = 0; k < ROUNDS; k++) {
      const count = Math.floor(opts.reads / ROUNDS) + (k < opts.reads % ROUNDS ? 1 : 0);
      const before = await leaderCache();
      zipfChunks.push(await run(count, zipfian));
      const delta = cacheDelta(before, await leaderCache());
      if (delta === null) cacheReported = false;
      else [hits, lookups] = [hits + delta.hits, lookups + delta.lookups];
      hotChunks.push(await run(count, uniformHot));
    }
    const zipf = rateOf(zipfChunks);
    const hot = rateOf(hotChunks);
    note(
      `${cluster.label}: ${zipf.readsPerS} reads/s Zipfian over ${opts.keys} keys, ${hot.readsPerS} over the ${hotKeys} hot keys ` +
        `(client ${zipf.clientCores} and ${hot.clientCores} cores)`,
    );
    const after = metcd ? await Promise.all(cluster.clientUrls().map(nodeCache)) : [];
    if ((await cluster.leader(30_000)).id !== leader.id) problems.push('the leader changed during the reads');
    return {
      zipf,
      hot,
      ratio: Math.round((zipf.readsPerS / hot.readsPerS) * 100) / 100,
      clients: opts.clients,
      cache: after,
      zipfLeaderHitRate: cacheReported && lookups > 0 ? Math.round((hits / lookups) * 1000) / 1000 : null,
      problems,
    };
  } finally {
    await pool.close();
  }
}

/** What scaleReadLines needs of a side's result. */
interface ReadRow {
  label: string;
  cacheBytes: number | null;
  reads: ScaleReadsResult | null;
  readsError: string | null;
}

const rate = (x: number | null | undefined): string => (x === null || x === undefined ? 'n/a' : x.toFixed(2));

/** The reads' table (n/a: the node reports no cache; none: it was given no budget). */
export function scaleReadLines(rows: readonly ReadRow[]): string[] {
  const measured = rows.filter((r) => r.reads !== null || r.readsError !== null);
  if (measured.length === 0) return [];
  const r0 = measured.find((r) => r.reads !== null)?.reads ?? undefined;
  const out = [
    '',
    r0 === undefined
      ? 'scale reads'
      : `scale reads — ${r0.zipf.reads} reads per rate, ${r0.clients} connections to the leader (metcd GET /key/<k>, etcd a linearizable range): ` +
        `Zipfian s = ${ZIPF_EXPONENT} over every key vs uniform over the first ${HOT_KEYS} (all hot); hit rates from /status`,
    '',
    'system          cache MB  zipf reads/s  hot reads/s  zipf/hot  client cores  leader hit (zipf)  hit rate per node',
    '--------------- -------- ------------- ------------ --------- ------------- ----------------- -----------------',
  ];
  for (const r of measured) {
    if (r.reads === null) {
      out.push(failedRow(r.label, r.readsError!));
      continue;
    }
    const x = r.reads;
    const metcd = r.label.startsWith('metcd/');
    const cells = [
      r.label.padEnd(15),
      (r.cacheBytes === null ? (metcd ? 'none' : '-') : (r.cacheBytes / 1e6).toFixed(1)).padStart(8),
      String(x.zipf.readsPerS).padStart(13),
      String(x.hot.readsPerS).padStart(12),
      x.ratio.toFixed(2).padStart(9),
      `${x.zipf.clientCores.toFixed(2)}/${x.hot.clientCores.toFixed(2)}`.padStart(13),
      (metcd ? rate(x.zipfLeaderHitRate) : '-').padStart(17),
      metcd ? x.cache.map((c) => rate(c.cache?.hitRate)).join(' ') : '-',
    ];
    const invalid = x.problems.length > 0 ? `  INVALID: ${x.problems.join('; ')}` : '';
    out.push(cells.join(' ') + invalid);
  }
  out.push("  client cores: this process's CPU during the Zipfian/hot reads; near 1, the client may be what limits both rates");
  return out;
}
