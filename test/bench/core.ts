// Benchmark of the Raft core alone: a 3-node cluster in one process, an instant network, a
// host that "persists" by dropping references and applies by counting. Proposals are batched.
// Prints committed commands per second and the allocation cost per command.
//
//   npm run bench:core                       # defaults
//   npm run bench:core -- --commands 2000000 --batch 512 --bytes 32 --codec
//
// --codec sends every message through encodeMessages/decodeMessages (what a real transport
// pays). Allocation is measured in a window where the young generation is made large enough
// that no GC runs (checked with a GC observer), so heap growth / commands = bytes allocated.

import { spawnSync } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { decodeMessages, encodeMessages } from '../../worker/raft/codec.ts';
import { defaultRaftConfig } from '../../worker/raft/config.ts';
import { RawNode } from '../../worker/raft/rawnode.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { Message, Membership } from '../../worker/raft/types.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  // Re-run ourselves with the flags the measurement needs.
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=512', import.meta.filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const COMMANDS = flag('commands', 2_000_000);
const BATCH = flag('batch', 512);
const BYTES = flag('bytes', 32);
const CODEC = process.argv.includes('--codec');
const COMPACT_EVERY = 100_000;
const UNCOMMITTED_MAX = 16 * BATCH;

class Cluster {
  readonly ids = ['n1', 'n2', 'n3'];
  readonly nodes = new Map<string, RawNode>();
  readonly applied = new Map<string, number>();
  queue: Message[] = [];
  committedCommands = 0;

  constructor() {
    const membership: Membership = { voters: this.ids, learners: [], addresses: {} };
    for (const [i, id] of this.ids.entries()) {
      const cfg = { ...defaultRaftConfig(id, new SeededRandom(i + 1)), uncommittedEntriesMax: UNCOMMITTED_MAX * 2 };
      this.nodes.set(
        id,
        new RawNode(cfg, {
          hardState: { term: 0, vote: '', commit: 1 },
          snapshot: { meta: { index: 1, term: 1, membership }, data: new Uint8Array(0) },
          entries: [],
          applied: 1,
        }),
      );
      this.applied.set(id, 1);
    }
  }

  /** One pass of every node's Ready, then deliver what they sent. */
  pump(): void {
    for (const [id, node] of this.nodes) {
      if (!node.hasReady()) continue;
      const rd = node.ready();
      // "Persist" (drop references), "send" (queue), "apply" (count).
      if (rd.messages.length > 0) {
        if (CODEC) {
          for (const m of decodeMessages(encodeMessages(rd.messages))) this.queue.push(m);
        } else {
          for (const m of rd.messages) this.queue.push(m);
        }
      }
      const n = rd.committedEntries.length;
      if (n > 0) {
        if (id === 'n1') for (const e of rd.committedEntries) if (e.data.length > 0) this.committedCommands++;
        this.applied.set(id, rd.committedEntries[n - 1]!.index);
      }
      node.advance(rd);
      const applied = this.applied.get(id)!;
      if (applied - node.status().snapshotIndex >= COMPACT_EVERY) node.compact(applied, new Uint8Array(0));
    }
    const q = this.queue;
    this.queue = [];
    for (const m of q) this.nodes.get(m.to)!.step(m);
  }
}

function run(commands: number, payloads: Uint8Array[], cluster: Cluster): void {
  const leader = cluster.nodes.get('n1')!;
  const target = cluster.committedCommands + commands;
  let proposed = 0;
  let batch: Uint8Array[] = payloads.slice(0, BATCH);
  while (cluster.committedCommands < target) {
    const st = proposed < commands ? leader.status() : null;
    if (st !== null && st.lastIndex - st.commit < UNCOMMITTED_MAX) {
      const r = leader.propose(batch);
      if (!r.ok) throw new Error(`propose refused: ${r.reason}`);
      proposed += batch.length;
      const start = (Math.floor(proposed / BATCH) % 64) * BATCH; // rotate through the payload pool
      batch = payloads.slice(start, start + BATCH);
    }
    cluster.pump();
  }
}

const payloads = Array.from({ length: 64 * BATCH }, (_, i) => {
  const b = new Uint8Array(BYTES);
  b[0] = i & 0xff;
  return b;
});

const cluster = new Cluster();
cluster.nodes.get('n1')!.campaign();
for (let i = 0; i < 20; i++) cluster.pump();
if (cluster.nodes.get('n1')!.status().role !== 'leader') throw new Error('n1 did not become leader');

// Warm up the JIT, then measure throughput.
run(200_000, payloads, cluster);
const t0 = performance.now();
run(COMMANDS, payloads, cluster);
const seconds = (performance.now() - t0) / 1000;

// Allocation window: no GC may run inside it.
let gcRuns = 0;
const obs = new PerformanceObserver((list) => {
  gcRuns += list.getEntries().length;
});
const windowCommands = 100_000;
gc!();
await new Promise((r) => setTimeout(r, 0));
obs.observe({ entryTypes: ['gc'] });
const heap0 = process.memoryUsage().heapUsed;
run(windowCommands, payloads, cluster);
const heap1 = process.memoryUsage().heapUsed;
await new Promise((r) => setTimeout(r, 0)); // let the observer report
obs.disconnect();
gc!();
const retained = process.memoryUsage().heapUsed - heap0;

const perSec = Math.round(COMMANDS / seconds);
console.log(
  `raft core, 3 nodes, instant network${CODEC ? ' + wire codec' : ''}: ${COMMANDS.toLocaleString()} commands of ${BYTES} B in batches of ${BATCH}`,
);
console.log(`  committed:  ${perSec.toLocaleString()} commands/s (${seconds.toFixed(2)} s)`);
console.log(
  `  allocated:  ${((heap1 - heap0) / windowCommands).toFixed(0)} B/command across the cluster${gcRuns > 0 ? ` (WARNING: ${gcRuns} GC run(s) in the window, underestimated)` : ''}`,
);
console.log(
  `  retained:   ${Math.max(0, retained / windowCommands).toFixed(0)} B/command after GC (log kept until compaction every ${COMPACT_EVERY.toLocaleString()})`,
);
