// Benchmark (not a test): how long a storage engine blocks the event loop under a peer-like write
// stream, compactions with a growing snapshot blob included.
//   node test/node/engine-stall-bench.ts [engine=memory] [entries=200000] [rewriteMinBytes]
// Each save is what a busy peer writes per Ready (64 entries, the hard state, the KV changes of
// the previous 64 writes); every 10,000 entries one also compacts with a snapshot blob as large
// as the KV state (~130 bytes per key, as the peer's StateEncoder makes it). Prints the event-loop
// delay (monitorEventLoopDelay) and the longest stalls, which are what a client's p99 feels.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { NodeStorage } from '../../node-runtime/storage/open.ts';
import { isEngineName } from '../../node-runtime/storage/engine.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';

const engine = process.argv[2] ?? 'memory';
const total = Number(process.argv[3] ?? 200_000);
const rewriteMinBytes = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
if (!isEngineName(engine)) throw new Error(`unknown engine ${engine}`);

const PER_READY = 64;
const SNAPSHOT_EVERY = Number(process.env['SNAPSHOT_EVERY'] ?? 10_000);
const BLOB_BYTES_PER_KEY = 130;
const dataDir = mkdtempSync(path.join(tmpdir(), `metcd-stall-${engine}-`));
const storage = await NodeStorage.open({
  dataDir,
  engine,
  nodeId: 'n1',
  clusterId: 'c1',
  log: silentLogger,
  ...(rewriteMinBytes === undefined ? {} : { memoryRewriteMinBytes: rewriteMinBytes }),
});
await storage.load();
const blobSource = randomFillSync(Buffer.alloc(BLOB_BYTES_PER_KEY * total));
const command = new Uint8Array(150).fill(7);
const value = 'v'.repeat(100);

// Gaps of a 5 ms interval timer: each one is a stretch the loop could not serve anything. On a
// shared machine a gap is also the process waiting for a core, so each gap is also measured in
// CPU time spent meanwhile (busy): that part is the engine's (or the benchmark's) own work.
const stalls: Array<{ wallMs: number; busyMs: number }> = [];
let last = performance.now();
let lastCpu = process.cpuUsage();
const ticker = setInterval(() => {
  const now = performance.now();
  const cpu = process.cpuUsage();
  const busyMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
  if (now - last > 25) stalls.push({ wallMs: now - last - 5, busyMs });
  last = now;
  lastCpu = cpu;
}, 5);
const h = monitorEventLoopDelay({ resolution: 2 });
h.enable();

const t0 = performance.now();
let lastSnapshot = 0;
for (let next = 1; next <= total; next += PER_READY) {
  const entries = [];
  for (let i = next; i < next + PER_READY; i++) entries.push({ index: i, term: 1, type: 'normal' as const, data: command });
  const upserts: Array<[string, KeyRecord]> = [];
  const applied = next - 1;
  for (let i = Math.max(1, applied - PER_READY + 1); i <= applied; i++) {
    upserts.push([`key-${String(i).padStart(9, '0')}`, { value, createRevision: i, modRevision: i, version: 1 }]);
  }
  const b: SaveBatch = { entries, hardState: { term: 1, vote: 'n1', commit: applied } };
  if (applied > 0) {
    b.kv = { revision: applied, upserts, deletes: [], sessionUpserts: [], sessionDeletes: [] };
    b.applied = applied;
  }
  if (applied - lastSnapshot >= SNAPSHOT_EVERY) {
    // A view, not a copy: making the blob is the peer's cost (its encoder), not the engine's.
    const data = blobSource.subarray(0, applied * BLOB_BYTES_PER_KEY);
    b.compact = { meta: { index: applied, term: 1, membership: { voters: ['n1'], learners: [], addresses: {} } }, data };
    lastSnapshot = applied;
  }
  await storage.save(b);
}
const seconds = (performance.now() - t0) / 1000;
clearInterval(ticker);
h.disable();
await storage.close();
rmSync(dataDir, { recursive: true, force: true });

const ms = (ns: number) => (ns / 1e6).toFixed(1);
const busy = stalls.map((s) => s.busyMs).sort((a, b) => b - a);
stalls.sort((a, b) => b.wallMs - a.wallMs);
process.stdout.write(
  `${engine}: ${total} entries in ${seconds.toFixed(1)} s (${Math.round(total / seconds)}/s); ` +
    `loop delay p50 ${ms(h.percentile(50))} p99 ${ms(h.percentile(99))} p99.9 ${ms(h.percentile(99.9))} max ${ms(h.max)} ms; ` +
    `stalls > 25 ms: ${stalls.length}, longest ${stalls
      .slice(0, 6)
      .map((s) => s.wallMs.toFixed(0))
      .join(' ')} ms; ` +
    `CPU busy in them: ${busy.filter((b) => b > 25).length} over 25 ms, most ${busy
      .slice(0, 6)
      .map((b) => b.toFixed(0))
      .join(' ')} ms\n`,
);
