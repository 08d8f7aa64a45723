// Human-readable output for runs and campaigns: one block per failure (always with the seed and
// the exact replay command) and a running aggregate of the stats.

import type { SimResult, SimStats } from './run.ts';
import { STATE_BYTES_UNLIMITED } from './options.ts';
import { emptyNodeCounters, NODE_COUNTER_KEYS, type NodeCounters } from './counters.ts';

export function formatFailure(r: SimResult): string {
  const f = r.failure;
  if (f === undefined) return `seed ${r.seed}: ok`;
  return [
    `seed ${r.seed} FAILED at tick ${f.tick}: ${f.invariant}`,
    `  ${f.message.split('\n').join('\n  ')}`,
    `  replay: ${r.replay}`,
  ].join('\n');
}

export function formatStats(s: SimStats): string {
  return (
    `nodes=${s.nodes} ticks=${s.ticks} committed=${s.committed} ops=${s.operations} stale=${s.staleReads} lease=${s.leaseReads} ` +
    `snapshots=${s.snapshotsInstalled}/${s.compactions} dupsAbsorbed=${s.duplicatesAbsorbed} noSpace=${s.noSpace} ` +
    `crashes=${s.crashes} (now ${s.crashesNow}, atSave ${s.crashesAtSave}, afterEarlySend ${s.crashesAfterEarlySend}, afterEarlyApply ${s.crashesAfterEarlyApply}, atDurable ${s.crashesAtDurable}, lostWrites ${s.crashesDuringWrite}, reapplied ${s.reappliedEntries}) ` +
    `saves=${s.saves} slow=${s.slowWrites} earlySendSaves=${s.earlySendSaves} derived=${s.derivedDeferred}/${s.derivedLost}lost ` +
    `stepsDuringWrite=${s.stepsDuringWrite} requestsDuringWrite=${s.requestsDuringWrite} stalls=${s.stalls} ` +
    `quiesces=${s.quiesces} restingTicks=${s.restingTicks} quiescentWakes=${s.quiescentWakes} leaseWakes=${s.leaseWakes} ` +
    `unknown=${s.unknownOutcome} msgs=${s.messages} partitions=${s.partitions} ` +
    `conf=${s.confChanges}/${s.confChangesApplied}applied transfers=${s.transfers}/${s.transfersTaken}taken pauses=${s.pauses} leaderAfterHeal=${s.ticksToLeader} ` +
    `clientsDone=${s.ticksToClientsDone} converged=${s.ticksToConverge} lin=${s.linearizability}`
  );
}

/** Aggregate over many runs (what a campaign prints at the end). */
export interface Aggregate extends NodeCounters {
  runs: number;
  failed: number;
  committed: number;
  operations: number;
  staleReads: number;
  /** Runs with a slow disk (writes outstanding while the node steps), with derived-state deferral, with a small quota. */
  slowDiskRuns: number;
  deferRuns: number;
  quotaRuns: number;
  duplicatesAbsorbed: number;
  unknownOutcome: number;
  linUnknown: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  transfers: number;
  pauses: number;
  ticksToLeaderMax: number;
  ticksToLeaderSum: number;
  ticksToConvergeMax: number;
  /** Histogram of ticks to a stable leader after healing, in buckets of 10 ticks. */
  leaderHistogram: Record<string, number>;
}

export function emptyAggregate(): Aggregate {
  return {
    ...emptyNodeCounters(),
    runs: 0,
    failed: 0,
    committed: 0,
    operations: 0,
    staleReads: 0,
    slowDiskRuns: 0,
    deferRuns: 0,
    quotaRuns: 0,
    duplicatesAbsorbed: 0,
    unknownOutcome: 0,
    linUnknown: 0,
    crashes: 0,
    partitions: 0,
    confChanges: 0,
    transfers: 0,
    pauses: 0,
    ticksToLeaderMax: 0,
    ticksToLeaderSum: 0,
    ticksToConvergeMax: 0,
    leaderHistogram: {},
  };
}

export function addRun(a: Aggregate, r: SimResult): void {
  a.runs++;
  if (!r.ok) {
    a.failed++;
    return;
  }
  const s = r.stats;
  a.committed += s.committed;
  a.operations += s.operations;
  a.staleReads += s.staleReads;
  for (const k of NODE_COUNTER_KEYS) a[k] += s[k];
  if (r.diskDelayTicksMax > 0) a.slowDiskRuns++;
  if (r.mix.deferDerivedTicks > 0) a.deferRuns++;
  if (r.mix.stateBytesMax < STATE_BYTES_UNLIMITED) a.quotaRuns++;
  a.duplicatesAbsorbed += s.duplicatesAbsorbed;
  a.unknownOutcome += s.unknownOutcome;
  if (s.linearizability === 'unknown') a.linUnknown++;
  a.crashes += s.crashes;
  a.partitions += s.partitions;
  a.confChanges += s.confChanges;
  a.transfers += s.transfers;
  a.pauses += s.pauses;
  a.ticksToLeaderMax = Math.max(a.ticksToLeaderMax, s.ticksToLeader);
  a.ticksToLeaderSum += s.ticksToLeader;
  a.ticksToConvergeMax = Math.max(a.ticksToConvergeMax, s.ticksToConverge);
  const bucket = `${Math.floor(s.ticksToLeader / 10) * 10}`;
  a.leaderHistogram[bucket] = (a.leaderHistogram[bucket] ?? 0) + 1;
}

export function mergeAggregate(into: Aggregate, from: Aggregate): void {
  for (const k of Object.keys(from) as Array<keyof Aggregate>) {
    if (k === 'leaderHistogram') {
      for (const [b, n] of Object.entries(from.leaderHistogram)) into.leaderHistogram[b] = (into.leaderHistogram[b] ?? 0) + n;
    } else if (k === 'ticksToLeaderMax' || k === 'ticksToConvergeMax') {
      into[k] = Math.max(into[k], from[k]);
    } else {
      into[k] += from[k];
    }
  }
}

export function formatAggregate(a: Aggregate): string {
  const ok = a.runs - a.failed;
  const hist = Object.entries(a.leaderHistogram)
    .sort((x, y) => Number(x[0]) - Number(y[0]))
    .map(([b, n]) => `${b}+:${n}`)
    .join(' ');
  return [
    `runs ${a.runs}, failed ${a.failed}`,
    `committed entries ${a.committed}, client ops ${a.operations} (+${a.staleReads} stale reads; ${a.leaseReads} default reads served by lease), unknown outcome ${a.unknownOutcome}`,
    `snapshots: ${a.compactions} taken by the peers' sliced job, ${a.snapshotsInstalled} installed; retried commands absorbed by sessions ${a.duplicatesAbsorbed}; puts refused at the quota ${a.noSpace} (small quota on ${a.quotaRuns} runs), operations refused with full waiting rooms ${a.tooManyPending}`,
    `faults: clean restarts ${a.cleanRestarts}, crashes ${a.crashes} (now ${a.crashesNow}; at save() ${a.crashesAtSave}; after an early send ${a.crashesAfterEarlySend}; after an early apply ${a.crashesAfterEarlyApply}, ${a.reappliedEntries} entries re-applied; durable but unanswered ${a.crashesAtDurable}; ${a.crashesDuringWrite} lost outstanding writes), ` +
      `partitions ${a.partitions}, conf changes proposed ${a.confChanges} (${a.confChangesApplied} applied on some peer), transfers ${a.transfers} (${a.transfersTaken} taken), process pauses ${a.pauses} (${a.stalls} ticks the lease guard took as a stall); ` +
      `quiescence: ${a.quiesces} groups put to sleep by their leader, ${a.restingTicks} peer ticks skipped by resting hosts, ${a.quiescentWakes} wakes, ${a.leaseTimers} rests with a lease timer, ${a.leaseWakes} woken by it; ` +
      `removed nodes kept running ${a.removedLingering}, peers that learned they were removed ${a.removedLearned}, client requests they refused ${a.removedRefusals}`,
    `disk: ${a.saves} saves, ${a.earlySendSaves} after their entries left (early send); slow disk on ${a.slowDiskRuns} runs: ${a.slowWrites} writes outstanding >= 1 tick, ` +
      `${a.stepsDuringWrite} messages stepped (${a.leaderAcksDuringWrite} acks at a leader still writing) and ${a.requestsDuringWrite} client requests taken during one; derived state deferred on ${a.deferRuns} runs: ${a.derivedDeferred} batches, ${a.derivedLost} lost in crashes; ${a.heldForCompany} commit-only appends held for company by the transport`,
    `tiers: tiered peers (a cache of 0 to 4096 bytes over the disk) on ${a.tieredRuns} runs: ${a.tierRecordReads} records read from their disks (${a.tierPrefetches} off the loop for a read), ${a.snapshotStreams} snapshot transfers streamed, ${a.snapshotsStaged} installs staged`,
    `sessions: small table on ${a.smallSessionRuns} runs: ${a.sessionsDropped} sessions dropped (expired or evicted, over all nodes), ${a.registrations} begun, ` +
      `${a.sessionExpired} writes answered session-expired, ${a.registrationsReapplied} registrations applied again after their session was dropped`,
    `stranger (a non-member claiming terms) on ${a.strangerRuns} runs: ${a.strangerMessages} messages, ${a.strangerDropped} dropped by the peers, ${a.strangerInContact} leader messages to peers in contact with their leader (none moved one), ${a.strangerLetIn} stepped by peers out of contact; ${a.removedSenderDrops} sent under a retired id dropped as a removed member's`,
    `locks: ${a.lockAcquisitions} acquisitions (${a.lockChecks} checked for exclusion against the converged history; fencing order checked), ${a.lockFencedOff} holders refused by the fencing resource`,
    `tokens: ${a.tokenCommands} create/revoke commands sent by the administrator, ${a.tokensAtEnd} tokens held at the end (every member's set compared)`,
    `leases: ${a.leasesGranted} granted, ${a.leaseKeepAlives} keep-alives acknowledged, ${a.leaseChecks} checks of a kept-alive lease and its key on a node, ${a.leasesExpired} leases expired on every member after healing`,
    `watch: ${a.watchRegistrations} registrations (first and resumed), ${a.watchEventsReceived} changes received, ${a.watchEventsChecked} checked against the converged history, ${a.watchProgress} progress frames, ${a.watchCompacted} ended by compaction (small retention on ${a.watchSmallRetentionRuns} runs), ${a.watchOverflows} by overflow (small buffers on ${a.watchSmallBufferRuns} runs)`,
    `linearizability search inconclusive (budget) on ${a.linUnknown} runs`,
    `ticks to a stable leader after healing: mean ${ok > 0 ? (a.ticksToLeaderSum / ok).toFixed(1) : '-'}, max ${a.ticksToLeaderMax}; histogram ${hist}`,
    `ticks to full convergence after healing: max ${a.ticksToConvergeMax}`,
  ].join('\n');
}
