// Human-readable output for runs and campaigns: one block per failure (always with the seed and
// the exact replay command) and a running aggregate of the stats.

import type { SimResult, SimStats } from './run.ts';
import { emptyNodeCounters, NODE_COUNTER_KEYS, type NodeCounters } from './node.ts';

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
  return `nodes=${s.nodes} ticks=${s.ticks} committed=${s.committed} ops=${s.operations} stale=${s.staleReads} lease=${s.leaseReads} ` +
    `snapshots=${s.snapshotsInstalled}/${s.compactions} seamCrashes=${s.crashesAtSeams} dupsAbsorbed=${s.duplicatesAbsorbed} ` +
    `early=${s.earlyMessages}msgs/${s.earlyApplies}applies earlySendCrashes=${s.crashesAfterEarlySend} ` +
    `earlyApplyCrashes=${s.crashesAfterEarlyApply}(${s.reappliedEntries} reapplied) ` +
    `slowWrites=${s.slowWrites} stepsDuringWrite=${s.stepsDuringWrite} leaderAcks=${s.leaderAcksDuringWrite} requestsDuringWrite=${s.requestsDuringWrite} writeCrashes=${s.crashesDuringWrite} ` +
    `unknown=${s.unknownOutcome} msgs=${s.messages} crashes=${s.crashes} partitions=${s.partitions} ` +
    `conf=${s.confChanges} transfers=${s.transfers} leaderAfterHeal=${s.ticksToLeader} ` +
    `clientsDone=${s.ticksToClientsDone} converged=${s.ticksToConverge} lin=${s.linearizability}`;
}

/** Aggregate over many runs (what a campaign prints at the end). */
export interface Aggregate extends NodeCounters {
  runs: number;
  failed: number;
  committed: number;
  operations: number;
  staleReads: number;
  /** Runs with an overlap host (what their early steps did is in the NodeCounters sums). */
  overlapRuns: number;
  /** Runs with a slow disk (writes outstanding while the node steps), and how many were strict. */
  slowDiskRuns: number;
  slowDiskStrictRuns: number;
  duplicatesAbsorbed: number;
  unknownOutcome: number;
  linUnknown: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  transfers: number;
  ticksToLeaderMax: number;
  ticksToLeaderSum: number;
  ticksToConvergeMax: number;
  /** Histogram of ticks to a stable leader after healing, in buckets of 10 ticks. */
  leaderHistogram: Record<string, number>;
}

export function emptyAggregate(): Aggregate {
  return {
    ...emptyNodeCounters(),
    runs: 0, failed: 0, committed: 0, operations: 0, staleReads: 0, overlapRuns: 0, slowDiskRuns: 0, slowDiskStrictRuns: 0, duplicatesAbsorbed: 0, unknownOutcome: 0, linUnknown: 0,
    crashes: 0, partitions: 0, confChanges: 0, transfers: 0, ticksToLeaderMax: 0, ticksToLeaderSum: 0,
    ticksToConvergeMax: 0, leaderHistogram: {},
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
  if (r.host === 'overlap') a.overlapRuns++;
  if (r.diskDelayTicksMax > 0) {
    a.slowDiskRuns++;
    if (r.host === 'strict') a.slowDiskStrictRuns++;
  }
  a.duplicatesAbsorbed += s.duplicatesAbsorbed;
  a.unknownOutcome += s.unknownOutcome;
  if (s.linearizability === 'unknown') a.linUnknown++;
  a.crashes += s.crashes;
  a.partitions += s.partitions;
  a.confChanges += s.confChanges;
  a.transfers += s.transfers;
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
  const hist = Object.entries(a.leaderHistogram).sort((x, y) => Number(x[0]) - Number(y[0]))
    .map(([b, n]) => `${b}+:${n}`).join(' ');
  return [
    `runs ${a.runs}, failed ${a.failed}`,
    `committed entries ${a.committed}, client ops ${a.operations} (+${a.staleReads} stale reads; ${a.leaseReads} default reads served by lease), unknown outcome ${a.unknownOutcome}`,
    `snapshots installed ${a.snapshotsInstalled} (hosts compacted ${a.compactions} times), retried commands absorbed by sessions ${a.duplicatesAbsorbed}`,
    `faults: crashes ${a.crashes} (${a.crashesAtSeams} at a Ready seam), partitions ${a.partitions}, conf changes proposed ${a.confChanges}, transfers ${a.transfers}`,
    `overlap host on ${a.overlapRuns} runs: ${a.earlyMessages} messages sent before their write, ${a.earlyApplies} Readies applied before it; ` +
      `crashes that lost the write of sent entries ${a.crashesAfterEarlySend}, after an early apply ${a.crashesAfterEarlyApply} (${a.reappliedEntries} entries re-applied)`,
    `slow disk on ${a.slowDiskRuns} runs (${a.slowDiskStrictRuns} strict): ${a.slowWrites} writes outstanding >= 1 tick, ` +
      `${a.stepsDuringWrite} messages stepped (${a.leaderAcksDuringWrite} acks at a leader writing new entries) and ${a.requestsDuringWrite} client requests taken during one, ${a.crashesDuringWrite} crashes lost one`,
    `linearizability search inconclusive (budget) on ${a.linUnknown} runs`,
    `ticks to a stable leader after healing: mean ${ok > 0 ? (a.ticksToLeaderSum / ok).toFixed(1) : '-'}, max ${a.ticksToLeaderMax}; histogram ${hist}`,
    `ticks to full convergence after healing: max ${a.ticksToConvergeMax}`,
  ].join('\n');
}
