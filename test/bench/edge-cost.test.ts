// The idle accounting of the edge cost phase (edge-cost.ts idlePeer): a difference is taken only
// between readings of the same object instance; a peer that restarted is reported as such, with
// what its new instance counted inside the window or nothing, never a made-up difference.

import { describe, expect, it } from 'vitest';
import type { EdgeCosts } from '../../worker/edge/costs.ts';
import { edgeCostVerdicts, idlePeer } from './edge-cost.ts';
import type { EdgeCostResult } from './edge-cost.ts';

function cost(instance: string, startedAtMs: number, n: Partial<EdgeCosts> = {}): EdgeCosts {
  return {
    instance,
    startedAtMs,
    rpcCallsSent: 0,
    rpcCallsReceived: 0,
    clientRequests: 0,
    sqliteRowsRead: 0,
    sqliteRowsWritten: 0,
    alarmsSet: 0,
    alarmsFired: 0,
    awakeMs: 0,
    ...n,
  };
}
const reading = (c: EdgeCosts, ticking = false) => ({ cost: c, role: 'follower', ticking, atMs: 0 });

describe('edge cost phase: idle accounting', () => {
  it('the same instance: the differences, per idle minute', () => {
    const start = reading(cost('a', 0, { rpcCallsReceived: 100, sqliteRowsWritten: 5, awakeMs: 1000 }));
    const end = reading(cost('a', 0, { rpcCallsReceived: 400, sqliteRowsWritten: 5, awakeMs: 31_000 }), true);
    const p = idlePeer('p2', start, end, 1000, 31_000); // a 30 s window
    expect(p).toMatchObject({
      restarted: false,
      wokenDuringIdle: false,
      callsReceived: 600,
      rowsWritten: 0,
      awakeMs: 60_000,
      ticking: true,
    });
  });

  it('a new instance started inside the window was woken while idle: what it counted is a lower bound', () => {
    const p = idlePeer(
      'p2',
      reading(cost('a', 0, { rpcCallsReceived: 100 })),
      reading(cost('b', 20_000, { rpcCallsReceived: 3 })),
      1000,
      61_000,
    );
    expect(p).toMatchObject({ restarted: true, wokenDuringIdle: true, callsReceived: 3, awakeMs: null });
  });

  it('a new instance started only when read at the end slept: its window is not countable', () => {
    const p = idlePeer('p2', reading(cost('a', 0, { rpcCallsReceived: 100 })), reading(cost('b', 61_500)), 1000, 61_000);
    expect(p).toMatchObject({ restarted: true, wokenDuringIdle: false, callsReceived: null, rowsWritten: null });
  });

  it('the idle target is met only with 0 calls and no ticking peer', () => {
    const base: EdgeCostResult = {
      idleS: 60,
      idle: [idlePeer('p1', reading(cost('a', 0)), reading(cost('a', 0)), 0, 60_000)],
      idleCallsPerMinute: 0,
      idleRowsWrittenPerMinute: 0,
      warmWriteMs: 10,
      firstWriteAfterIdleMs: 15,
      electionTimeoutMs: 1000,
      perWrite: { calls: 3, rowsWritten: 6, rowsRead: 0, cpuMs: 1, writes: 10, windowMs: 100, netCalls: 3, netRowsWritten: 6 },
    };
    expect(edgeCostVerdicts(base).map((v) => v.reached)).toEqual([true, true, true]);
    const ticking = { ...base, idle: [{ ...base.idle[0]!, ticking: true }] };
    expect(edgeCostVerdicts(ticking)[0]!.reached).toBe(false);
    const busy = { ...base, idleCallsPerMinute: 600, firstWriteAfterIdleMs: 1021 };
    expect(edgeCostVerdicts(busy).map((v) => v.reached)).toEqual([false, true, false]);
  });
});
