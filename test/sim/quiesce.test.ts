// Quiescence under the simulator's faults (worker/peer/quiescence.ts, worker/raft/raft.ts): the
// checks catch a planted quiescence bug, and the same seed passes without it. Coverage (groups
// put to sleep, resting hosts, wakes, lease timers) is floored in sim.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { ReadRounds } from '../../worker/raft/readonly.ts';
import { Lessor } from '../../worker/peer/lessor.ts';
import { formatFailure } from './report.ts';
import { runSim, type SimResult } from './run.ts';
import type { SimOptions } from './options.ts';

const restore: Array<() => void> = [];
afterEach(() => {
  for (const undo of restore.splice(0)) undo();
});

/** Replace a prototype method for this test only. */
function plant<T extends object, K extends keyof T>(proto: T, name: K, bug: T[K]): void {
  const original = proto[name];
  proto[name] = bug;
  restore.push(() => {
    proto[name] = original;
  });
}

async function firstFailure(seeds: number, opts: Partial<SimOptions>, invariants: string[]): Promise<SimResult | null> {
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await runSim(seed, opts);
    if (!r.ok && invariants.includes(r.failure!.invariant)) return r;
  }
  return null;
}

describe('simulator: planted quiescence bugs', () => {
  it('catches a leader that, woken from quiescence, serves lease reads without confirming it still leads', async () => {
    // The woken leader keeps the lease of its last heartbeat round before the sleep (its ticks
    // stood still meanwhile). Long quiet stretches with frequent pokes and paused processes: a
    // sleeping leader paused while clients wake the others, who elect a new leader, answers the
    // read it finds on its socket when it resumes from that stale lease.
    plant(ReadRounds.prototype, 'dropLease', () => {});
    const opts: Partial<SimOptions> = {
      chaosTicks: 1000,
      mix: {
        quietPerMille: 20,
        quietPokePerMille: 60,
        pausePerMille: 30,
        partitionPerMille: 0,
        crashPerMille: 0,
        dropPercent: 0,
        membershipPerMille: 0,
        transferPerMille: 0,
        clockSkewPercent: 0,
      },
    };
    const caught = await firstFailure(60, opts, ['lease-safety', 'linearizability']);
    expect(caught, 'a woken leader trusting its old lease went unnoticed on 60 seeds').not.toBeNull();
    restore.splice(0).forEach((undo) => undo());
    const fixed = await runSim(caught!.seed, opts);
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
    expect(fixed.stats.quiesces).toBeGreaterThan(0);
  }, 120_000);

  it('catches a leader that credits its leases with more time than it slept (a lease kept alive is revoked early)', async () => {
    const elapse = Lessor.prototype.elapse;
    plant(Lessor.prototype, 'elapse', function (this: Lessor, ticks: number) {
      elapse.call(this, 3 * ticks + 10);
    });
    const caught = await firstFailure(60, {}, ['lease-kept-alive']);
    expect(caught, 'early lease expiry after a sleep went unnoticed on 60 seeds').not.toBeNull();
    restore.splice(0).forEach((undo) => undo());
    const fixed = await runSim(caught!.seed);
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
    expect(fixed.stats.leaseTimers + fixed.stats.restingTicks).toBeGreaterThan(0);
  }, 120_000);
});
