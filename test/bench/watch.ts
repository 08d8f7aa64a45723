// Watch fan-out: W watchers on one prefix (spread round-robin over the members, as clients
// spread over their endpoints) while one writer puts distinct keys under that prefix at a fixed
// rate to the leader, up to 16 writes in flight (a slow write must not hold up the next ones).
// Reported: events per second delivered in total over the watchers, and the lag from commit to
// delivery (the time a watcher reads the event minus the time the write was acknowledged to the
// writer; one process, so one clock), with its p50 for watchers on the leader and on followers.
//
// metcd: GET /watch?prefix=P (Server-Sent Events: one `event: revision` frame per revision with a
// JSON array of changes). etcd: POST /v3/watch {"create_request":{"key","range_end"}} on its JSON
// gateway (a stream of newline-separated JSON messages, base64 keys; ready once `created`).
//
// The writer is paced (writes due at t0 + i/rate) so the watchers, not the writer, are measured:
// while a system keeps up, events/s is the offered rate times the watchers and the lag is what
// tells systems apart. The client is one Node process reading every stream with an async
// reader; its CPU and event-loop delay are reported, since a busy client adds to the lag.
//
// Every watcher must receive every write exactly once (counted per watcher and key); a missing
// or repeated event, an error, an end of stream, a leader change, or a writer that fell behind
// its schedule by more than 10% marks the run INVALID.

import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { totalCpuSeconds } from './cpu.ts';
import type { ClusterUnderTest } from './target.ts';
import { benchValue } from './wrk.ts';
import { sleep } from '../support/wait.ts';

export interface WatchOptions {
  watchers: number;
  /** Writes per second offered. */
  rate: number;
  /** Writes in flight at most. */
  concurrency: number;
  durationS: number;
  warmupS: number;
  valueBytes: number;
  onTick?: (text: string) => void;
}

export interface WatchResult {
  system: string;
  watchers: number;
  /** Writes measured (after the warm-up's) and the rate they were offered at. */
  writes: number;
  offeredWritesPerS: number;
  /** Writes acknowledged per second over the measured writes. */
  writesPerS: number;
  /** Events delivered per second, summed over the watchers, over the measured writes. */
  eventsPerS: number;
  eventsDelivered: number;
  /** Acknowledgement → delivery, over every (watcher, measured write). Negative: delivered first. */
  lagMs: { p50: number; p90: number; p99: number; max: number };
  /** Lag p50 of the watchers on the leader and of those on the followers. */
  lagP50ByMemberMs: { leader: number; followers: number };
  /** Share of deliveries that reached the watcher before the writer had its acknowledgement. */
  beforeAckPct: number;
  clusterCores: number | null;
  /** CPU the bench process itself used (the watchers' reading and the writer), in cores. */
  clientCores: number;
  /** The bench process's event-loop delay p99: how late it was to read a ready stream. */
  clientLoopDelayP99Ms: number;
  leader: string;
  problems: string[];
}

interface Watcher {
  url: string;
  /** Receipt time of each write's event (NaN: not yet). */
  at: Float64Array;
  count: Uint8Array;
  duplicates: number;
  strangers: number;
  received: number;
  /** Set when the stream failed or ended before we closed it. */
  failure: string | null;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const round2 = (x: number) => Math.round(x * 100) / 100;

let tagSeq = 0;
const LOOP_RESOLUTION_MS = 2;

/** Reads a streamed body as text, calling `onText(text, receivedAt)` per chunk, until it ends. */
async function readText(res: Response, onText: (text: string, at: number) => void): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onText(decoder.decode(value, { stream: true }), performance.now());
  }
}

/**
 * Opens one watcher; resolves once the server has registered it (metcd: the 200 answer, which
 * comes after the peer registered the watcher; etcd: the `created` message). `onKey` gets each
 * event's key and receipt time; the returned `ended` settles when the stream ends.
 */
async function openWatcher(
  system: 'metcd' | 'etcd',
  url: string,
  prefix: string,
  signal: AbortSignal,
  onKey: (key: string, at: number) => void,
): Promise<{ ended: Promise<void> }> {
  let buffer = '';
  if (system === 'metcd') {
    const res = await fetch(`${url}/watch?prefix=${encodeURIComponent(prefix)}`, { signal, redirect: 'manual' });
    if (res.status !== 200) throw new Error(`GET /watch answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    const ended = readText(res, (text, at) => {
      buffer += text;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        let data = '';
        for (const line of frame.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data = line.slice(6);
        }
        if (event === 'revision') for (const e of JSON.parse(data) as Array<{ key: string }>) onKey(e.key, at);
        else if (event !== 'message' && event !== 'progress') throw new Error(`watch stream sent event: ${event} ${data}`);
      }
    });
    return { ended };
  }
  const rangeEnd = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const res = await fetch(`${url}/v3/watch`, {
    method: 'POST',
    body: JSON.stringify({ create_request: { key: b64(prefix), range_end: b64(rangeEnd) } }),
    signal,
  });
  if (res.status !== 200) throw new Error(`POST /v3/watch answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  let created!: () => void;
  const ready = new Promise<void>((resolve) => (created = resolve));
  type Message = { result?: { created?: boolean; canceled?: boolean; events?: Array<{ kv: { key: string } }> }; error?: unknown };
  const ended = readText(res, (text, at) => {
    buffer += text;
    let end: number;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (line === '') continue;
      const m = JSON.parse(line) as Message;
      if (m.error !== undefined || m.result === undefined || m.result.canceled) throw new Error(`watch stream sent ${line.slice(0, 200)}`);
      if (m.result.created) created();
      for (const e of m.result.events ?? []) onKey(Buffer.from(e.kv.key, 'base64').toString(), at);
    }
  });
  await Promise.race([ready, ended.then(() => Promise.reject(new Error('watch stream ended before created')))]);
  return { ended };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function measureWatch(cluster: ClusterUnderTest, opts: WatchOptions): Promise<WatchResult> {
  const system = cluster.system;
  const leader = await cluster.leader();
  const urls = cluster.clientUrls();
  const n = tagSeq++;
  const prefix = `bench-watch-${n}-${Date.now().toString(36)}/`;
  const warmupWrites = Math.round(opts.warmupS * opts.rate);
  const measuredWrites = Math.max(1, Math.round(opts.durationS * opts.rate));
  const total = warmupWrites + measuredWrites;
  const keyOf = (i: number) => prefix + String(i).padStart(8, '0');
  const problems: string[] = [];

  // Watchers.
  const abort = new AbortController();
  const watchers: Watcher[] = [];
  const ends: Promise<void>[] = [];
  let complete = 0;
  let allDone!: () => void;
  const allReceived = new Promise<void>((resolve) => (allDone = resolve));
  for (let w = 0; w < opts.watchers; w++) {
    const watcher: Watcher = {
      url: urls[w % urls.length]!,
      at: new Float64Array(total).fill(NaN),
      count: new Uint8Array(total),
      duplicates: 0,
      strangers: 0,
      received: 0,
      failure: null,
    };
    watchers.push(watcher);
  }
  const onKey = (watcher: Watcher) => (key: string, at: number) => {
    const i = key.startsWith(prefix) ? Number(key.slice(prefix.length)) : NaN;
    if (!Number.isInteger(i) || i < 0 || i >= total) {
      watcher.strangers++;
      return;
    }
    if (watcher.count[i]! > 0) {
      watcher.duplicates++;
      if (watcher.count[i]! < 255) watcher.count[i] = watcher.count[i]! + 1;
      return;
    }
    watcher.count[i] = 1;
    watcher.at[i] = at;
    if (++watcher.received === total && ++complete === watchers.length) allDone();
  };
  // Open them a few at a time (a connection storm is not what is measured).
  try {
    for (let w = 0; w < watchers.length; w += 10) {
      await Promise.all(
        watchers.slice(w, w + 10).map(async (watcher) => {
          const { ended } = await openWatcher(system, watcher.url, prefix, abort.signal, onKey(watcher));
          ends.push(
            ended.then(
              () => {
                if (!abort.signal.aborted) watcher.failure ??= 'stream ended';
              },
              (err: unknown) => {
                if (!abort.signal.aborted) watcher.failure ??= err instanceof Error ? err.message : String(err);
              },
            ),
          );
        }),
      );
    }
  } catch (err) {
    abort.abort();
    await Promise.all(ends);
    return invalid(cluster.label, opts, `opening ${opts.watchers} watchers failed: ${err instanceof Error ? err.message : String(err)}`);
  }

  // Writer: write i is due at t0 + i/rate; `concurrency` loops take the next due write.
  const value = benchValue(opts.valueBytes);
  const ackAt = new Float64Array(total).fill(NaN);
  let writeErrors = 0;
  let firstWriteError = '';
  const put = async (key: string): Promise<void> => {
    const res =
      system === 'metcd'
        ? await fetch(`${leader.url}/${key}`, { method: 'PUT', body: value, redirect: 'manual', signal: AbortSignal.timeout(10_000) })
        : await fetch(`${leader.url}/v3/kv/put`, {
            method: 'POST',
            body: JSON.stringify({ key: b64(key), value: b64(value) }),
            signal: AbortSignal.timeout(10_000),
          });
    const ok = res.status === (system === 'metcd' ? 204 : 200);
    const at = performance.now();
    await res.arrayBuffer();
    if (!ok) throw new Error(`HTTP ${res.status}`);
    return void (ackAt[Number(key.slice(prefix.length))] = at);
  };
  const pids = cluster.pids();
  // The histogram counts the sampling interval in (an idle loop reads LOOP_RESOLUTION_MS).
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  let cpuBefore = 0;
  let clientBefore = process.cpuUsage();
  let measuredStartMs = 0;
  const t0 = performance.now() + 20;
  let next = 0;
  const ticker = setInterval(() => opts.onTick?.(`${cluster.label} watch: ${Math.max(0, total - next)} writes left`), 5000);
  const writer = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const due = t0 + (i * 1000) / opts.rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (i === warmupWrites) {
        cpuBefore = totalCpuSeconds(pids);
        clientBefore = process.cpuUsage();
        loop.enable();
        measuredStartMs = Date.now();
      }
      try {
        await put(keyOf(i));
      } catch (err) {
        writeErrors++;
        firstWriteError ||= `${keyOf(i)}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, writer));
  clearInterval(ticker);
  // Every write acknowledged: wait for the last deliveries (or give up after 10 s).
  const deliveryDeadline = sleep(10_000).then(() => 'timeout' as const);
  const outcome = await Promise.race([allReceived.then(() => 'all' as const), deliveryDeadline]);
  const wallS = (Date.now() - measuredStartMs) / 1000;
  const cpuUsed = totalCpuSeconds(pids) - cpuBefore;
  const client = process.cpuUsage(clientBefore);
  loop.disable();
  abort.abort();
  await Promise.all(ends);
  const after = await cluster.leader();

  // Checks.
  if (writeErrors > 0) problems.push(`${writeErrors} writes failed (first: ${firstWriteError})`);
  if (after.id !== leader.id || after.term !== leader.term) {
    problems.push(`leader changed during the run (${leader.id}@${leader.term} → ${after.id}@${after.term})`);
  }
  const failed = watchers.filter((w) => w.failure !== null);
  if (failed.length > 0) problems.push(`${failed.length} watchers failed (first: ${failed[0]!.failure})`);
  const missing = watchers.reduce((s, w) => s + (total - w.received), 0);
  if (outcome !== 'all' || missing > 0) {
    const short = watchers.filter((w) => w.received < total).length;
    problems.push(`${missing} events missing over ${short} watchers 10 s after the last write`);
  }
  const duplicates = watchers.reduce((s, w) => s + w.duplicates, 0);
  if (duplicates > 0) problems.push(`${duplicates} events delivered twice`);
  const strangers = watchers.reduce((s, w) => s + w.strangers, 0);
  if (strangers > 0) problems.push(`${strangers} events for keys nobody wrote`);

  // Numbers over the measured writes.
  const lags = new Float64Array(watchers.length * measuredWrites);
  let k = 0;
  let beforeAck = 0;
  let lastDelivery = -Infinity;
  const byMember = { leader: [] as number[], followers: [] as number[] };
  for (const w of watchers) {
    const group = w.url === leader.url ? byMember.leader : byMember.followers;
    for (let i = warmupWrites; i < total; i++) {
      const at = w.at[i]!;
      if (Number.isNaN(at) || Number.isNaN(ackAt[i]!)) continue;
      const lag = at - ackAt[i]!;
      if (lag < 0) beforeAck++;
      lags[k++] = lag;
      group.push(lag);
      if (at > lastDelivery) lastDelivery = at;
    }
  }
  const sorted = lags.subarray(0, k).sort();
  const lagP50 = (xs: number[]) => round2(percentile(Float64Array.from(xs).sort(), 50));
  let lastAck = -Infinity;
  for (let i = warmupWrites; i < total; i++) if (ackAt[i]! > lastAck) lastAck = ackAt[i]!;
  // From when the first measured write was due (a writer behind its schedule then catching up
  // must not shrink the window).
  const firstDue = t0 + (warmupWrites * 1000) / opts.rate;
  const eventsS = (lastDelivery - firstDue) / 1000;
  const writesS = (lastAck - firstDue) / 1000;
  const writesPerS = writesS > 0 ? Math.round(measuredWrites / writesS) : 0;
  if (writesPerS < 0.9 * opts.rate) {
    problems.push(`the writer fell behind (${writesPerS} of ${opts.rate} writes/s): events/s measure the writes, not the watchers`);
  }
  return {
    system: cluster.label,
    watchers: watchers.length,
    writes: measuredWrites,
    offeredWritesPerS: opts.rate,
    writesPerS,
    eventsPerS: eventsS > 0 ? Math.round(k / eventsS) : 0,
    eventsDelivered: k,
    lagMs: {
      p50: round2(percentile(sorted, 50)),
      p90: round2(percentile(sorted, 90)),
      p99: round2(percentile(sorted, 99)),
      max: round2(sorted.length ? sorted[sorted.length - 1]! : NaN),
    },
    lagP50ByMemberMs: { leader: lagP50(byMember.leader), followers: lagP50(byMember.followers) },
    beforeAckPct: k > 0 ? round2((beforeAck / k) * 100) : 0,
    clusterCores: cpuUsed > 0 && wallS > 0 ? round2(cpuUsed / wallS) : null,
    clientCores: wallS > 0 ? round2((client.user + client.system) / 1e6 / wallS) : 0,
    clientLoopDelayP99Ms: round2(Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS)),
    leader: `${leader.id}@${leader.term}`,
    problems,
  };
}

function invalid(system: string, opts: WatchOptions, reason: string): WatchResult {
  return {
    system,
    watchers: opts.watchers,
    writes: 0,
    offeredWritesPerS: opts.rate,
    writesPerS: 0,
    eventsPerS: 0,
    eventsDelivered: 0,
    lagMs: { p50: NaN, p90: NaN, p99: NaN, max: NaN },
    lagP50ByMemberMs: { leader: NaN, followers: NaN },
    beforeAckPct: 0,
    clusterCores: null,
    clientCores: 0,
    clientLoopDelayP99Ms: 0,
    leader: '',
    problems: [reason],
  };
}
