// The deterministic fault simulator in the test suite: many seeds with safety, liveness and
// linearizability checked, a proof that the checks catch a real host bug, and determinism.
// Longer campaigns: `npm run sim -- --seeds 100000`.

import { describe, expect, it } from 'vitest';
import { addRun, emptyAggregate, formatFailure } from './report.ts';
import { runSim, type SimResult } from './run.ts';

/** Seeds in `npm test`. Both cluster sizes and fault mixes are drawn per seed. */
const SEEDS = 500;

function failuresOf(results: SimResult[]): string[] {
  return results.filter((r) => !r.ok).map(formatFailure);
}

describe('simulator', () => {
  it(`${SEEDS} seeds keep every safety, liveness and linearizability check`, () => {
    const results: SimResult[] = [];
    const total = emptyAggregate();
    let five = 0;
    let strictEarly = 0;
    let instantDiskSlowCounts = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = runSim(seed);
      results.push(r);
      addRun(total, r);
      if (r.stats.nodes === 5) five++;
      if (r.host === 'strict') strictEarly += r.stats.earlyMessages + r.stats.earlyApplies + r.stats.crashesAfterEarlyApply;
      if (r.diskDelayTicksMax === 0) instantDiskSlowCounts += r.stats.slowWrites + r.stats.stepsDuringWrite + r.stats.crashesDuringWrite;
    }
    expect(failuresOf(results)).toEqual([]);
    // The seeds really do mix sizes, faults and features (a run that skipped them proves little).
    expect(five).toBeGreaterThan(SEEDS / 4);
    expect(five).toBeLessThan((SEEDS * 3) / 4);
    expect(total.crashes).toBeGreaterThan(SEEDS / 4);
    expect(total.crashesAtSeams).toBeGreaterThan(SEEDS / 8);
    expect(total.partitions).toBeGreaterThan(SEEDS / 4);
    expect(total.confChanges).toBeGreaterThan(SEEDS / 4);
    expect(total.transfers).toBeGreaterThan(SEEDS / 4);
    expect(total.snapshotsInstalled).toBeGreaterThan(SEEDS / 4);
    expect(total.duplicatesAbsorbed).toBeGreaterThan(SEEDS / 4);
    expect(total.leaseReads).toBeGreaterThan(SEEDS);
    expect(total.unknownOutcome).toBeGreaterThan(0);
    expect(total.operations).toBeGreaterThan(SEEDS * 20);
    // Both host orders run, and the overlap host's early steps and their crash seams happen:
    // a leader's write lost after its entries went out, applied effects lost before their
    // write (and applied again after the restart).
    expect(total.overlapRuns).toBeGreaterThan(SEEDS / 4);
    expect(total.overlapRuns).toBeLessThan((SEEDS * 3) / 4);
    expect(strictEarly).toBe(0);
    expect(total.earlyMessages).toBeGreaterThan(SEEDS * 100);
    expect(total.earlyApplies).toBeGreaterThan(SEEDS * 20);
    expect(total.crashesAfterEarlySend).toBeGreaterThan(SEEDS / 25);
    expect(total.crashesAfterEarlyApply).toBeGreaterThan(SEEDS / 25);
    expect(total.reappliedEntries).toBeGreaterThan(SEEDS / 25);
    // The slow disk runs on both host orders, and its window happens: messages (leaders' acks
    // for entries they are still writing among them) and client requests stepped into the core
    // while a write is out, and crashes that lose an outstanding write.
    expect(total.slowDiskRuns).toBeGreaterThan(SEEDS / 5);
    expect(total.slowDiskRuns).toBeLessThan(SEEDS / 2);
    expect(total.slowDiskStrictRuns).toBeGreaterThan(SEEDS / 20);
    expect(total.slowDiskRuns - total.slowDiskStrictRuns).toBeGreaterThan(SEEDS / 10);
    expect(instantDiskSlowCounts).toBe(0);
    expect(total.slowWrites).toBeGreaterThan(SEEDS * 20);
    expect(total.stepsDuringWrite).toBeGreaterThan(SEEDS * 50);
    expect(total.leaderAcksDuringWrite).toBeGreaterThan(SEEDS * 5);
    expect(total.requestsDuringWrite).toBeGreaterThan(SEEDS * 5);
    expect(total.crashesDuringWrite).toBeGreaterThan(SEEDS / 25);
  });

  it('replays the drawn host mode: the replay command names it, and forcing it gives the same run', () => {
    const hosts = new Set<string>();
    for (const seed of [3, 4, 5, 6, 7, 8]) {
      const r = runSim(seed);
      hosts.add(r.host);
      expect(r.replay).toContain(`--host ${r.host}`);
      expect(runSim(seed, { host: r.host }).digest).toBe(r.digest);
    }
    expect([...hosts].sort()).toEqual(['overlap', 'strict']);
  });

  it('replays the drawn slow disk: the replay command names it, and forcing it gives the same run', () => {
    const disks = new Set<number>();
    for (const seed of [2, 3, 4, 17, 25, 40]) {
      const r = runSim(seed);
      disks.add(r.diskDelayTicksMax);
      if (r.diskDelayTicksMax > 0) expect(r.replay).toContain(`--disk-delay ${r.diskDelayTicksMax}`);
      else expect(r.replay).not.toContain('--disk-delay');
      expect(runSim(seed, { host: r.host, diskDelayTicksMax: r.diskDelayTicksMax }).digest).toBe(r.digest);
    }
    expect(disks.has(0)).toBe(true);
    expect(disks.size).toBeGreaterThan(2);
  });

  it('with no faults, everything commits and every operation completes with a known outcome', () => {
    for (const nodes of [3, 5] as const) {
      const r = runSim(7, { nodes, faults: 'none' });
      expect(r.ok, formatFailure(r)).toBe(true);
      expect(r.stats.unknownOutcome).toBe(0);
      expect(r.stats.operations).toBeGreaterThan(50);
      expect(r.stats.committed).toBeGreaterThan(30);
    }
  });

  it('catches a host that forgets to persist its vote (two votes in one term after a restart)', () => {
    // Crash-heavy with instant restarts, long delays and duplicates: many elections, many
    // restarts right after voting, and vote requests that arrive after the restarted voter's
    // post-restart lease (during which the core refuses votes) ran out.
    const mix = { crashPerMille: 150, downTicksMax: 0, delayTicksMax: 20, duplicatePercent: 20, transferPerMille: 40 };
    const caught: SimResult[] = [];
    for (let seed = 1; seed <= 200 && caught.length === 0; seed++) {
      const r = runSim(seed, { persistence: 'forget-vote', mix, chaosTicks: 200 });
      if (!r.ok) caught.push(r);
    }
    expect(caught.length, 'forget-vote went unnoticed on 200 seeds').toBe(1);
    const failure = caught[0]!;
    expect(['vote-once', 'election-safety', 'leader-completeness', 'lost-commit', 'commit-durability', 'linearizability'])
      .toContain(failure.failure!.invariant);
    expect(failure.replay).toContain(`--seed ${failure.seed}`);
    expect(failure.replay).toContain('--persistence forget-vote');
    // The same seed with a correct host passes: the failure is the bug, not the harness.
    const fixed = runSim(failure.seed, { mix, chaosTicks: 200 });
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
  });

  it('catches a host that sends before its write is durable (acknowledged entries lost in a crash)', () => {
    const mix = { crashPerMille: 100, downTicksMax: 5, dropPercent: 5 };
    const safety = new Set(['commit-durability', 'lost-commit', 'leader-completeness', 'committed-overwrite', 'vote-once',
      'election-safety', 'state-machine-safety', 'linearizability']);
    let caught: SimResult | null = null;
    for (let seed = 1; seed <= 200 && caught === null; seed++) {
      const r = runSim(seed, { persistence: 'send-before-fsync', mix, chaosTicks: 200 });
      if (!r.ok && safety.has(r.failure!.invariant)) caught = r;
    }
    expect(caught, 'send-before-fsync went unnoticed on 200 seeds').not.toBeNull();
    expect(caught!.replay).toContain('--persistence send-before-fsync');
    const fixed = runSim(caught!.seed, { mix, chaosTicks: 200 });
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
  });

  it('catches an overlap host whose followers acknowledge before their write (a crash takes back a counted ack)', () => {
    // The correct overlap host lets only a leader's appends and heartbeats leave early; this one
    // also sends appendResp early, so the leader can commit on an ack whose entries a crash loses.
    const mix = { crashPerMille: 100, downTicksMax: 5, dropPercent: 5 };
    const safety = new Set(['commit-durability', 'lost-commit', 'leader-completeness', 'committed-overwrite',
      'state-machine-safety', 'linearizability']);
    let caught: SimResult | null = null;
    for (let seed = 1; seed <= 200 && caught === null; seed++) {
      const r = runSim(seed, { persistence: 'ack-before-fsync', mix, chaosTicks: 200 });
      expect(r.host).toBe('overlap');
      if (!r.ok && safety.has(r.failure!.invariant)) caught = r;
    }
    expect(caught, 'ack-before-fsync went unnoticed on 200 seeds').not.toBeNull();
    expect(caught!.replay).toContain('--persistence ack-before-fsync');
    // The same seed with the correct overlap host (same early appends, same crashes) passes.
    const fixed = runSim(caught!.seed, { host: 'overlap', mix, chaosTicks: 200 });
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
    expect(fixed.stats.earlyMessages).toBeGreaterThan(0);
  });

  it("catches early acks on a slow disk too: a crash during a follower's outstanding write takes back a counted ack", () => {
    // The slow disk widens ack-before-fsync's window from one Ready seam to the whole write
    // (crashing any time while it is out loses it), so the checks must still see it there.
    const mix = { crashPerMille: 100, downTicksMax: 5, dropPercent: 5 };
    const disk = { chaosTicks: 200, diskDelayTicksMax: 4 };
    let caught: SimResult | null = null;
    for (let seed = 1; seed <= 50 && caught === null; seed++) {
      const r = runSim(seed, { persistence: 'ack-before-fsync', mix, ...disk });
      if (!r.ok && ['commit-durability', 'lost-commit', 'leader-completeness', 'state-machine-safety'].includes(r.failure!.invariant)) caught = r;
    }
    expect(caught, 'ack-before-fsync on a slow disk went unnoticed on 50 seeds').not.toBeNull();
    expect(caught!.replay).toContain('--disk-delay 4');
    const fixed = runSim(caught!.seed, { host: 'overlap', mix, ...disk });
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
    expect(fixed.stats.stepsDuringWrite).toBeGreaterThan(0);
    expect(fixed.stats.crashesDuringWrite).toBeGreaterThan(0);
  });

  it('replays a seed exactly: the same seed gives the same trace twice', () => {
    for (const seed of [3, 11]) {
      const a = runSim(seed, { trace: true });
      const b = runSim(seed, { trace: true });
      expect(a.trace.length).toBeGreaterThan(100);
      expect(b.trace).toEqual(a.trace);
      expect(b.digest).toBe(a.digest);
    }
    // And different seeds give different runs.
    expect(runSim(3).digest).not.toBe(runSim(4).digest);
  });
});
