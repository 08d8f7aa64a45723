// The deterministic fault simulator in the test suite: the production Peer on many seeds with
// safety, liveness and linearizability checked, a proof that the checks catch broken disks, and
// determinism. Longer campaigns: `npm run sim -- --seeds 100000`.

import { describe, expect, it } from 'vitest';
import { addRun, emptyAggregate, formatFailure } from './report.ts';
import { runSim, type SimResult } from './run.ts';

/** Seeds in `npm test`. Cluster sizes, fault mixes, disks and peer limits are drawn per seed. */
const SEEDS = 500;

function failuresOf(results: SimResult[]): string[] {
  return results.filter((r) => !r.ok).map(formatFailure);
}

describe('simulator (production Peer)', () => {
  it(`${SEEDS} seeds keep every safety, liveness and linearizability check`, async () => {
    const results: SimResult[] = [];
    const total = emptyAggregate();
    let five = 0;
    let instantDiskSlowWrites = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await runSim(seed);
      results.push(r);
      addRun(total, r);
      if (r.stats.nodes === 5) five++;
      if (r.diskDelayTicksMax === 0) instantDiskSlowWrites += r.stats.slowWrites;
    }
    expect(failuresOf(results)).toEqual([]);
    // The seeds really do mix sizes, faults and features (a run that skipped them proves little).
    expect(five).toBeGreaterThan(SEEDS / 4);
    expect(five).toBeLessThan((SEEDS * 3) / 4);
    expect(total.operations).toBeGreaterThan(SEEDS * 40);
    expect(total.unknownOutcome).toBeGreaterThan(0);
    expect(total.duplicatesAbsorbed).toBeGreaterThan(SEEDS * 5);
    expect(total.leaseReads).toBeGreaterThan(SEEDS * 5);
    // Crashes at every point where the peer awaits its storage.
    expect(total.crashes).toBeGreaterThan(SEEDS);
    expect(total.crashesNow).toBeGreaterThan(SEEDS / 2);
    expect(total.crashesAtSave).toBeGreaterThan(SEEDS / 10);
    expect(total.crashesAfterEarlySend).toBeGreaterThan(SEEDS / 10);
    expect(total.crashesAfterEarlyApply).toBeGreaterThan(SEEDS / 10);
    expect(total.crashesAtDurable).toBeGreaterThan(SEEDS / 10);
    expect(total.crashesDuringWrite).toBeGreaterThan(SEEDS / 20);
    expect(total.reappliedEntries).toBeGreaterThan(SEEDS / 5);
    expect(total.cleanRestarts).toBeGreaterThan(SEEDS / 10);
    // Partitions, pauses, membership changes and transfers through the peer's methods.
    expect(total.partitions).toBeGreaterThan(SEEDS);
    expect(total.pauses).toBeGreaterThan(SEEDS / 4);
    expect(total.stalls).toBeGreaterThan(SEEDS / 8);
    // Quiet stretches put groups to sleep (quiescence.ts): hosts stop ticking, clients, messages
    // and lease timers wake them, under the same faults.
    expect(total.quiesces).toBeGreaterThan(SEEDS / 2);
    expect(total.restingTicks).toBeGreaterThan(SEEDS * 10);
    expect(total.quiescentWakes).toBeGreaterThan(SEEDS / 2);
    expect(total.leaseTimers).toBeGreaterThan(SEEDS / 20);
    expect(total.leaseWakes).toBeGreaterThan(SEEDS / 50);
    expect(total.confChanges).toBeGreaterThan(SEEDS);
    expect(total.confChangesApplied).toBeGreaterThan(SEEDS * 2);
    expect(total.transfers).toBeGreaterThan(SEEDS / 2);
    expect(total.transfersTaken).toBeGreaterThan(SEEDS / 2);
    // Removed nodes kept running learn it (by applying their removal or from a member's notice)
    // and refuse clients; host.ts fails a run where one campaigns after.
    expect(total.removedLingering).toBeGreaterThan(SEEDS / 10);
    expect(total.removedLearned).toBeGreaterThan(total.removedLingering / 2);
    expect(total.removedRefusals).toBeGreaterThan(0);
    // A stranger claims terms on about a quarter of the seeds (stranger.ts fails a run where it
    // moves a peer in contact with its leader, or where any of its votes is stepped): its leader
    // messages reach peers in contact and out of contact, and a retired id is dropped as removed.
    expect(total.strangerRuns).toBeGreaterThan(SEEDS / 8);
    expect(total.strangerRuns).toBeLessThan(SEEDS / 2);
    expect(total.strangerDropped).toBeGreaterThan(SEEDS * 4);
    expect(total.strangerInContact).toBeGreaterThan(SEEDS);
    expect(total.strangerLetIn).toBeGreaterThan(SEEDS / 5);
    expect(total.removedSenderDrops).toBeGreaterThan(SEEDS / 20);
    // An administrator creates and revokes API tokens on about half the seeds (token-admin.ts);
    // members that hold different token sets fail the run's convergence check.
    expect(total.tokenCommands).toBeGreaterThan(SEEDS);
    // Lockers take one lock through the recipe POST /lock runs (lockers.ts): each acquisition is
    // checked for exclusion against the converged history, and holders for fencing order.
    expect(total.lockAcquisitions).toBeGreaterThan(SEEDS);
    expect(total.lockChecks).toBeGreaterThan(SEEDS);
    expect(total.tokensAtEnd).toBeGreaterThan(SEEDS / 20);
    // Watchers (watchers.ts) follow every run, resume after crashes, moves and ends, and each
    // one's changes are checked against the converged history; compaction passes some, small
    // buffers overflow some, quiet ones get progress.
    expect(total.watchEventsChecked).toBeGreaterThan(SEEDS * 20);
    expect(total.watchRegistrations).toBeGreaterThan(SEEDS * 5);
    expect(total.watchCompacted).toBeGreaterThan(SEEDS / 50);
    expect(total.watchOverflows).toBeGreaterThan(SEEDS / 5);
    expect(total.watchProgress).toBeGreaterThan(SEEDS * 10);
    // The sliced snapshot job runs and its snapshots are installed (chunked) by laggards and joiners.
    expect(total.compactions).toBeGreaterThan(SEEDS * 5);
    expect(total.snapshotsInstalled).toBeGreaterThan(SEEDS);
    // The overlap order's early send happens, the slow disk is slow on about half the seeds
    // (and only there), and the peer keeps working while a write is out.
    expect(total.earlySendSaves).toBeGreaterThan(SEEDS * 20);
    expect(total.slowDiskRuns).toBeGreaterThan(SEEDS / 4);
    expect(total.slowDiskRuns).toBeLessThan((SEEDS * 3) / 4);
    expect(instantDiskSlowWrites).toBe(0);
    expect(total.slowWrites).toBeGreaterThan(SEEDS * 40);
    expect(total.stepsDuringWrite).toBeGreaterThan(SEEDS * 100);
    expect(total.leaderAcksDuringWrite).toBeGreaterThan(SEEDS * 5);
    expect(total.requestsDuringWrite).toBeGreaterThan(SEEDS * 5);
    // Derived state deferred by the disk (and some of it lost in crashes), and the space quota.
    expect(total.deferRuns).toBeGreaterThan(SEEDS / 4);
    expect(total.derivedDeferred).toBeGreaterThan(SEEDS * 20);
    expect(total.derivedLost).toBeGreaterThan(SEEDS / 20);
    expect(total.quotaRuns).toBeGreaterThan(SEEDS / 8);
    // Tiered peers with caches of a few records: their reads keep going to the disk.
    expect(total.tieredRuns).toBeGreaterThan(SEEDS / 4);
    expect(total.tierRecordReads).toBeGreaterThan(SEEDS * 50);
    expect(total.tierPrefetches, 'client reads prefetched off the loop (RecordStore.prefetch)').toBeGreaterThan(SEEDS);
    // …which stream their snapshots as leaders and stage them as followers.
    expect(total.snapshotStreams).toBeGreaterThan(SEEDS / 8);
    expect(total.snapshotsStaged).toBeGreaterThan(SEEDS / 8);
    expect(total.noSpace).toBeGreaterThan(SEEDS / 4);
    // Small session tables drop sessions (idle expiry, LRU eviction); clients then meet
    // session-expired and begin new sessions, and exactly-once holds within the window.
    expect(total.smallSessionRuns).toBeGreaterThan(SEEDS / 8);
    expect(total.smallSessionRuns).toBeLessThan(SEEDS / 2);
    expect(total.sessionsDropped).toBeGreaterThan(SEEDS);
    expect(total.sessionExpired).toBeGreaterThan(SEEDS / 20);
    expect(total.registrations).toBeGreaterThan(SEEDS / 2);
    // Bounded waiting rooms refuse, and a batching transport holds commit-only appends.
    expect(total.tooManyPending).toBeGreaterThan(SEEDS / 4);
    expect(total.heldForCompany).toBeGreaterThan(SEEDS * 20);
  }, 180_000);

  it('replays the drawn slow disk: the replay command names it, and forcing it gives the same run', async () => {
    const disks = new Set<number>();
    for (const seed of [2, 3, 4, 17, 25, 40]) {
      const r = await runSim(seed);
      disks.add(r.diskDelayTicksMax);
      if (r.diskDelayTicksMax > 0) expect(r.replay).toContain(`--disk-delay ${r.diskDelayTicksMax}`);
      else expect(r.replay).not.toContain('--disk-delay');
      expect((await runSim(seed, { diskDelayTicksMax: r.diskDelayTicksMax })).digest).toBe(r.digest);
    }
    expect(disks.has(0)).toBe(true);
    expect(disks.size).toBeGreaterThan(2);
  });

  it('with no faults, everything commits and every operation completes with a known outcome', async () => {
    for (const nodes of [3, 5] as const) {
      const r = await runSim(7, { nodes, faults: 'none' });
      expect(r.ok, formatFailure(r)).toBe(true);
      expect(r.stats.unknownOutcome).toBe(0);
      expect(r.stats.operations).toBeGreaterThan(50);
      expect(r.stats.committed).toBeGreaterThan(30);
    }
  });

  it('catches a disk that forgets the vote (two votes in one term after a restart)', async () => {
    // Crash-heavy with instant restarts, long delays and duplicates: many elections, many
    // restarts right after voting, and vote requests that arrive after the restarted voter's
    // post-restart lease (during which the core refuses votes) ran out.
    const mix = { crashPerMille: 150, downTicksMax: 0, delayTicksMax: 20, duplicatePercent: 20, transferPerMille: 40 };
    let caught: SimResult | null = null;
    for (let seed = 1; seed <= 60 && caught === null; seed++) {
      const r = await runSim(seed, { persistence: 'forget-vote', mix, chaosTicks: 200 });
      if (!r.ok) caught = r;
    }
    expect(caught, 'forget-vote went unnoticed on 60 seeds').not.toBeNull();
    expect(['vote-once', 'election-safety', 'leader-completeness', 'lost-commit', 'commit-durability', 'linearizability']).toContain(
      caught!.failure!.invariant,
    );
    expect(caught!.replay).toContain(`--seed ${caught!.seed}`);
    expect(caught!.replay).toContain('--persistence forget-vote');
    // The same seed with a correct disk passes: the failure is the bug, not the harness.
    const fixed = await runSim(caught!.seed, { mix, chaosTicks: 200 });
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
  });

  it('catches a disk that answers save() before the write is durable (acknowledged data lost in a crash)', async () => {
    const mix = { crashPerMille: 100, downTicksMax: 5, dropPercent: 5 };
    const safety = new Set([
      'commit-durability',
      'lost-commit',
      'leader-completeness',
      'committed-overwrite',
      'vote-once',
      'election-safety',
      'state-machine-safety',
      'linearizability',
      'apply-not-durable',
    ]);
    let caught: SimResult | null = null;
    for (let seed = 1; seed <= 60 && caught === null; seed++) {
      const r = await runSim(seed, { persistence: 'ack-before-durable', mix, chaosTicks: 200 });
      if (!r.ok && safety.has(r.failure!.invariant)) caught = r;
    }
    expect(caught, 'ack-before-durable went unnoticed on 60 seeds').not.toBeNull();
    expect(caught!.replay).toContain('--persistence ack-before-durable');
    // The same seed and the same (slow) disk, answering only once durable, passes.
    const fixed = await runSim(caught!.seed, { mix, chaosTicks: 200, diskDelayTicksMax: caught!.diskDelayTicksMax });
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
    expect(fixed.stats.slowWrites).toBeGreaterThan(0);
  });

  it('catches a tiered disk whose reads lag one save behind (a tiered peer applies from stale records)', async () => {
    const mix = { tierCacheBytes: 0 };
    let caught: SimResult | null = null;
    for (let seed = 1; seed <= 30 && caught === null; seed++) {
      const r = await runSim(seed, { persistence: 'tier-shows-late', mix, chaosTicks: 200 });
      if (!r.ok) caught = r;
    }
    expect(caught, 'tier-shows-late went unnoticed on 30 seeds').not.toBeNull();
    expect(caught!.replay).toContain('--persistence tier-shows-late');
    const fixed = await runSim(caught!.seed, { mix, chaosTicks: 200 });
    expect(fixed.ok, formatFailure(fixed)).toBe(true);
    expect(fixed.stats.tierRecordReads).toBeGreaterThan(0);
  });

  it('replays a seed exactly: the same seed gives the same trace twice', async () => {
    for (const seed of [3, 11]) {
      const a = await runSim(seed, { trace: true });
      const b = await runSim(seed, { trace: true });
      expect(a.trace.length).toBeGreaterThan(100);
      expect(b.trace).toEqual(a.trace);
      expect(b.digest).toBe(a.digest);
    }
    // And different seeds give different runs.
    expect((await runSim(3)).digest).not.toBe((await runSim(4)).digest);
  });
});
