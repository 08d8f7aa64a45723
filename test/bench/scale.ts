// Scale phase (`--scale`, issue 14): what a 3-node cluster costs once it holds many keys, etcd
// next to metcd on each engine. Loads N keys (1,000,000 by default) with 100-byte values (random
// printable characters, a different value per key: a repeated value would flatter an engine that
// compresses, as LevelDB does, by an order of magnitude on disk) as fast
// as each side takes them (metcd: POST /key with 1000 pairs; etcd: /v3/kv/txn with 1000 puts,
// its --max-txn-ops raised to allow it), then reports per node the resident memory (VmRSS) and
// the data directory's size on disk (du), then SIGKILLs all three nodes, starts them again and
// times spawn → the first linearizable read that returns the last key's value (metcd
// `?level=consistent`, etcd a range without `serializable`), asked of every member at once.
// The restart is repeated and its median reported. Between the sizes and the restarts: Zipfian
// and all-hot reads (scale-reads.ts) and a learner joining (scale-join.ts). Targets (issue 14):
// RSS per node ≤ 300 MB on sqlite and leveldb, kill-all restart ≤ 2 s, Zipfian reads at ≥ 0.5
// of the all-hot rate with a 10% cache (judged only when the nodes were given a cache budget).

import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fetchJson, forEachParallel } from './http.ts';
import { median } from './failover.ts';
import { diskBytes, failedRow, rssBytes, scaleKey, scaleValue, type ScaleCluster } from './scale-common.ts';
import { measureScaleJoin, scaleJoinLines, type ScaleJoinResult } from './scale-join.ts';
import { measureScaleReads, scaleReadLines, type ScaleReadsResult } from './scale-reads.ts';
import { sleep, waitFor } from '../support/wait.ts';
import type { ProcessMemory } from '../../worker/api/host.ts';

export const SCALE_TARGETS = {
  /** RSS per node on the engines with an index on disk (sqlite, leveldb). */
  rssPerNodeBytesMax: 300e6,
  restartMsMax: 2000,
  /** Zipfian reads / all-hot reads, with a cache of 10% of the values, at 10 M keys. */
  zipfHotRatioMin: 0.5,
  zipfKeys: 10_000_000,
  /** The key count the targets are stated for; a smaller run is indicative only. */
  keys: 1_000_000,
  engines: ['sqlite', 'leveldb'] as readonly string[],
};

/** The space quota both sides get, so 1 M keys (and more) fit: etcd's suggested maximum, 8 GiB. */
export const SCALE_QUOTA_BYTES = 8 * 1024 ** 3;
export const SCALE_BATCH_PAIRS = 1000;
/** How long the cluster sits idle after the load before its settled RSS is read. */
export const SCALE_SETTLE_MS = 20_000;
export const ETCD_SCALE_ARGS = ['--quota-backend-bytes', String(SCALE_QUOTA_BYTES), '--max-txn-ops', String(SCALE_BATCH_PAIRS)];
export const METCD_SCALE_ARGS = ['--quota-bytes', String(SCALE_QUOTA_BYTES)];

export interface ScaleOptions {
  keys: number;
  valueBytes: number;
  restarts: number;
  /** Reads per rate (Zipfian, all-hot) and connections; null: no reads. */
  reads: { count: number; clients: number } | null;
  /** Learner join; false: not measured. */
  join: boolean;
  /** The --cache-bytes the nodes were given (null: none), for the result and the verdict. */
  cacheBytes: number | null;
  onNote?: (text: string) => void;
}

export interface ScaleResult {
  label: string;
  keys: number;
  valueBytes: number;
  batchPairs: number;
  loadMs: number;
  keysPerS: number;
  /** Batches sent again after a failure (a leader change under the load; a put of the same
   *  values is idempotent, so a retry cannot change what is stored). */
  loadRetries: number;
  /** Per node, after the load once every member has applied it. */
  rssBytes: number[];
  /** Per node, SCALE_SETTLE_MS later, the cluster idle meanwhile: what a loaded node keeps once
   *  its runtime has given back what the burst left reserved (Go's scavenger on etcd; V8's heap
   *  trimmed by metcd's node-runtime/heap-trim.ts). The target is judged on this. */
  rssSettledBytes: number[];
  diskBytes: number[];
  /** Spawn of the three → first consistent read of the last key, per restart. */
  restartMs: number[];
  restartMedianMs: number;
  cacheBytes: number | null;
  reads: ScaleReadsResult | null;
  readsError: string | null;
  join: ScaleJoinResult | null;
  joinError: string | null;
  problems: string[];
}

/** Flushes every file system's dirty pages (sync(1)), so a restart is not timed against the
 *  write-back of what was loaded (here or by an earlier side). */
export function syncDisks(): void {
  const r = spawnSync('sync', [], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sync: ${r.stderr.trim()}`);
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** One batch of puts in one request (one revision on both sides). */
async function putBatch(system: ScaleCluster['system'], url: string, from: number, to: number, valueBytes: number): Promise<void> {
  if (system === 'metcd') {
    const pairs: Record<string, string> = {};
    for (let i = from; i < to; i++) pairs[scaleKey(i)] = scaleValue(i, valueBytes);
    await fetchJson<{ revision: number }>(`${url}/key`, { method: 'POST', body: JSON.stringify(pairs) }, 60_000);
    return;
  }
  const success = [];
  for (let i = from; i < to; i++) success.push({ requestPut: { key: b64(scaleKey(i)), value: b64(scaleValue(i, valueBytes)) } });
  const r = await fetchJson<{ succeeded?: boolean }>(`${url}/v3/kv/txn`, { method: 'POST', body: JSON.stringify({ success }) }, 60_000);
  if (r.succeeded !== true) throw new Error(`etcd txn ${from}..${to} did not succeed: ${JSON.stringify(r).slice(0, 200)}`);
}

/** A linearizable read of `key` at one member: its value, or undefined (not served yet). */
async function consistentRead(system: ScaleCluster['system'], url: string, key: string, timeoutMs: number): Promise<string | undefined> {
  if (system === 'metcd') {
    const r = await fetchJson<Record<string, string>>(`${url}/key/${key}?level=consistent`, {}, timeoutMs);
    return r[key];
  }
  const r = await fetchJson<{ kvs?: Array<{ value?: string }> }>(
    `${url}/v3/kv/range`,
    { method: 'POST', body: JSON.stringify({ key: b64(key) }) },
    timeoutMs,
  );
  const v = r.kvs?.[0]?.value;
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString();
}

/** Each member's revision (null: did not answer). */
async function revisions(cluster: ScaleCluster): Promise<Array<number | null>> {
  return Promise.all(
    cluster.clientUrls().map(async (url) => {
      try {
        if (cluster.system === 'metcd') return (await fetchJson<{ revision: number }>(`${url}/status`, {}, 2000)).revision;
        const s = await fetchJson<{ header: { revision: string } }>(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}' }, 2000);
        return Number(s.header.revision);
      } catch {
        return null;
      }
    }),
  );
}

/** Spawns the killed cluster and races a consistent read on every member: ms to the first right answer. */
async function timeRestart(cluster: ScaleCluster, key: string, value: string, timeoutMs: number): Promise<number> {
  const started = performance.now();
  cluster.restartAll();
  let doneMs: number | undefined;
  let lastErr = '';
  const poll = async (url: string): Promise<void> => {
    while (doneMs === undefined && performance.now() - started < timeoutMs) {
      try {
        const got = await consistentRead(cluster.system, url, key, 2000);
        if (got === value) {
          doneMs ??= performance.now() - started;
          return;
        }
        lastErr = `read ${got === undefined ? 'no value' : 'a different value'}`;
      } catch (err) {
        lastErr = err instanceof Error ? err.message : String(err);
      }
      await sleep(20);
    }
  };
  await Promise.all(cluster.clientUrls().map(poll));
  if (doneMs === undefined) throw new Error(`no consistent read of ${key} within ${timeoutMs} ms of the restart (last: ${lastErr})`);
  return Math.round(doneMs);
}

export async function measureScale(cluster: ScaleCluster, opts: ScaleOptions): Promise<ScaleResult> {
  const note = opts.onNote ?? (() => undefined);
  const problems: string[] = [];
  let leaderUrl = (await cluster.leader(30_000)).url;
  let loadRetries = 0;
  const putWithRetry = async (from: number, to: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const url = leaderUrl;
      try {
        await putBatch(cluster.system, url, from, to, opts.valueBytes);
        return;
      } catch (err) {
        if (attempt >= 10) throw err;
        loadRetries++;
        note(
          `${cluster.label}: batch ${from}..${to - 1} failed (${err instanceof Error ? err.message.slice(0, 160) : String(err)}); retrying on the leader`,
        );
        if (leaderUrl === url) leaderUrl = (await cluster.leader(60_000)).url;
      }
    }
  };
  const batches = Math.ceil(opts.keys / SCALE_BATCH_PAIRS);
  let done = 0;
  let lastNoteMs = performance.now();
  const began = performance.now();
  await forEachParallel(batches, 4, async (b) => {
    await putWithRetry(b * SCALE_BATCH_PAIRS, Math.min(opts.keys, (b + 1) * SCALE_BATCH_PAIRS));
    done++;
    if (performance.now() - lastNoteMs > 10_000) {
      lastNoteMs = performance.now();
      note(`${cluster.label}: ${Math.min(done * SCALE_BATCH_PAIRS, opts.keys)} of ${opts.keys} keys loaded`);
    }
  });
  const loadMs = Math.round(performance.now() - began);
  const keysPerS = Math.round(opts.keys / (loadMs / 1000));
  note(
    `${cluster.label}: loaded ${opts.keys} keys in ${(loadMs / 1000).toFixed(1)} s (${keysPerS} keys/s${loadRetries > 0 ? `, ${loadRetries} batches retried` : ''})`,
  );

  // Every member applied the load before its memory and disk are read.
  try {
    await waitFor(`every ${cluster.label} member at the leader's revision`, 300_000, async () => {
      const revs = await revisions(cluster);
      const max = Math.max(...revs.map((r) => r ?? -1));
      return revs.every((r) => r === max) ? true : undefined;
    });
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  }
  syncDisks();
  const pids = cluster.pids();
  const rss = pids.map((pid) => rssBytes(pid));
  const disk = cluster.dataDirs().map(diskBytes);
  note(`${cluster.label}: RSS per node ${rss.map(mb).join(', ')} MB; on disk ${disk.map(mb).join(', ')} MB`);
  if (cluster.system === 'metcd') note(`${cluster.label}: memory by kind, per node: ${(await memoryKinds(cluster)).join('; ')}`);
  await sleep(SCALE_SETTLE_MS);
  const rssSettled = pids.map((pid) => rssBytes(pid));
  note(`${cluster.label}: RSS per node ${SCALE_SETTLE_MS / 1000} s later, idle: ${rssSettled.map(mb).join(', ')} MB`);
  if (cluster.system === 'metcd') note(`${cluster.label}: memory by kind then, per node: ${(await memoryKinds(cluster)).join('; ')}`);

  // A failed read or join costs its own columns, not the sizes and restarts.
  const failed = (err: unknown): string => (err instanceof Error ? err.message : String(err));
  let reads: ScaleReadsResult | null = null;
  let readsError: string | null = null;
  if (opts.reads !== null) {
    try {
      const r = { keys: opts.keys, valueBytes: opts.valueBytes, reads: opts.reads.count, clients: opts.reads.clients };
      reads = await measureScaleReads(cluster, r, note);
    } catch (err) {
      readsError = failed(err);
      note(`${cluster.label}: reads failed: ${readsError}`);
    }
  }
  let join: ScaleJoinResult | null = null;
  let joinError: string | null = null;
  if (opts.join) {
    try {
      // 10 min, or 1 s per 10,000 keys when longer (a 10 M-key snapshot moves over a GB).
      join = await measureScaleJoin(cluster, Math.max(600_000, opts.keys / 10), note);
    } catch (err) {
      joinError = failed(err);
      note(`${cluster.label}: join failed: ${joinError}`);
    }
  }

  const lastKey = scaleKey(opts.keys - 1);
  const lastValue = scaleValue(opts.keys - 1, opts.valueBytes);
  const restartMs: number[] = [];
  for (let k = 0; k < opts.restarts; k++) {
    syncDisks();
    await cluster.killAll();
    const ms = await timeRestart(cluster, lastKey, lastValue, 300_000);
    restartMs.push(ms);
    note(`${cluster.label}: kill all + restart ${k + 1}/${opts.restarts}: first consistent read after ${(ms / 1000).toFixed(2)} s`);
    // The whole cluster back (a leader a majority agrees on) before the next kill.
    await cluster.leader(300_000);
  }
  const first = await consistentRead(cluster.system, (await cluster.leader(60_000)).url, scaleKey(0), 10_000);
  if (first !== scaleValue(0, opts.valueBytes))
    problems.push(`${scaleKey(0)} after the restarts: ${first === undefined ? 'missing' : 'wrong value'}`);
  return {
    label: cluster.label,
    keys: opts.keys,
    valueBytes: opts.valueBytes,
    batchPairs: SCALE_BATCH_PAIRS,
    loadMs,
    keysPerS,
    loadRetries,
    rssBytes: rss,
    rssSettledBytes: rssSettled,
    diskBytes: disk,
    restartMs,
    restartMedianMs: median(restartMs),
    cacheBytes: opts.cacheBytes,
    reads,
    readsError,
    join,
    joinError,
    problems,
  };
}

const mb = (bytes: number): number => Math.round(bytes / 1e6);

/** Where a metcd node's memory is (its /status memory): the JS heap in use and reserved, and
 *  what JS objects hold outside it; the rest of the RSS is the runtime's and the engine's own. */
async function memoryKinds(cluster: ScaleCluster): Promise<string[]> {
  return Promise.all(
    cluster.clientUrls().map(async (url) => {
      try {
        const m = (await fetchJson<{ memory?: ProcessMemory }>(`${url}/status`, {}, 5000)).memory;
        if (m === undefined) return 'no memory in /status';
        const trims = m.heapTrims === undefined ? '' : `, ${m.heapTrims} heap trims`;
        return `heap ${mb(m.heapUsedBytes)}/${mb(m.heapTotalBytes)} MB, external ${mb(m.externalBytes)} MB, rss ${mb(m.rssBytes)} MB${trims}`;
      } catch (err) {
        return `no /status (${err instanceof Error ? err.message : String(err)})`;
      }
    }),
  );
}

/** A side whose cluster did not start or whose run failed. */
export interface ScaleFailure {
  label: string;
  error: string;
}

/** The phase's table for the bench's report (MB and GB are 10^6 and 10^9 bytes). */
export function scaleLines(results: readonly ScaleResult[], failures: readonly ScaleFailure[] = []): string[] {
  if (results.length === 0 && failures.length === 0) return [];
  const r0 = results[0];
  const out = [
    '',
    r0 === undefined
      ? 'scale'
      : `scale — 3 nodes each, ${r0.keys} keys × ${r0.valueBytes} B loaded in batches of ${r0.batchPairs}; RSS and disk after the load, RSS again after ${SCALE_SETTLE_MS / 1000} s idle; ` +
        `kill all + restart: spawn → first consistent read of the last key (median of ${r0.restartMs.length})`,
    '',
    'system          load s   keys/s  RSS per node MB  RSS settled MB  restart s  restarts s        disk 3 nodes GB',
    '--------------- ------ -------- ---------------- --------------- ---------- ----------------- ---------------',
  ];
  for (const r of results) {
    const rss = r.rssBytes.map(mb);
    const settled = r.rssSettledBytes.map(mb);
    const cells = [
      r.label.padEnd(15),
      (r.loadMs / 1000).toFixed(1).padStart(6),
      String(r.keysPerS).padStart(8),
      `${Math.min(...rss)}–${Math.max(...rss)}`.padStart(16),
      `${Math.min(...settled)}–${Math.max(...settled)}`.padStart(15),
      (r.restartMedianMs / 1000).toFixed(2).padStart(10),
      r.restartMs
        .map((ms) => (ms / 1000).toFixed(2))
        .join(' ')
        .padEnd(17),
      (r.diskBytes.reduce((x, y) => x + y, 0) / 1e9).toFixed(2).padStart(15),
    ];
    const retried = r.loadRetries > 0 ? `  (${r.loadRetries} load batches retried after a leader change)` : '';
    const invalid = r.problems.length > 0 ? `  INVALID: ${r.problems.join('; ')}` : '';
    out.push(cells.join(' ') + retried + invalid);
  }
  for (const f of failures) out.push(failedRow(f.label, f.error));
  out.push(...scaleReadLines(results), ...scaleJoinLines(results));
  return out;
}

export interface ScaleVerdict {
  target: string;
  /** null: not judged (the detail says why). */
  reached: boolean | null;
  detail: string;
}

/** Zipfian / all-hot ≥ 0.5, judged only when the nodes were given a cache budget. */
function zipfVerdict(r: ScaleResult): ScaleVerdict | null {
  if (r.reads === null && r.readsError === null) return null;
  const target = `${r.label}: Zipfian reads ≥ ${SCALE_TARGETS.zipfHotRatioMin} × the all-hot rate with a 10% cache`;
  if (r.reads === null) return { target, reached: false, detail: `the reads failed: ${r.readsError!.split('\n')[0]}` };
  const ratio = `zipf/hot ${r.reads.ratio.toFixed(2)}`;
  if (r.cacheBytes === null) return { target, reached: null, detail: `not judged (no cache flag): ${ratio}` };
  const percent = (100 * r.cacheBytes) / (r.keys * r.valueBytes);
  const scope = [
    r.keys < SCALE_TARGETS.zipfKeys ? `at ${r.keys} keys, not the target's ${SCALE_TARGETS.zipfKeys}: indicative only` : '',
    Math.abs(percent - 10) > 0.05 ? `a ${percent.toFixed(1)}% cache, not 10%` : '',
  ].filter((x) => x !== '');
  const invalid = [...r.problems, ...r.reads.problems].length > 0;
  return {
    target,
    reached: !invalid && r.reads.ratio >= SCALE_TARGETS.zipfHotRatioMin,
    detail: `${ratio}${scope.length ? ` (${scope.join('; ')})` : ''}${invalid ? '; the run was INVALID' : ''}`,
  };
}

/** Issue 14's targets for the engines they name; a run below 1 M keys says it is indicative only. */
export function scaleVerdicts(results: readonly ScaleResult[]): ScaleVerdict[] {
  const out: ScaleVerdict[] = [];
  for (const r of results) {
    const engine = r.label.startsWith('metcd/') ? r.label.slice('metcd/'.length) : null;
    if (engine === null || !SCALE_TARGETS.engines.includes(engine)) continue;
    const scope = r.keys < SCALE_TARGETS.keys ? ` (at ${r.keys} keys, not the target's ${SCALE_TARGETS.keys}: indicative only)` : '';
    const rssMax = Math.max(...r.rssSettledBytes);
    out.push({
      target: `${r.label}: RSS per node ≤ ${mb(SCALE_TARGETS.rssPerNodeBytesMax)} MB (settled, ${SCALE_SETTLE_MS / 1000} s after the load)`,
      reached: r.problems.length === 0 && rssMax <= SCALE_TARGETS.rssPerNodeBytesMax,
      detail: `max ${mb(rssMax)} MB (${mb(Math.max(...r.rssBytes))} at the load's end)${scope}${r.problems.length ? '; the run was INVALID' : ''}`,
    });
    out.push({
      target: `${r.label}: kill-all restart to first consistent read ≤ ${SCALE_TARGETS.restartMsMax / 1000} s`,
      reached: r.problems.length === 0 && r.restartMedianMs <= SCALE_TARGETS.restartMsMax,
      detail: `median ${(r.restartMedianMs / 1000).toFixed(2)} s${scope}${r.problems.length ? '; the run was INVALID' : ''}`,
    });
    const zipf = zipfVerdict(r);
    if (zipf !== null) out.push(zipf);
  }
  return out;
}
