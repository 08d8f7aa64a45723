// `npm run sim -- [flags]`: long simulation campaigns on every core, or one seed replayed with
// its trace.
//
//   --seeds N        run seeds [start, start+N) (default 1000)
//   --start S        first seed (default 1)
//   --seed S         replay one seed verbosely: the trace, then the verdict
//   --nodes 3|5      force the cluster size (default: drawn from each seed)
//   --ticks T        chaos phase length in ticks
//   --clients C, --keys K, --faults seeded|none,
//   --persistence correct|forget-vote|ack-before-durable  (broken disks prove the checks bite)
//   --disk-delay seeded|N  a write takes 0..N ticks, the peer stepping meanwhile (0: instant; see options.ts)
//   --no-wire        skip the message codec
//   --mix JSON       override fields of the seeded fault mix, e.g. '{"crashPerMille":50}'
//   --workers W      worker threads (default: available cores)
//   --max-failures F stop after F failing seeds (default 20)

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RangeReport } from './campaign-worker.ts';
import type { PersistenceMode, SimOptions } from './options.ts';
import { PERSISTENCE_MODES, resolveOptions } from './options.ts';
import { addRun, emptyAggregate, formatAggregate, formatFailure, formatStats, mergeAggregate } from './report.ts';
import { runSim, type SimResult } from './run.ts';

interface Args {
  seeds: number;
  start: number;
  seed: number | null;
  workers: number;
  maxFailures: number;
  options: Partial<SimOptions>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 1000, start: 1, seed: null, workers: availableParallelism(), maxFailures: 20, options: {} };
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const next = (): string | undefined => argv[++i];
    switch (flag) {
      case '--seeds':
        args.seeds = int(flag, next());
        break;
      case '--start':
        args.start = int(flag, next());
        break;
      case '--seed':
        args.seed = int(flag, next());
        break;
      case '--workers':
        args.workers = Math.max(1, int(flag, next()));
        break;
      case '--max-failures':
        args.maxFailures = Math.max(1, int(flag, next()));
        break;
      case '--nodes':
        args.options.nodes = int(flag, next()) as 0 | 3 | 5;
        break;
      case '--ticks':
        args.options.chaosTicks = int(flag, next());
        break;
      case '--clients':
        args.options.clients = int(flag, next());
        break;
      case '--keys':
        args.options.keys = int(flag, next());
        break;
      case '--faults': {
        const v = next();
        if (v !== 'seeded' && v !== 'none') throw new Error(`--faults is seeded or none, got ${v}`);
        args.options.faults = v;
        break;
      }
      case '--persistence': {
        const v = next();
        if (!PERSISTENCE_MODES.includes(v as PersistenceMode))
          throw new Error(`--persistence is one of ${PERSISTENCE_MODES.join(', ')}, got ${v}`);
        args.options.persistence = v as PersistenceMode;
        break;
      }
      case '--disk-delay': {
        const v = next();
        args.options.diskDelayTicksMax = v === 'seeded' ? 'seeded' : int(flag, v);
        break;
      }
      case '--mix': {
        const v = next();
        try {
          args.options.mix = JSON.parse(v ?? '') as SimOptions['mix'];
        } catch {
          throw new Error(`--mix needs a JSON object of fault mix fields, got ${v}`);
        }
        break;
      }
      case '--wire':
        args.options.wire = true;
        break;
      case '--no-wire':
        args.options.wire = false;
        break;
      default:
        throw new Error(`unknown flag ${flag} (see the header of test/sim/campaign.ts)`);
    }
  }
  resolveOptions(args.options); // validate early
  return args;
}

async function replayOne(seed: number, options: Partial<SimOptions>): Promise<number> {
  const r = await runSim(seed, { ...options, trace: true });
  for (const line of r.trace) console.log(line);
  console.log('');
  console.log(formatStats(r.stats));
  console.log(r.ok ? `seed ${seed}: ok` : formatFailure(r));
  return r.ok ? 0 : 1;
}

async function campaign(args: Args): Promise<number> {
  const end = args.start + args.seeds;
  const chunk = Math.max(1, Math.min(50, Math.ceil(args.seeds / (args.workers * 8))));
  const started = performance.now();
  const total = emptyAggregate();
  const failures: SimResult[] = [];
  let next = args.start;
  let done = 0;
  let lastPrint = started;
  console.log(`sim campaign: seeds ${args.start}..${end - 1} on ${args.workers} workers`);

  const progress = (): void => {
    const secs = (performance.now() - started) / 1000;
    const rate = done / Math.max(secs, 1e-9);
    const eta = rate > 0 ? (args.seeds - done) / rate : 0;
    console.log(
      `  ${done}/${args.seeds} seeds, ${failures.length} failed, ${rate.toFixed(1)} seeds/s, ${secs.toFixed(0)} s elapsed, ~${eta.toFixed(0)} s left`,
    );
  };

  await Promise.all(
    Array.from(
      { length: Math.min(args.workers, args.seeds) },
      () =>
        new Promise<void>((resolve, reject) => {
          const worker = new Worker(new URL('./campaign-worker.ts', import.meta.url), { workerData: { options: args.options } });
          const feed = (): void => {
            if (next >= end || failures.length >= args.maxFailures) {
              worker.postMessage(null);
              return;
            }
            const from = next;
            next = Math.min(end, next + chunk);
            worker.postMessage({ from, to: next });
          };
          worker.on('message', (report: RangeReport) => {
            mergeAggregate(total, report.aggregate);
            done += report.aggregate.runs;
            for (const f of report.failures) {
              failures.push(f);
              console.log(formatFailure(f));
            }
            const now = performance.now();
            if (now - lastPrint > 5000) {
              lastPrint = now;
              progress();
            }
            feed();
          });
          worker.on('error', reject);
          worker.on('exit', () => resolve());
          feed();
        }),
    ),
  );

  const secs = (performance.now() - started) / 1000;
  console.log('');
  console.log(`done: ${done} seeds in ${secs.toFixed(1)} s (${(done / secs).toFixed(1)} seeds/s)`);
  console.log(formatAggregate(total));
  if (failures.length > 0) {
    console.log(`\n${failures.length} failing seeds:`);
    for (const f of failures.sort((a, b) => a.seed - b.seed)) console.log(`  ${f.failure!.invariant}: ${f.replay}`);
  }
  return failures.length === 0 ? 0 : 1;
}

const args = parseArgs(process.argv.slice(2));
if (args.seed !== null) {
  process.exitCode = await replayOne(args.seed, args.options);
} else if (args.workers === 1) {
  // In-process: no worker threads (handy under a profiler).
  const total = emptyAggregate();
  let failed = 0;
  const started = performance.now();
  for (let seed = args.start; seed < args.start + args.seeds && failed < args.maxFailures; seed++) {
    const r = await runSim(seed, args.options);
    addRun(total, r);
    if (!r.ok) {
      failed++;
      console.log(formatFailure(r));
    }
  }
  console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(formatAggregate(total));
  process.exitCode = failed === 0 ? 0 : 1;
} else {
  process.exitCode = await campaign(args);
}
