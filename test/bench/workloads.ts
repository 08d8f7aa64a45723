// The four workloads and how one is measured on one cluster: warm-up, then a timed wrk run
// against the leader, then checks that the numbers mean what they say — no errors, the same
// leader (same term) throughout (so no request was answered by a redirect), and the store's
// revision grew by at least the writes wrk counted (every counted write was applied).

import { totalCpuSeconds, loadAverage1m } from './cpu.ts';
import type { ClusterUnderTest } from './target.ts';
import { runWrk, type ReadKind, type WrkResult } from './wrk.ts';

export interface Workload {
  name: string;
  /** What it compares, for the table's legend. */
  describe: string;
  readPct: number;
  readKind: ReadKind;
}

export const WORKLOADS: readonly Workload[] = [
  { name: 'writes', describe: 'PUT /<key> vs /v3/kv/put, distinct keys', readPct: 0, readKind: 'linearizable' },
  {
    name: 'reads-linearizable',
    describe: 'GET ?level=consistent vs /v3/kv/range (default, linearizable)',
    readPct: 100,
    readKind: 'linearizable',
  },
  { name: 'reads-stale', describe: 'GET ?level=stale vs /v3/kv/range serializable:true', readPct: 100, readKind: 'stale' },
  { name: 'mix-90-10', describe: '90% linearizable reads, 10% writes', readPct: 90, readKind: 'linearizable' },
];

export interface MeasureOptions {
  wrkPath: string;
  connections: number;
  threads: number;
  durationS: number;
  warmupS: number;
  readKeys: number;
  valueBytes: number;
  scriptDir: string;
  onTick?: (text: string) => void;
}

export interface WorkloadResult {
  system: string;
  workload: string;
  requestsPerS: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  requests: number;
  durationS: number;
  errors: number;
  /** CPU seconds the cluster's processes used per 1000 requests. */
  clusterCpuMsPerRequest: number | null;
  /** Cluster CPU use over the run, in cores (2.0 = two cores busy throughout). */
  clusterCores: number | null;
  load1mBefore: number | null;
  leader: string;
  /** Empty when the run is valid; otherwise why its numbers must not be trusted. */
  problems: string[];
}

let tagSeq = 0;
/** Two letters, different for every wrk run in this process: write keys never repeat. */
function nextTag(): string {
  const n = tagSeq++;
  return String.fromCharCode(97 + (Math.floor(n / 26) % 26)) + String.fromCharCode(97 + (n % 26));
}

export async function measure(cluster: ClusterUnderTest, workload: Workload, opts: MeasureOptions): Promise<WorkloadResult> {
  const leader = await cluster.leader();
  const spec = (writeTag: string) => ({
    system: cluster.system,
    readPct: workload.readPct,
    readKind: workload.readKind,
    readKeys: opts.readKeys,
    writeTag,
    valueBytes: opts.valueBytes,
  });
  const common = {
    wrkPath: opts.wrkPath,
    url: leader.url,
    connections: opts.connections,
    threads: opts.threads,
    scriptDir: opts.scriptDir,
  };
  if (opts.warmupS > 0) await runWrk({ ...common, spec: spec(nextTag()), durationS: opts.warmupS });

  const load1mBefore = loadAverage1m();
  const revisionBefore = await cluster.revision(leader);
  const pids = cluster.pids();
  const cpuBefore = totalCpuSeconds(pids);
  const startedAt = Date.now();
  const r: WrkResult = await runWrk({
    ...common,
    spec: spec(nextTag()),
    durationS: opts.durationS,
    onTick: (left) => opts.onTick?.(`${cluster.label} ${workload.name}: ${left}s left`),
  });
  const wallS = (Date.now() - startedAt) / 1000;
  const cpuUsed = totalCpuSeconds(pids) - cpuBefore;
  const after = await cluster.leader();
  const revisionAfter = await cluster.revision(after);

  const problems: string[] = [];
  const errors = r.errors.connect + r.errors.read + r.errors.write + r.errors.status + r.errors.timeout;
  if (errors > 0) problems.push(`wrk errors: ${JSON.stringify(r.errors)}`);
  if (after.id !== leader.id || after.term !== leader.term) {
    problems.push(`leader changed during the run (${leader.id}@${leader.term} → ${after.id}@${after.term})`);
  }
  // Writes still in flight when wrk stopped were generated but not answered: at most one per
  // connection, plus one a thread may have generated for a connection it was reopening.
  const applied = revisionAfter - revisionBefore;
  if (r.writesSent > 0 && applied < r.writesSent - opts.connections - opts.threads) {
    problems.push(`revision grew by ${applied} but wrk sent ${r.writesSent} writes (answers that were not writes?)`);
  }
  const durationS = r.durationUs / 1e6;
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    system: cluster.label,
    workload: workload.name,
    requestsPerS: Math.round(r.requests / durationS),
    latencyMs: {
      p50: ms(r.latencyUs.p50),
      p90: ms(r.latencyUs.p90),
      p99: ms(r.latencyUs.p99),
      p999: ms(r.latencyUs.p999),
      max: ms(r.latencyUs.max),
    },
    requests: r.requests,
    durationS: Math.round(durationS * 10) / 10,
    errors,
    clusterCpuMsPerRequest: cpuUsed > 0 ? Math.round((cpuUsed * 1000 * 1000) / r.requests) / 1000 : null,
    clusterCores: cpuUsed > 0 ? Math.round((cpuUsed / wallS) * 100) / 100 : null,
    load1mBefore,
    leader: `${leader.id}@${leader.term}`,
    problems,
  };
}
