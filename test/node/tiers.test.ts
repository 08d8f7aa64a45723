// The tiered engines (sqlite, leveldb) on real processes: the key space lives in the engine and
// each node holds a cache of a few records (--cache-bytes 2048), so nearly every read of the
// tests below goes to the disk. /status and /metrics report the cache; reads, ranges, a watch
// replay from the first revision and a backup all come out whole; a SIGKILLed node restarts
// without reading its records, catches up by a snapshot install and serves them again. One-key
// reads that miss are fetched off the event loop (--off-loop-reads always), so the engines'
// reader threads serve them through all of it. The memory engine has no tier: no cache in
// /status, no cache metrics.

import { readFileSync } from 'node:fs';
import { NODE_PROCESS_ENV } from '../../node-runtime/process-tuning.ts';
import type { PeerStatus } from '../../worker/peer/outcomes.ts';
import type { ProcessMemory } from '../../worker/api/host.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, followLeader, readPrefix } from './proc-cluster.ts';
import type { ProcNode } from './proc-cluster.ts';
import { parsePromText, requiredSample } from '../support/prom-text.ts';
import { sseFrames } from '../../worker/client/sse.ts';

const CACHE_BYTES = 2048;
const KEYS = 300;

/** What these tests read of a Node peer's /status (the peer's report and the host's). */
type Status = Pick<PeerStatus, 'cache' | 'keys' | 'applied'> & { diskBytes: number; memory: ProcessMemory };

async function status(node: ProcNode): Promise<Status> {
  const res = await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

const key = (i: number) => `tier/${String(i).padStart(4, '0')}`;
const value = (i: number, round: number) => `value ${i} of round ${round} `.padEnd(64, '.');

describe.each(['sqlite', 'leveldb'] as const)('Node: the %s engine holds the key space on disk', (engine) => {
  // --off-loop-reads always: every miss of a one-key read is fetched by the engine's threads
  // (sqlite's reader pool, libuv's pool for leveldb) before the read runs, as on a slow disk;
  // ranges, watches and writes read on the loop, so both paths run here.
  const tiered = new ProcCluster({
    engine,
    cacheBytes: CACHE_BYTES,
    snapshotEntries: 20,
    clusterId: `tiers-${engine}`,
    extraArgs: ['--off-loop-reads', 'always'],
  });
  beforeAll(() => tiered.start(), 60_000);
  afterAll(() => tiered.stopAll());

  it('writes, overwrites and deletes; every node reads them back from its disk through a tiny cache', async () => {
    const leader = await tiered.leader({ all: true });
    const diskBefore = (await status(leader)).diskBytes;
    for (const round of [1, 2]) {
      for (let i = 0; i < KEYS; i += 50) {
        const body = Object.fromEntries(Array.from({ length: 50 }, (_, j) => [key(i + j), value(i + j, round)]));
        const res = await followLeader(leader, '/key', { method: 'POST', body: JSON.stringify(body) });
        expect(res.status).toBe(200);
      }
    }
    for (let i = 0; i < 30; i++) expect((await followLeader(leader, `/${key(i)}`, { method: 'DELETE' })).status).toBe(204);
    for (const node of tiered.live()) await tiered.caughtUp(node, leader);
    for (const node of tiered.live()) {
      const got = await readPrefix(node, 'tier/');
      expect(got.size, node.id).toBe(KEYS - 30);
      for (let i = 30; i < KEYS; i++) expect(got.get(key(i)), `${node.id} ${key(i)}`).toBe(value(i, 2));
      const res = await fetch(`${node.url}/key/${key(KEYS - 1)}?level=stale`);
      expect(await res.json()).toEqual({ [key(KEYS - 1)]: value(KEYS - 1, 2) });
      const s = await status(node);
      expect(s.keys).toBe(KEYS - 30);
      expect(s.cache, node.id).not.toBeNull();
      expect(s.cache!.capacityBytes).toBe(CACHE_BYTES);
      expect(s.cache!.bytes).toBeLessThanOrEqual(CACHE_BYTES);
      expect(s.cache!.misses, `${node.id}: reads went to the disk`).toBeGreaterThan(KEYS);
      expect(s.cache!.hitRate).toBeGreaterThanOrEqual(0);
      expect(s.cache!.hitRate).toBeLessThanOrEqual(1);
      expect(s.diskBytes, `${node.id} diskBytes`).toBeGreaterThan(0);
    }
    expect((await status(leader)).diskBytes, 'the data dir grew with the writes').toBeGreaterThan(diskBefore);
  });

  it('reports the cache in /metrics, its misses counting reads that went to the disk', async () => {
    const node = tiered.live()[0]!;
    const scrape = async () => parsePromText(await (await fetch(`${node.url}/metrics`)).text());
    const before = await scrape();
    for (let i = 100; i < 140; i++) await (await fetch(`${node.url}/key/${key(i)}?level=stale`)).arrayBuffer();
    const after = await scrape();
    for (const name of ['metcd_cache_capacity_bytes', 'metcd_cache_bytes', 'metcd_cache_entries', 'metcd_cache_pending_changes'])
      expect(after.get(name)?.type, name).toBe('gauge');
    for (const name of ['metcd_cache_hits_total', 'metcd_cache_misses_total', 'metcd_cache_evictions_total'])
      expect(after.get(name)?.type, name).toBe('counter');
    expect(requiredSample(after, 'metcd_cache_capacity_bytes')).toBe(CACHE_BYTES);
    expect(after.get('metcd_disk_data_bytes')?.type).toBe('gauge');
    expect(requiredSample(after, 'metcd_disk_data_bytes')).toBeGreaterThan(0);
    // 40 distinct keys through a cache of a few records: most of them from the disk.
    const missed = requiredSample(after, 'metcd_cache_misses_total') - requiredSample(before, 'metcd_cache_misses_total');
    expect(missed).toBeGreaterThan(20);
    // One-key reads, so those misses were fetched off the event loop (--off-loop-reads always).
    expect(after.get('metcd_cache_misses_off_loop_total')?.type).toBe('counter');
    const offLoop =
      requiredSample(after, 'metcd_cache_misses_off_loop_total') - requiredSample(before, 'metcd_cache_misses_off_loop_total');
    expect(offLoop).toBeGreaterThan(20);
    expect(offLoop).toBeLessThanOrEqual(missed);
  });

  it('replays every change from the first revision to a watch, from the disk and the history', async () => {
    const node = tiered.live()[1]!;
    const stop = AbortSignal.timeout(20_000);
    const res = await fetch(`${node.url}/watch/tier/?prefix=1&fromRevision=1`, { signal: stop });
    expect(res.status).toBe(200);
    const seen: Array<{ type: string; key: string }> = [];
    const want = KEYS * 2 + 30; // two rounds of puts, then the deletes
    for await (const frame of sseFrames(res.body!, stop)) {
      if (frame.event !== 'revision') continue;
      seen.push(...(JSON.parse(frame.data) as Array<{ type: string; key: string }>));
      if (seen.length >= want) break;
    }
    expect(seen.length).toBe(want);
    expect(seen.filter((e) => e.type === 'delete').map((e) => e.key)).toEqual(Array.from({ length: 30 }, (_, i) => key(i)));
    expect(new Set(seen.filter((e) => e.type === 'put').map((e) => e.key)).size).toBe(KEYS);
  });

  it('a SIGKILLed node restarts without loading its records, catches up by a snapshot install and serves them again; a backup holds them all', async () => {
    const first = await tiered.leader({ all: true });
    const victim = tiered.live().find((n) => n.id !== first.id)!;
    await victim.kill('SIGKILL');
    // Enough entries while it is down that the others compact their logs past it (a snapshot
    // every 20): it comes back to a snapshot install, which replaces its disk under its store.
    for (let i = 30; i < 90; i++) expect((await followLeader(first, `/${key(i)}`, { method: 'PUT', body: value(i, 3) })).status).toBe(204);
    victim.start();
    const leader = await tiered.leader({ all: true });
    await tiered.caughtUp(victim, leader);
    const s = await status(victim);
    expect(s.keys).toBe(KEYS - 30);
    expect(s.cache!.entries).toBeLessThan(50); // warmed by what was read since, not loaded
    const metrics = parsePromText(await (await fetch(`${victim.url}/metrics`)).text());
    expect(requiredSample(metrics, 'metcd_snapshot_installed_total'), 'caught up by a snapshot').toBeGreaterThanOrEqual(1);
    // …streamed from a view of the leader's table and staged on the victim's disk as it came.
    expect(requiredSample(metrics, 'metcd_snapshot_installed_staged_total'), 'staged a chunk at a time').toBeGreaterThanOrEqual(1);
    let streamed = 0;
    for (const n of tiered.live().filter((n) => n !== victim)) {
      streamed += requiredSample(parsePromText(await (await fetch(`${n.url}/metrics`)).text()), 'metcd_snapshot_streams_opened_total');
    }
    expect(streamed, 'a leader streamed it').toBeGreaterThanOrEqual(1);
    const got = await readPrefix(victim, 'tier/');
    expect(got.size).toBe(KEYS - 30);
    for (let i = 30; i < KEYS; i++) expect(got.get(key(i)), key(i)).toBe(value(i, i < 90 ? 3 : 2));
    const backup = await followLeader(victim, '/snapshot');
    expect(backup.status).toBe(200);
    const bytes = new Uint8Array(await backup.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    for (const i of [30, 150, KEYS - 1]) expect(text.includes(value(i, i < 90 ? 3 : 2)), `backup holds ${key(i)}`).toBe(true);
  });

  it("reports the process's memory in /status and /metrics (what the tiers bound)", async () => {
    const node = tiered.live()[0]!;
    const m = (await status(node)).memory;
    for (const v of [m.rssBytes, m.heapUsedBytes, m.heapTotalBytes, m.externalBytes])
      expect(Number.isSafeInteger(v) && v > 0, JSON.stringify(m)).toBe(true);
    expect(Number.isSafeInteger(m.heapTrims) && m.heapTrims! >= 0, 'heap trims counted (heap-trim.ts)').toBe(true);
    expect(m.heapTotalBytes).toBeGreaterThanOrEqual(m.heapUsedBytes);
    expect(m.rssBytes).toBeGreaterThan(m.heapUsedBytes);
    const families = parsePromText(await (await fetch(`${node.url}/metrics`)).text());
    const rss = requiredSample(families, 'process_resident_memory_bytes');
    expect(rss).toBeGreaterThan(m.heapUsedBytes);
    for (const name of ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes'])
      expect(requiredSample(families, name), name).toBeGreaterThan(0);
  });

  it('a node runs with the memory settings of process-tuning.ts, as `npm run node` starts one', async () => {
    const node = tiered.live()[0]!;
    const pid = node.proc!.pid!;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    for (const [k, v] of Object.entries(NODE_PROCESS_ENV)) expect(environ, k).toContain(`${k}=${v}`);
    const script = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> })
      .scripts['node']!;
    const words = script.split(/\s+/);
    for (const [k, v] of Object.entries(NODE_PROCESS_ENV)) expect(words, `npm run node sets ${k}`).toContain(`${k}=${v}`);
  });
});

describe('Node: the memory engine has no tier', () => {
  const memory = new ProcCluster({ engine: 'memory', size: 1, clusterId: 'mem' });
  beforeAll(() => memory.start(), 60_000);
  afterAll(() => memory.stopAll());

  it('the memory engine holds everything in memory: no cache in /status or /metrics', async () => {
    const node = memory.live()[0]!;
    expect((await status(node)).cache).toBeNull();
    const families = parsePromText(await (await fetch(`${node.url}/metrics`)).text());
    expect([...families.keys()].filter((n) => n.startsWith('metcd_cache_'))).toEqual([]);
  });
});
