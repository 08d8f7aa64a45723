// Benchmark (not a test): acknowledged writes per second on a local 3-node cluster, per engine.
//   node test/node/write-bench.ts [seconds=5] [clients=64] [engines=memory,sqlite,leveldb]
// Clients PUT distinct keys (100-byte values) straight to the leader over keep-alive
// connections; every write is committed on a majority and fsynced before it is acknowledged.

import { performance } from 'node:perf_hooks';
import { Agent, request } from 'node:http';
import { ProcCluster } from './proc-cluster.ts';
import { isEngineName } from '../../node-runtime/storage/engine.ts';

const seconds = Number(process.argv[2] ?? 5);
const clients = Number(process.argv[3] ?? 64);
const engines = (process.argv[4] ?? 'memory,sqlite,leveldb').split(',').filter(isEngineName);
const agent = new Agent({ keepAlive: true, maxSockets: clients });
const value = 'v'.repeat(100);

function put(base: string, key: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${base}/${key}`, { method: 'PUT', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(value);
  });
}

const rows: Array<Record<string, string>> = [];
for (const engine of engines) {
  const cluster = new ProcCluster({ engine, tickMs: 100 });
  try {
    await cluster.start();
    const leader = await cluster.leader();
    let ok = 0;
    let failed = 0;
    const latencies: number[] = [];
    const end = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; performance.now() < end; i++) {
          const t0 = performance.now();
          const status = await put(leader.url, `bench-${c}-${i}`);
          if (status === 204) {
            ok++;
            latencies.push(performance.now() - t0);
          } else failed++;
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const p = (q: number) => (latencies[Math.floor(q * (latencies.length - 1))] ?? 0).toFixed(1);
    rows.push({ engine, 'writes/s': (ok / seconds).toFixed(0), failed: String(failed), 'p50 ms': p(0.5), 'p99 ms': p(0.99) });
    console.log(JSON.stringify(rows[rows.length - 1]));
  } finally {
    await cluster.stopAll();
  }
}
agent.destroy();
console.table(rows);
