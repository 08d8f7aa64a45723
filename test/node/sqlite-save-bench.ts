// Benchmark (not a test): what a stream of leader-like saves costs the event loop, per engine.
//   node test/node/sqlite-save-bench.ts [seconds=5] [inFlight=64] [engines=sqlite]
// Keeps `inFlight` saves outstanding, each appending one entry and applying the previous one (a
// 100-byte value under a new key, hard state, applied index), and compacts every 10,000 entries
// with a snapshot blob as large as the keys written so far. Reports saves/s, the event loop's
// CPU per save (process.threadCpuUsage: the thread that serves and replicates), the whole
// process's CPU per save (any worker threads included), and event-loop delay.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { NodeStorage } from '../../node-runtime/storage/open.ts';
import { isEngineName } from '../../node-runtime/storage/engine.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import type { SaveBatch } from '../../worker/peer/ports.ts';

const seconds = Number(process.argv[2] ?? 5);
const inFlight = Number(process.argv[3] ?? 64);
const engines = (process.argv[4] ?? 'sqlite').split(',').filter(isEngineName);
const SNAPSHOT_EVERY = 10_000;
const value = 'v'.repeat(100);
const membership = { voters: ['n1', 'n2', 'n3'], learners: [], addresses: { n1: 'a', n2: 'b', n3: 'c' } };

function batch(i: number): SaveBatch {
  const b: SaveBatch = {
    entries: [{ index: i, term: 1, type: 'normal', data: new TextEncoder().encode(`put key-${i} ${value}`) }],
    hardState: { term: 1, vote: 'n1', commit: i - 1 },
  };
  if (i > 1) {
    const rec = { value, createRevision: i - 1, modRevision: i - 1, version: 1 };
    b.kv = {
      revision: i - 1,
      upserts: [[`key-${String(i - 1).padStart(9, '0')}`, rec]],
      deletes: [],
      sessionUpserts: [],
      sessionDeletes: [],
    };
    b.applied = i - 1;
    if ((i - 1) % SNAPSHOT_EVERY === 0) {
      b.compact = { meta: { index: i - 1, term: 1, membership }, data: new Uint8Array((i - 1) * 130).fill(7) };
    }
  }
  return b;
}

for (const engine of engines) {
  const dataDir = mkdtempSync(path.join(tmpdir(), `metcd-savebench-${engine}-`));
  const storage = await NodeStorage.open({ dataDir, engine, nodeId: 'n1', clusterId: 'c1', log: silentLogger });
  await storage.load();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const thread0 = process.threadCpuUsage();
  const proc0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  delay.enable();
  let next = 1;
  await new Promise<void>((resolve, reject) => {
    let outstanding = 0;
    const pump = (): void => {
      while (outstanding < inFlight && performance.now() < deadline) {
        outstanding++;
        storage.save(batch(next++)).then(() => {
          outstanding--;
          if (outstanding === 0 && performance.now() >= deadline) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  delay.disable();
  const wallS = (performance.now() - t0) / 1000;
  const thread = process.threadCpuUsage(thread0);
  const proc = process.cpuUsage(proc0);
  const saves = next - 1;
  const us = (cpu: { user: number; system: number }) => ((cpu.user + cpu.system) / saves).toFixed(1);
  const syncs = storage.stats().syncs;
  await storage.close();
  rmSync(dataDir, { recursive: true, force: true });
  console.log(
    JSON.stringify({
      engine,
      saves,
      savesPerS: Math.round(saves / wallS),
      groups: syncs,
      loopCpuUsPerSave: us(thread),
      processCpuUsPerSave: us(proc),
      loopDelayMs: {
        p50: +(delay.percentile(50) / 1e6).toFixed(1),
        p99: +(delay.percentile(99) / 1e6).toFixed(1),
        max: +(delay.max / 1e6).toFixed(1),
      },
    }),
  );
}
