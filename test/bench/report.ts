// The one table (throughput, p50/p99/p99.9 per system and the metcd/etcd ratios), the watch
// fan-out and lease keep-alive tables (the same shape, their own ratios), the failover and edge
// lines, and the targets of issue 5 checked against the numbers.

import type { EdgeResult } from './edge.ts';
import type { FailoverResult } from './failover.ts';
import type { LeaseResult } from './leases.ts';
import type { WatchResult } from './watch.ts';
import type { WorkloadResult } from './workloads.ts';

export const TARGETS = {
  /** On at least one engine: throughput ≥ 1.5× etcd's with p99 ≤ etcd's. */
  bestThroughputRatio: 1.5,
  /** On every engine. */
  everyThroughputRatio: 1.0,
  failoverMedianMs: 1000,
  edgeLatencyRatio: 3,
};

export interface Verdict {
  target: string;
  reached: boolean;
  detail: string;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function etcdOf(results: readonly WorkloadResult[], workload: string): WorkloadResult | undefined {
  return results.find((r) => r.system === 'etcd' && r.workload === workload && r.problems.length === 0);
}

export function ratios(r: WorkloadResult, etcd: WorkloadResult | undefined): { throughput: number | null; p99: number | null } {
  if (etcd === undefined || r.system === 'etcd') return { throughput: null, p99: null };
  return {
    throughput: Math.round((r.requestsPerS / etcd.requestsPerS) * 100) / 100,
    p99: Math.round((r.latencyMs.p99 / etcd.latencyMs.p99) * 100) / 100,
  };
}

export function table(results: readonly WorkloadResult[]): string {
  const header = ['workload', 'system', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'cores', 'vs etcd req/s', 'vs etcd p99'];
  const widths = [19, 15, 8, 8, 8, 9, 6, 14, 12];
  const lines = [header.map((h, i) => pad(h, widths[i]!, i >= 2)).join(' ')];
  lines.push(widths.map((w) => '-'.repeat(w)).join(' '));
  for (const r of results) {
    const q = ratios(r, etcdOf(results, r.workload));
    const row = [
      r.workload,
      r.system,
      String(r.requestsPerS),
      fmt(r.latencyMs.p50),
      fmt(r.latencyMs.p99),
      fmt(r.latencyMs.p999),
      r.clusterCores === null ? '-' : r.clusterCores.toFixed(2),
      q.throughput === null ? '' : `${q.throughput.toFixed(2)}x`,
      q.p99 === null ? '' : `${q.p99.toFixed(2)}x`,
    ];
    let line = row.map((c, i) => pad(c, widths[i]!, i >= 2)).join(' ');
    if (r.problems.length > 0) line += `  INVALID: ${r.problems.join('; ')}`;
    lines.push(line);
  }
  return lines.join('\n');
}

export function verdicts(results: readonly WorkloadResult[], failover: readonly FailoverResult[], edge: EdgeResult | null): Verdict[] {
  const out: Verdict[] = [];
  const workloads = [...new Set(results.map((r) => r.workload))];
  for (const w of workloads) {
    const etcd = etcdOf(results, w);
    if (etcd === undefined) continue;
    const metcd = results.filter((r) => r.workload === w && r.system !== 'etcd' && r.problems.length === 0);
    if (metcd.length === 0) continue;
    const scored = metcd.map((r) => ({ r, q: ratios(r, etcd) }));
    const winners = scored.filter(({ q }) => q.throughput! >= TARGETS.bestThroughputRatio && q.p99! <= 1);
    const best = [...scored].sort((a, b) => b.q.throughput! - a.q.throughput!)[0]!;
    out.push({
      target: `${w}: ≥${TARGETS.bestThroughputRatio}x etcd with p99 ≤ etcd's on one engine`,
      reached: winners.length > 0,
      detail:
        winners.length > 0
          ? winners.map(({ r, q }) => `${r.system} ${q.throughput}x, p99 ${q.p99}x`).join(', ')
          : `best ${best.r.system} ${best.q.throughput}x, p99 ${best.q.p99}x`,
    });
    const worst = [...scored].sort((a, b) => a.q.throughput! - b.q.throughput!)[0]!;
    out.push({
      target: `${w}: ≥${TARGETS.everyThroughputRatio}x etcd on every engine`,
      reached: worst.q.throughput! >= TARGETS.everyThroughputRatio,
      detail: scored.map(({ r, q }) => `${r.system} ${q.throughput}x`).join(', '),
    });
  }
  for (const f of failover) {
    out.push({
      target: `failover ${f.system}: median ≤ ${TARGETS.failoverMedianMs} ms`,
      reached: f.medianMs <= TARGETS.failoverMedianMs,
      detail: `median ${f.medianMs} ms, max ${f.maxMs} ms over ${f.kills} kills`,
    });
  }
  if (edge !== null) {
    out.push({
      target: `edge: replicated write ≤ ${TARGETS.edgeLatencyRatio}x a single-object write`,
      reached: edge.latencyRatio <= TARGETS.edgeLatencyRatio,
      detail: `${edge.latencyRatio}x (median ${edge.replicated.medianMs} vs ${edge.plain.medianMs} ms)`,
    });
  }
  return out;
}

const ratio = (a: number, b: number | undefined): string => (b === undefined || !(b > 0) ? '' : `${(a / b).toFixed(2)}x`);

function rows(header: string[], widths: number[], body: Array<{ cells: string[]; problems: string[] }>): string {
  const lines = [header.map((h, i) => pad(h, widths[i]!, i >= 1)).join(' ')];
  lines.push(widths.map((w) => '-'.repeat(w)).join(' '));
  for (const r of body) {
    let line = r.cells.map((c, i) => pad(c, widths[i]!, i >= 1)).join(' ');
    if (r.problems.length > 0) line += `  INVALID: ${r.problems.join('; ')}`;
    lines.push(line);
  }
  return lines.join('\n');
}

/** Watch fan-out: events/s delivered over all watchers and the ack → delivery lag, vs etcd. */
export function watchTable(results: readonly WatchResult[]): string {
  const etcd = results.find((r) => r.system === 'etcd' && r.problems.length === 0);
  const header = [
    'system',
    'events/s',
    'lag p50 ms',
    'lag p99 ms',
    'lag max',
    'cores',
    'client',
    'vs etcd ev/s',
    'vs etcd lag p50',
    'vs etcd lag p99',
  ];
  const widths = [15, 9, 11, 11, 8, 6, 7, 13, 16, 16];
  return rows(
    header,
    widths,
    results.map((r) => {
      const vs = r.system !== 'etcd' && r.problems.length === 0 ? etcd : undefined;
      return {
        cells: [
          r.system,
          String(r.eventsPerS),
          fmt(r.lagMs.p50),
          fmt(r.lagMs.p99),
          fmt(r.lagMs.max),
          r.clusterCores === null ? '-' : r.clusterCores.toFixed(2),
          r.clientCores.toFixed(2),
          ratio(r.eventsPerS, vs?.eventsPerS),
          ratio(r.lagMs.p50, vs?.lagMs.p50),
          ratio(r.lagMs.p99, vs?.lagMs.p99),
        ],
        problems: r.problems,
      };
    }),
  );
}

/** Lease keep-alive throughput and latency, vs etcd. */
export function leaseTable(results: readonly LeaseResult[]): string {
  const etcd = results.find((r) => r.system === 'etcd' && r.problems.length === 0);
  const header = ['system', 'keepalive/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'cores', 'vs etcd ka/s', 'vs etcd p99'];
  const widths = [15, 12, 8, 8, 9, 6, 13, 12];
  return rows(
    header,
    widths,
    results.map((r) => {
      const vs = r.system !== 'etcd' && r.problems.length === 0 ? etcd : undefined;
      return {
        cells: [
          r.system,
          String(r.keepAlivesPerS),
          fmt(r.latencyMs.p50),
          fmt(r.latencyMs.p99),
          fmt(r.latencyMs.p999),
          r.clusterCores === null ? '-' : r.clusterCores.toFixed(2),
          ratio(r.keepAlivesPerS, vs?.keepAlivesPerS),
          ratio(r.latencyMs.p99, vs?.latencyMs.p99),
        ],
        problems: r.problems,
      };
    }),
  );
}
