// When a client's cache miss goes off the event loop (loop-read-cost.ts): only while reads on
// the loop average over SLOW_READ_US, and even then one offer in 32 stays on the loop so the
// average follows the disk back down.

import { describe, expect, it } from 'vitest';
import { LoopReadCost, SLOW_READ_US } from '../../node-runtime/storage/loop-read-cost.ts';

function costWith(readUs: () => number) {
  let now = 0;
  const cost = new LoopReadCost(() => now);
  const read = () => cost.time(() => (now += readUs()));
  return { cost, read };
}

describe('LoopReadCost', () => {
  it('keeps misses on the loop while reads are fast, sends them off once reads are slow, and comes back', () => {
    let us = 3;
    const { cost, read } = costWith(() => us);
    for (let i = 0; i < 100; i++) read();
    expect(cost.averageReadUs).toBeCloseTo(3);
    expect(Array.from({ length: 64 }, () => cost.offLoop()).some(Boolean)).toBe(false);
    us = 400; // the pages left the cache: reads wait on the disk
    for (let i = 0; i < 100; i++) read();
    expect(cost.averageReadUs).toBeGreaterThan(SLOW_READ_US);
    const offers = Array.from({ length: 64 }, () => cost.offLoop());
    expect(offers.filter((x) => !x)).toHaveLength(2); // one in 32 stays, to keep measuring
    us = 3;
    for (let i = 0; i < 200; i++) read();
    expect(cost.averageReadUs).toBeLessThan(SLOW_READ_US);
    expect(cost.offLoop()).toBe(false);
  });

  it('a read that throws is timed too', () => {
    const { cost } = costWith(() => 0);
    expect(() =>
      cost.time(() => {
        throw new Error('damaged');
      }),
    ).toThrow('damaged');
    expect(cost.averageReadUs).toBe(0);
  });
});
