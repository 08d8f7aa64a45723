// Benchmark (not a test): how long a node holding 100,000 keys takes to restart, per engine.
//   node test/node/restart-bench.ts [keys=100000] [engines=memory,sqlite,leveldb]
// For each engine: a single bootstrapped node gets `keys` keys (1000 pairs per POST /key, so a
// few snapshots are taken on the way), then it is stopped (SIGTERM, and separately SIGKILL) and
// started again; the time is from spawn to the first 200 from /health (leader elected, state
// loaded, caught up), plus the storage engine's own open+load time measured in-process.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI, freePort } from './proc-cluster.ts';
import { NodeStorage } from '../../node-runtime/storage/open.ts';
import { isEngineName, type EngineName } from '../../node-runtime/storage/engine.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { sleep } from '../support/wait.ts';

const keys = Number(process.argv[2] ?? 100_000);
const engines = (process.argv[3] ?? 'memory,sqlite,leveldb').split(',').filter(isEngineName);
const PAIRS_PER_POST = 1000;

function startNode(args: string[]): { proc: ChildProcess; exited: Promise<void> } {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', () => {});
  return { proc, exited: new Promise((r) => proc.on('exit', () => r())) };
}

/** Milliseconds from t0 until `path` answers 200 (/status: state loaded; /health: leader too). */
async function okAfter(url: string, t0: number, route = '/health'): Promise<number> {
  for (;;) {
    try {
      const res = await fetch(`${url}${route}`);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - t0;
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
}

async function measure(engine: EngineName): Promise<Record<string, string>> {
  const root = mkdtempSync(path.join(tmpdir(), `metcd-bench-${engine}-`));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    '--id',
    'n1',
    '--http',
    `127.0.0.1:${port}`,
    '--data-dir',
    path.join(root, 'n1'),
    '--engine',
    engine,
    '--cluster-token',
    'bench',
    '--snapshot-entries',
    '40',
    '--log-level',
    'warn',
  ];
  try {
    let node = startNode([...args, '--bootstrap']);
    await okAfter(url, performance.now());
    const tFill = performance.now();
    for (let i = 0; i < keys; i += PAIRS_PER_POST) {
      const pairs: Record<string, string> = {};
      for (let k = i; k < Math.min(keys, i + PAIRS_PER_POST); k++)
        pairs[`key-${String(k).padStart(7, '0')}`] = `value-${k}-${'v'.repeat(64)}`;
      const res = await fetch(`${url}/key`, { method: 'POST', body: JSON.stringify(pairs) });
      if (res.status !== 200) throw new Error(`fill: HTTP ${res.status} ${await res.text()}`);
    }
    const fillMs = performance.now() - tFill;

    node.proc.kill('SIGTERM');
    await node.exited;
    let t0 = performance.now();
    node = startNode(args);
    const servingMs = await okAfter(url, t0, '/status');
    const cleanMs = await okAfter(url, t0);
    const status = (await (await fetch(`${url}/status`)).json()) as { keys: number; snapshotIndex: number; lastIndex: number };
    if (status.keys !== keys) throw new Error(`restarted with ${status.keys} keys, expected ${keys}`);

    node.proc.kill('SIGKILL');
    await node.exited;
    t0 = performance.now();
    node = startNode(args);
    const crashMs = await okAfter(url, t0);
    node.proc.kill('SIGTERM');
    await node.exited;

    t0 = performance.now();
    const storage = await NodeStorage.open({ dataDir: path.join(root, 'n1'), engine, nodeId: 'n1', clusterId: 'metcd', log: silentLogger });
    const loaded = await storage.load();
    const loadMs = performance.now() - t0;
    await storage.close();
    return {
      engine,
      keys: String(loaded.tier?.summary.records ?? loaded.kv.records.length),
      'fill s': (fillMs / 1000).toFixed(1),
      'process up, state loaded ms': servingMs.toFixed(0),
      'restart after SIGTERM ms': cleanMs.toFixed(0),
      'restart after SIGKILL ms': crashMs.toFixed(0),
      'storage open+load ms': loadMs.toFixed(0),
      'log entries kept': String(loaded.entries.length),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const rows: Array<Record<string, string>> = [];
for (const engine of engines) {
  rows.push(await measure(engine));
  console.log(JSON.stringify(rows[rows.length - 1]));
}
console.table(rows);
