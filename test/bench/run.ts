// `npm run bench`: metcd next to etcd on the same machine, in one run.
//
//   npm run bench                                   every engine, etcd, watch, leases, failover, edge
//   npm run bench -- --engine sqlite --workloads writes,mix-90-10 --skip-edge
//   npm run bench -- --quick                        short runs (a smoke test of the harness)
//   npm run bench -- --engine memory --skip-etcd --skip-failover --skip-edge --cpu-prof /tmp/prof
//   npm run bench -- --engine memory --workloads none --skip-failover --skip-edge   watch and leases only
//   npm run bench -- --workloads none --skip-watch --skip-leases --skip-failover    the edge phases only
//   npm run bench -- --scale --workloads none --skip-watch --skip-leases --skip-failover --skip-edge   scale only
//
// Per cluster, after the workloads: watch fan-out (watch.ts: watchers on one prefix while a paced
// writer writes under it; a Node client, one process) and lease keep-alive throughput (leases.ts,
// wrk). Load comes from wrk (C; with 2 threads it is not the bottleneck on 2 cores, where a Node
// load generator would compete with the nodes for CPU). Without wrk the throughput phases are
// skipped with the install command; without etcd the etcd side is. Prints one table, writes it
// with every detail as JSON under test/bench/results/ (git-ignored). Everything started here is
// stopped on exit, on failure and on Ctrl-C.

import { cpus } from 'node:os';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cleanup, installCleanupHandlers, trackDir } from './cleanup.ts';
import { loadAverage1m } from './cpu.ts';
import { runEdge, type EdgeResult } from './edge.ts';
import { EDGE_SCALE_VALUE_BYTES, edgeScaleLines, edgeScaleVerdicts, measureEdgeScale, type EdgeScaleResult } from './edge-scale.ts';
import { edgeCostLines, edgeCostVerdicts, runEdgeCost, type EdgeCostResult } from './edge-cost.ts';
import { EtcdCluster } from './etcd.ts';
import { runFailover, type FailoverResult } from './failover.ts';
import {
  ETCD_SCALE_ARGS,
  METCD_SCALE_ARGS,
  measureScale,
  scaleLines,
  scaleVerdicts,
  type ScaleFailure,
  type ScaleResult,
} from './scale.ts';
import { CACHED_ENGINES, DEFAULT_CACHE_PERCENT, cacheArgs, cacheBytesFor, nodeTakesCacheFlag } from './scale-cache.ts';
import { assertPortsFree } from './http.ts';
import { measureLeases, type LeaseResult } from './leases.ts';
import { ENGINES, MetcdCluster, type Engine } from './metcd.ts';
import { Progress } from './progress.ts';
import { leaseTable, table, verdicts, watchTable } from './report.ts';
import type { ClusterUnderTest } from './target.ts';
import { findEtcd, findWrk } from './tools.ts';
import { measureWatch, type WatchResult } from './watch.ts';
import { WORKLOADS, measure, type WorkloadResult } from './workloads.ts';

// The edge phases start workerd through wrangler: nothing may try the internet (wrangler would
// fetch the Request.cf object from workers.cloudflare.com, and report usage).
process.env['CLOUDFLARE_CF_FETCH_ENABLED'] ??= 'false';
process.env['WRANGLER_SEND_METRICS'] ??= 'false';

// Ports (this harness owns 14000–14999): metcd engine k on 14000+10k.., etcd on 14100.., 14110..
const METCD_BASE_PORT = 14000;
const ETCD_BASE_PORT = 14100;
const SCALE_METCD_BASE_PORT = 14200;
const SCALE_ETCD_BASE_PORT = 14300;
const RESULTS_DIR = new URL('./results/', import.meta.url).pathname;

const USAGE = `usage: npm run bench -- [flags]
  --engine memory|sqlite|leveldb|all   metcd storage engines to measure (default all)
  --workloads a,b|none                 of: ${WORKLOADS.map((w) => w.name).join(', ')} (default all)
  --duration S                         measured seconds per workload (default 15; --quick 5)
  --warmup S                           warm-up seconds before each (default 5; --quick 2)
  --connections N                      wrk connections (default 64)
  --threads N                          wrk threads (default 2)
  --kills N                            failover: leader kills per engine (default 10; --quick 3)
  --tick-ms MS --election-ticks N      metcd Raft timing (default 50 and 10: election after 0.5-1 s)
  --snapshot-entries N                 metcd log entries between snapshots (default: the node's)
  --watchers N                         watch fan-out: watchers on one prefix (default 100)
  --watch-rate N                       watch fan-out: writes per second under it (default 200)
  --leases N                           lease keep-alive: leases, one wrk connection each (default 64)
  --phase-duration S --phase-warmup S  watch and lease phases: measured and warm-up seconds (default 10
                                       and 2; --quick 5 and 1)
  --edge-idle S                        edge cost phase: seconds the cluster idles (default 60; --quick 10)
  --skip-etcd --skip-failover --skip-edge --skip-watch --skip-leases   (--skip-edge: both edge phases)
  --skip-edge-cost                     only the edge cost phase
  --scale                              also the scale phase (off by default): N keys into etcd and each
                                       engine, RSS and disk per node, kill-all restart to a consistent read
  --scale-keys N                       scale phase: keys loaded, 100-byte values (default 1000000; implies --scale)
  --scale-quick                        the scale phase at 100000 keys (implies --scale)
  --scale-restarts N                   scale phase: kill-all restarts, the median reported (default 2)
  --scale-reads N                      scale phase: reads per rate, Zipfian and all-hot (default 200000; 0: none)
  --scale-read-clients N               scale phase: connections the reads use (default 64)
  --scale-cache-percent P              scale phase: sqlite and leveldb nodes get --cache-bytes of P% of the
                                       loaded values' bytes (default 10), when the node takes the flag
  --scale-cache-bytes N                scale phase: that budget in bytes instead
  --scale-edge-bytes N                 scale phase: bytes of values loaded into a 3-peer edge cluster under
                                       wrangler dev (default 1000000000; --skip-edge: not run)
  --quick                              short everything
  --cpu-prof DIR                       write V8 CPU profiles of the metcd nodes into DIR
  --out FILE                           JSON results (default test/bench/results/bench-<time>.json)`;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        engine: { type: 'string', default: 'all' },
        workloads: { type: 'string', default: WORKLOADS.map((w) => w.name).join(',') },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string', default: '64' },
        threads: { type: 'string', default: '2' },
        kills: { type: 'string' },
        'tick-ms': { type: 'string', default: '50' },
        'election-ticks': { type: 'string', default: '10' },
        'snapshot-entries': { type: 'string' },
        watchers: { type: 'string' },
        'watch-rate': { type: 'string' },
        leases: { type: 'string' },
        'phase-duration': { type: 'string' },
        'phase-warmup': { type: 'string' },
        'skip-etcd': { type: 'boolean', default: false },
        'skip-failover': { type: 'boolean', default: false },
        'skip-edge': { type: 'boolean', default: false },
        'skip-edge-cost': { type: 'boolean', default: false },
        'edge-idle': { type: 'string' },
        'skip-watch': { type: 'boolean', default: false },
        'skip-leases': { type: 'boolean', default: false },
        scale: { type: 'boolean', default: false },
        'scale-quick': { type: 'boolean', default: false },
        'scale-keys': { type: 'string' },
        'scale-restarts': { type: 'string' },
        'scale-reads': { type: 'string' },
        'scale-read-clients': { type: 'string' },
        'scale-cache-percent': { type: 'string' },
        'scale-cache-bytes': { type: 'string' },
        'scale-edge-bytes': { type: 'string' },
        quick: { type: 'boolean', default: false },
        'cpu-prof': { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message.split('\n')[0]! : String(err));
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const int = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer ≥ ${min}, got ${raw}`);
    return n;
  };
  const quick = values.quick;
  if (Number(values['scale-cache-percent'] ?? 0) > 100)
    fail(`--scale-cache-percent must be at most 100, got ${values['scale-cache-percent']}`);
  const engines: Engine[] =
    values.engine === 'all'
      ? [...ENGINES]
      : values.engine.split(',').map((e) => {
          if (!(ENGINES as readonly string[]).includes(e)) fail(`unknown engine ${e}`);
          return e as Engine;
        });
  const workloads = (values.workloads === 'none' ? [] : values.workloads.split(',')).map((name) => {
    const w = WORKLOADS.find((x) => x.name === name);
    if (w === undefined) fail(`unknown workload ${name}`);
    return w;
  });
  return {
    engines,
    workloads,
    durationS: int('duration', values.duration, quick ? 5 : 15, 1),
    warmupS: int('warmup', values.warmup, quick ? 2 : 5, 0),
    connections: int('connections', values.connections, 64, 1),
    threads: int('threads', values.threads, 2, 1),
    kills: int('kills', values.kills, quick ? 3 : 10, 1),
    tickMs: int('tick-ms', values['tick-ms'], 50, 10),
    electionTicks: int('election-ticks', values['election-ticks'], 10, 2),
    snapshotEntries: values['snapshot-entries'] === undefined ? undefined : int('snapshot-entries', values['snapshot-entries'], 0, 1),
    skipEtcd: values['skip-etcd'],
    skipFailover: values['skip-failover'],
    skipEdge: values['skip-edge'],
    skipEdgeCost: values['skip-edge-cost'],
    edgeIdleS: int('edge-idle', values['edge-idle'], quick ? 10 : 60, 1),
    skipWatch: values['skip-watch'],
    skipLeases: values['skip-leases'],
    watchers: int('watchers', values.watchers, 100, 1),
    watchRate: int('watch-rate', values['watch-rate'], 200, 1),
    leases: int('leases', values.leases, 64, 1),
    phaseDurationS: int('phase-duration', values['phase-duration'], quick ? 5 : 10, 1),
    phaseWarmupS: int('phase-warmup', values['phase-warmup'], quick ? 1 : 2, 0),
    scale: values.scale || values['scale-quick'] || values['scale-keys'] !== undefined,
    scaleKeys: int('scale-keys', values['scale-keys'], values['scale-quick'] ? 100_000 : 1_000_000, 1),
    scaleRestarts: int('scale-restarts', values['scale-restarts'], 2, 1),
    scaleReads: int('scale-reads', values['scale-reads'], 200_000, 0),
    scaleReadClients: int('scale-read-clients', values['scale-read-clients'], 64, 1),
    scaleCachePercent: int('scale-cache-percent', values['scale-cache-percent'], DEFAULT_CACHE_PERCENT, 1),
    scaleCacheBytes: values['scale-cache-bytes'] === undefined ? null : int('scale-cache-bytes', values['scale-cache-bytes'], 0, 1),
    scaleEdgeBytes: int('scale-edge-bytes', values['scale-edge-bytes'], 1_000_000_000, 1_000_000),
    quick,
    cpuProf: values['cpu-prof'] === undefined ? null : path.resolve(values['cpu-prof']),
    out: values.out ?? path.join(RESULTS_DIR, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
    readKeys: 1000,
    valueBytes: 100,
  };
}

async function main(): Promise<void> {
  const o = parse();
  installCleanupHandlers((signal) => process.stderr.write(`\nbench: ${signal}: stopping everything it started\n`));

  const wrk = findWrk();
  const etcd = findEtcd();
  if (wrk.path === null) process.stderr.write(`bench: wrk not found, skipping the throughput phases; install it with:\n  ${wrk.install}\n`);
  if (etcd.path === null && !o.skipEtcd)
    process.stderr.write(`bench: etcd not found, skipping the etcd side; install it with:\n  ${etcd.install}\n`);
  const runLoad = wrk.path !== null;
  const runWatch = !o.skipWatch;
  const runLeases = runLoad && !o.skipLeases;
  // A cluster is started for the workloads and the lease phase (both wrk) or the watch phase.
  const runClusters = (runLoad && (o.workloads.length > 0 || runLeases)) || runWatch;
  const runEtcd = runClusters && etcd.path !== null && !o.skipEtcd;

  // Plan, for the "time left" in progress lines.
  const runScaleEtcd = o.scale && etcd.path !== null && !o.skipEtcd;
  const scaleSides = o.engines.length + (runScaleEtcd ? 1 : 0);
  // Loading runs at roughly 20-50k keys/s; a restart at 1 M keys takes 5-20 s.
  // Reads: about 5,000/s from this process, 2.2 × --scale-reads (both rates and the warm-ups);
  // the learner's join about as long as the load.
  // The edge at ~5 MB/s of values (an estimate for the progress line), plus starts and a restart.
  const edgeScaleMs = Math.round(o.scaleEdgeBytes / 5000) + 60_000;
  const scaleSideMs = Math.round(o.scaleKeys / 30) * 2 + o.scaleRestarts * 10_000 + Math.round(o.scaleReads * 0.44) + 15_000;
  const perWorkloadMs = (o.durationS + o.warmupS) * 1000 + 3000;
  const perPhaseMs = (o.phaseDurationS + o.phaseWarmupS) * 1000 + 4000;
  const clusterMs = (runLoad ? o.workloads.length * perWorkloadMs : 0) + (runWatch ? perPhaseMs : 0) + (runLeases ? perPhaseMs : 0) + 8000;
  const plannedMs =
    (runClusters ? (o.engines.length + (runEtcd ? 1 : 0)) * clusterMs : 0) +
    (o.skipFailover ? 0 : o.engines.length * (o.kills * 4000 + 8000)) +
    (o.skipEdge ? 0 : 40_000) +
    (o.skipEdge || o.skipEdgeCost ? 0 : o.edgeIdleS * 1000 + 30_000) +
    (o.scale ? scaleSides * scaleSideMs + (o.skipEdge ? 0 : edgeScaleMs) : 0);
  const progress = new Progress(plannedMs);
  progress.note(
    `machine: ${cpus().length} cores, load ${loadAverage1m() ?? '?'}; ${wrk.version || 'no wrk'}; ${etcd.version || 'no etcd'}`,
  );
  progress.note(
    `wrk -t${o.threads} -c${o.connections}, ${o.warmupS}s warm-up + ${o.durationS}s per workload, ${o.valueBytes}-byte values, ${o.readKeys} read keys`,
  );

  const scriptDir = trackDir(mkdtempSync(path.join(tmpdir(), 'metcd-bench-wrk-')));
  const results: WorkloadResult[] = [];
  const failover: FailoverResult[] = [];
  const watches: WatchResult[] = [];
  const leases: LeaseResult[] = [];
  let edge: EdgeResult | null = null;
  let edgeCost: EdgeCostResult | null = null;
  const scale: ScaleResult[] = [];
  let edgeScale: EdgeScaleResult | null = null;
  const scaleFailures: ScaleFailure[] = [];
  const env =
    o.cpuProf === null ? undefined : { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --cpu-prof --cpu-prof-dir=${o.cpuProf}`.trim() };
  if (o.cpuProf !== null) mkdirSync(o.cpuProf, { recursive: true });

  const measureAll = async (cluster: ClusterUnderTest): Promise<void> => {
    const leader = await cluster.leader();
    if (runLoad && o.workloads.some((w) => w.readPct > 0)) await cluster.preload(leader, o.readKeys, o.valueBytes);
    for (const w of runLoad ? o.workloads : []) {
      const done = progress.phase(`${cluster.label} ${w.name}`, perWorkloadMs);
      const r = await measure(cluster, w, {
        wrkPath: wrk.path!,
        connections: o.connections,
        threads: o.threads,
        durationS: o.durationS,
        warmupS: o.warmupS,
        readKeys: o.readKeys,
        valueBytes: o.valueBytes,
        scriptDir,
        onTick: (t) => progress.note(t),
      });
      results.push(r);
      progress.note(
        `${r.requestsPerS} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, p99.9 ${r.latencyMs.p999} ms${r.problems.length ? `  INVALID: ${r.problems.join('; ')}` : ''}`,
      );
      done();
    }
    if (runWatch) {
      const done = progress.phase(`${cluster.label} watch fan-out: ${o.watchers} watchers, ${o.watchRate} writes/s`, perPhaseMs);
      const r = await measureWatch(cluster, {
        watchers: o.watchers,
        rate: o.watchRate,
        concurrency: 16,
        durationS: o.phaseDurationS,
        warmupS: o.phaseWarmupS,
        valueBytes: o.valueBytes,
        onTick: (t) => progress.note(t),
      });
      watches.push(r);
      progress.note(
        `${r.eventsPerS} events/s, lag p50 ${r.lagMs.p50} ms (leader ${r.lagP50ByMemberMs.leader}, followers ${r.lagP50ByMemberMs.followers}), p99 ${r.lagMs.p99} ms, client ${r.clientCores} cores, client loop delay p99 ${r.clientLoopDelayP99Ms} ms${r.problems.length ? `  INVALID: ${r.problems.join('; ')}` : ''}`,
      );
      done();
    }
    if (runLeases) {
      const done = progress.phase(`${cluster.label} lease keep-alive: ${o.leases} leases`, perPhaseMs);
      const r = await measureLeases(cluster, {
        wrkPath: wrk.path!,
        leases: o.leases,
        threads: o.threads,
        durationS: o.phaseDurationS,
        warmupS: o.phaseWarmupS,
        scriptDir,
        onTick: (t) => progress.note(t),
      });
      leases.push(r);
      progress.note(
        `${r.keepAlivesPerS} keep-alives/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms${r.problems.length ? `  INVALID: ${r.problems.join('; ')}` : ''}`,
      );
      done();
    }
  };

  if (runEtcd) {
    const done = progress.phase('etcd: starting 3 members', 5000);
    const cluster = await EtcdCluster.start(etcd.path!, ETCD_BASE_PORT);
    done();
    try {
      await measureAll(cluster);
    } finally {
      await cluster.stop();
    }
  }

  for (const [k, engine] of ENGINES.entries()) {
    if (!o.engines.includes(engine)) continue;
    const basePort = METCD_BASE_PORT + 10 * k;
    const timing = {
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      ...(o.snapshotEntries === undefined ? {} : { snapshotEntries: o.snapshotEntries }),
    };
    const metcdOpts = { engine, basePort, ...timing, ...(env ? { env } : {}) };
    if (runClusters) {
      await assertPortsFree([basePort, basePort + 1, basePort + 2], `metcd/${engine}`);
      const done = progress.phase(`metcd/${engine}: starting 3 nodes`, 5000);
      const cluster = await MetcdCluster.start(metcdOpts);
      done();
      try {
        await measureAll(cluster);
        if (o.cpuProf !== null) await cluster.stopGracefully();
      } finally {
        await cluster.stop();
      }
    }
    if (!o.skipFailover) {
      await assertPortsFree([basePort, basePort + 1, basePort + 2], `metcd/${engine}`);
      const done = progress.phase(`metcd/${engine} failover: ${o.kills} leader kills under write load`, o.kills * 4000 + 8000);
      const cluster = await MetcdCluster.start({ engine, basePort, ...timing });
      try {
        const f = await runFailover(cluster, { kills: o.kills, writers: 8, valueBytes: o.valueBytes, onNote: (t) => progress.note(t) });
        failover.push(f);
        progress.note(`median ${f.medianMs} ms, max ${f.maxMs} ms`);
      } finally {
        await cluster.stop();
      }
      done();
    }
  }

  if (!o.skipEdge) {
    const done = progress.phase('edge: replicated write (3 Durable Objects) vs one Durable Object, on workerd', 40_000);
    try {
      edge = await runEdge({
        writes: o.quick ? 40 : 400,
        concurrency: 16,
        throughputS: o.quick ? 2 : 5,
        valueBytes: o.valueBytes,
        onNote: (t) => progress.note(t),
      });
    } catch (err) {
      // A failed last phase must not cost the run's other results: report it and go on.
      progress.note(`edge phase failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    done();
  }

  if (!o.skipEdge && !o.skipEdgeCost) {
    const done = progress.phase(`edge cost: a burst of writes, then ${o.edgeIdleS} s idle, on workerd`, o.edgeIdleS * 1000 + 30_000);
    try {
      edgeCost = await runEdgeCost({
        burstWrites: o.quick ? 50 : 200,
        steadyWrites: o.quick ? 50 : 200,
        idleS: o.edgeIdleS,
        valueBytes: o.valueBytes,
        onNote: (t) => progress.note(t),
      });
    } catch (err) {
      progress.note(`edge cost phase failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    done();
  }

  if (o.scale) {
    // The nodes' cache budget, when this tree's node takes --cache-bytes (it refuses unknown flags).
    const cacheEngines = o.engines.filter((e) => CACHED_ENGINES.includes(e));
    const cacheFlag = cacheEngines.length > 0 && (await nodeTakesCacheFlag());
    const cacheBytes = cacheFlag ? (o.scaleCacheBytes ?? cacheBytesFor(o.scaleKeys, o.valueBytes, o.scaleCachePercent)) : null;
    if (cacheEngines.length > 0)
      progress.note(
        cacheBytes === null
          ? 'scale: this metcd node has no --cache-bytes flag: no cache budget passed, zipf/hot not judged'
          : `scale: ${cacheEngines.join(' and ')} nodes get --cache-bytes ${cacheBytes}${o.scaleCacheBytes === null ? ` (${o.scaleCachePercent}% of the values)` : ''}`,
      );
    const sides: Array<{ label: string; cacheBytes: number | null; start: () => Promise<EtcdCluster | MetcdCluster> }> = [];
    if (runScaleEtcd)
      sides.push({ label: 'etcd', cacheBytes: null, start: () => EtcdCluster.start(etcd.path!, SCALE_ETCD_BASE_PORT, ETCD_SCALE_ARGS) });
    for (const [k, engine] of ENGINES.entries()) {
      if (!o.engines.includes(engine)) continue;
      const basePort = SCALE_METCD_BASE_PORT + 10 * k;
      const args = cacheArgs(engine, cacheBytes);
      sides.push({
        label: `metcd/${engine}`,
        cacheBytes: args.length > 0 ? cacheBytes : null,
        start: async () => {
          await assertPortsFree([basePort, basePort + 1, basePort + 2], `metcd/${engine}`);
          return MetcdCluster.start({
            engine,
            basePort,
            tickMs: o.tickMs,
            electionTicks: o.electionTicks,
            ...(o.snapshotEntries === undefined ? {} : { snapshotEntries: o.snapshotEntries }),
            extraArgs: [...METCD_SCALE_ARGS, ...args],
          });
        },
      });
    }
    for (const side of sides) {
      const reads = o.scaleReads > 0 ? `${o.scaleReads} Zipfian + ${o.scaleReads} hot reads, ` : '';
      const done = progress.phase(
        `${side.label} scale: ${o.scaleKeys} keys, RSS, disk, ${reads}a learner's join, ${o.scaleRestarts} kill-all restarts`,
        scaleSideMs,
      );
      try {
        const cluster = await side.start();
        try {
          scale.push(
            await measureScale(cluster, {
              keys: o.scaleKeys,
              valueBytes: o.valueBytes,
              restarts: o.scaleRestarts,
              reads: o.scaleReads > 0 ? { count: o.scaleReads, clients: o.scaleReadClients } : null,
              join: true,
              cacheBytes: side.cacheBytes,
              onNote: (t) => progress.note(t),
            }),
          );
        } finally {
          await cluster.stop();
        }
      } catch (err) {
        // One side failing must not cost the others' results: report it and go on.
        const error = err instanceof Error ? err.message : String(err);
        scaleFailures.push({ label: side.label, error });
        progress.note(`${side.label} scale phase failed: ${error}`);
      }
      done();
    }
    if (!o.skipEdge) {
      const done = progress.phase(`edge scale: ${Math.round(o.scaleEdgeBytes / 1e6)} MB into 3 peers under wrangler dev`, edgeScaleMs);
      try {
        edgeScale = await measureEdgeScale({
          bytes: o.scaleEdgeBytes,
          valueBytes: EDGE_SCALE_VALUE_BYTES,
          onNote: (t) => progress.note(t),
        });
      } catch (err) {
        scaleFailures.push({ label: 'edge', error: err instanceof Error ? err.message : String(err) });
        progress.note(`edge scale phase failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      done();
    }
  }

  const out: string[] = [];
  if (results.length > 0) {
    out.push(
      '',
      `metcd vs etcd — 3 nodes each on loopback, wrk -t${o.threads} -c${o.connections}, ${o.durationS}s per workload after ${o.warmupS}s warm-up, ${o.valueBytes}-byte values`,
      '',
    );
    out.push(table(results), '');
    out.push('  cores: CPU the three server processes used during the run (the machine has ' + cpus().length + ')');
    for (const w of o.workloads) out.push(`  ${w.name}: ${w.describe}`);
  }
  if (watches.length > 0) {
    out.push(
      '',
      `watch fan-out — ${o.watchers} watchers on one prefix (spread over the 3 members), ${o.watchRate} writes/s to the leader (≤ 16 in flight), ${o.phaseDurationS}s after ${o.phaseWarmupS}s warm-up`,
      '',
    );
    out.push(watchTable(watches), '');
    out.push('  events/s: delivered, summed over the watchers; lag: write acknowledged → event read by the watcher (one clock)');
    out.push('  cores: CPU of the three server processes; client: CPU of this process (watchers and writer, one Node process)');
  }
  if (leases.length > 0) {
    out.push(
      '',
      `lease keep-alive — ${o.leases} leases, wrk -t${Math.min(o.threads, o.leases)} -c${o.leases} to the leader, ${o.phaseDurationS}s after ${o.phaseWarmupS}s warm-up`,
      '',
    );
    out.push(leaseTable(leases), '');
    out.push('  POST /lease/:id/keepalive vs /v3/lease/keepalive (gateway); every answer checked for a TTL > 0');
  }
  if (failover.length > 0) {
    out.push('', 'failover (SIGKILL the leader under write load; kill → first write sent after it succeeds):');
    for (const f of failover)
      out.push(`  ${f.system.padEnd(15)} median ${f.medianMs} ms, max ${f.maxMs} ms (${f.kills} kills: ${f.recoveryMs.join(' ')})`);
  }
  if (edge !== null) {
    out.push('', 'edge (workerd): one write at a time / 16 in flight');
    out.push(
      `  replicated (3 peers)  median ${edge.replicated.medianMs} ms, p99 ${edge.replicated.p99Ms} ms, ${edge.replicated.writesPerS} writes/s`,
    );
    out.push(`  one Durable Object    median ${edge.plain.medianMs} ms, p99 ${edge.plain.p99Ms} ms, ${edge.plain.writesPerS} writes/s`);
    const cpu = (ms: number | null) => (ms === null ? 'n/a' : `${ms} ms`);
    out.push(`  workerd CPU per write replicated ${cpu(edge.replicated.cpuMsPerWrite)}, one object ${cpu(edge.plain.cpuMsPerWrite)}`);
    out.push(`  ratio                 latency ${edge.latencyRatio}x, throughput ${edge.throughputRatio}x, CPU ${edge.cpuRatio ?? 'n/a'}x`);
  }
  if (edgeCost !== null) out.push(...edgeCostLines(edgeCost));
  const v = verdicts(results, failover, edge);
  if (v.length > 0) {
    out.push('', 'targets (issue 5):');
    for (const x of v) out.push(`  [${x.reached ? 'met' : 'MISSED'}] ${x.target} — ${x.detail}`);
  }
  const costTargets = edgeCost === null ? [] : edgeCostVerdicts(edgeCost);
  if (costTargets.length > 0) {
    out.push('', 'targets (issue 13, the edge at rest):');
    for (const x of costTargets) out.push(`  [${x.reached ? 'met' : 'MISSED'}] ${x.target} — ${x.detail}`);
  }
  out.push(...scaleLines(scale, scaleFailures));
  if (edgeScale !== null) out.push(...edgeScaleLines(edgeScale));
  const scaleTargets = [...scaleVerdicts(scale), ...(edgeScale === null ? [] : edgeScaleVerdicts(edgeScale))];
  if (scaleTargets.length > 0) {
    out.push('', 'targets (issue 14, beyond memory):');
    for (const x of scaleTargets)
      out.push(`  [${x.reached === null ? 'not judged' : x.reached ? 'met' : 'MISSED'}] ${x.target} — ${x.detail}`);
  }
  process.stdout.write(out.join('\n') + '\n');

  mkdirSync(path.dirname(o.out), { recursive: true });
  const json = {
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '', load1mAtEnd: loadAverage1m() },
    tools: { wrk: wrk.version, etcd: etcd.version, node: process.version },
    config: { ...o, engines: o.engines, workloads: o.workloads.map((w) => w.name) },
    results,
    failover,
    watches,
    leases,
    edge,
    edgeCost,
    scale,
    scaleFailures,
    edgeScale,
    targets: [...v, ...costTargets, ...scaleTargets],
  };
  writeFileSync(o.out, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), o.out)}\n`);
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void cleanup().finally(() => process.exit(1));
  },
);
