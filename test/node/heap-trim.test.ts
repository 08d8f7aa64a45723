// Giving back the heap a burst left reserved (node-runtime/heap-trim.ts): when the trimmer
// decides to collect (only when the loop was quiet and the slack is large, once per burst), that
// V8's gc with flavor 'last-resort' really gives reserved heap back in this Node, and that a real
// node trims by itself once a burst of writes is over and reports it in /status and /metrics.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_TRIM, HeapTrimmer, obtainGc, type GcFunction, type HeapTrim } from '../../node-runtime/heap-trim.ts';
import type { ProcessMemory } from '../../worker/api/host.ts';
import { parsePromText, requiredSample } from '../support/prom-text.ts';
import { sleep } from '../support/wait.ts';
import { ProcCluster, followLeader } from './proc-cluster.ts';

const MB = 1_000_000;

/** A trimmer over a heap the test sets, with a gc that records its calls and leaves the
 *  reserved heap the test says. It starts with `total` reserved. */
function fakeHeap(total: number) {
  const heap = { heapUsed: total / 2, heapTotal: total };
  const calls: Parameters<GcFunction>[0][] = [];
  const trims: HeapTrim[] = [];
  let leaveTotal = total;
  const gc: GcFunction = (o) => {
    calls.push(o);
    heap.heapTotal = leaveTotal;
    heap.heapUsed = leaveTotal / 2;
  };
  const trimmer = new HeapTrimmer(
    gc,
    (t) => trims.push(t),
    DEFAULT_HEAP_TRIM,
    () => ({ ...heap }),
  );
  return { heap, calls, trims, trimmer, leave: (bytes: number) => (leaveTotal = bytes) };
}

const { regrowBytes, regrowShare, utilizationMax } = DEFAULT_HEAP_TRIM;

describe('HeapTrimmer decides', () => {
  it('collects when the loop was quiet and the reserved heap grew, with the memory-reducing collection', () => {
    const h = fakeHeap(50 * MB);
    h.heap.heapTotal = 300 * MB;
    h.leave(60 * MB);
    expect(h.trimmer.check(0.01)).toBe(true);
    expect(h.calls).toEqual([{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
    expect(h.trimmer.stats).toEqual({ trims: 1, releasedBytes: 240 * MB });
    expect(h.trims).toEqual([
      { heapTotalBeforeBytes: 300 * MB, heapTotalAfterBytes: 60 * MB, heapUsedAfterBytes: 30 * MB, pauseMs: expect.any(Number) },
    ]);
  });

  it('leaves a busy loop alone, however much the heap grew', () => {
    const h = fakeHeap(50 * MB);
    h.heap.heapTotal = 400 * MB;
    expect(h.trimmer.check(utilizationMax + 0.01)).toBe(false);
    expect(h.calls).toHaveLength(0);
  });

  it('leaves a heap alone that grew by less than the bytes floor, or by less than its share', () => {
    const small = fakeHeap(50 * MB);
    small.heap.heapTotal = 50 * MB + regrowBytes - 1;
    expect(small.trimmer.check(0)).toBe(false);
    const large = fakeHeap(800 * MB); // live data: a trim only after it grows by a quarter
    large.heap.heapTotal = 800 * MB * (1 + regrowShare) - 1;
    expect(large.trimmer.check(0)).toBe(false);
    large.heap.heapTotal = 800 * MB * (1 + regrowShare);
    expect(large.trimmer.check(0)).toBe(true);
    expect(small.calls.length + large.calls.length).toBe(1);
  });

  it('collects once per burst: the reserved heap must grow again from what the trim left', () => {
    const h = fakeHeap(40 * MB);
    h.heap.heapTotal = 200 * MB;
    h.leave(120 * MB); // V8 kept some
    expect(h.trimmer.check(0)).toBe(true);
    expect(h.trimmer.check(0)).toBe(false); // the same heap again: no second pause for nothing
    h.heap.heapTotal = 120 * MB + regrowBytes; // a new burst
    expect(h.trimmer.check(0)).toBe(true);
    expect(h.calls).toHaveLength(2);
  });
});

describe("this Node's gc", () => {
  it('is obtainable without --expose-gc, and a last-resort collection gives reserved heap back', () => {
    const gc = obtainGc();
    expect(gc).not.toBeNull();
    expect((globalThis as { gc?: unknown }).gc, 'gc is not left exposed on the global').toBeUndefined();
    // A burst: ~200 MB of short-lived objects that outlive a few scavenges, then dropped.
    let keep: string[][] = [];
    for (let round = 0; round < 40; round++) {
      keep.push(Array.from({ length: 20_000 }, (_, i) => `burst ${round} ${i} `.repeat(4)));
      if (keep.length > 8) keep = keep.slice(1);
    }
    keep = [];
    const before = process.memoryUsage().heapTotal;
    gc!({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const after = process.memoryUsage();
    expect(after.heapTotal).toBeLessThan(before);
    expect(after.heapTotal - after.heapUsed).toBeLessThan(before - after.heapUsed);
  });
});

describe('a node trims its heap once a burst is over', () => {
  const cluster = new ProcCluster({ engine: 'memory', size: 1, clusterId: 'trim' });
  beforeAll(() => cluster.start(), 60_000);
  afterAll(() => cluster.stopAll());

  const memory = async (): Promise<ProcessMemory> =>
    ((await (await fetch(`${cluster.live()[0]!.url}/status`)).json()) as { memory: ProcessMemory }).memory;

  it('after a burst of writes, /status and /metrics show a trim that gave reserved heap back', { timeout: 120_000 }, async () => {
    const leader = await cluster.leader();
    const before = await memory();
    expect(before.heapTrims).toBe(0);
    // A burst that leaves garbage behind: 40 revisions of 1,000 keys with 2 KB values overwrite
    // each other (the memory engine keeps every version as history, ~80 MB), then a compaction
    // of the history drops all but the last.
    const value = (b: number, i: number) => `burst ${b} ${i} `.padEnd(2000, '.');
    let revision = 0;
    for (let b = 0; b < 40; b++) {
      const body = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`trim/${i}`, value(b, i)]));
      const res = await followLeader(leader, '/key', { method: 'POST', body: JSON.stringify(body) });
      expect(res.status).toBe(200);
      revision = ((await res.json()) as { revision: number }).revision;
    }
    const compacted = await followLeader(leader, '/compact', { method: 'POST', body: JSON.stringify({ revision }) });
    expect(compacted.status).toBe(200);
    // Polled once a second: the node must find its loop quiet, which a poll every 50 ms is not.
    let trimmed: ProcessMemory | undefined;
    for (let s = 0; s < 60 && trimmed === undefined; s++) {
      await sleep(1000);
      const m = await memory();
      if ((m.heapTrims ?? 0) >= 1) trimmed = m;
    }
    if (trimmed === undefined) throw new Error(`no heap trim within 60 s of the burst: ${JSON.stringify(await memory())}`);
    expect(trimmed.heapTrimReleasedBytes).toBeGreaterThan(0);
    const families = parsePromText(await (await fetch(`${leader.url}/metrics`)).text());
    expect(requiredSample(families, 'metcd_heap_trims_total')).toBeGreaterThanOrEqual(1);
  });
});
