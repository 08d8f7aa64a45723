// Throughput of the peer loop and the router over the in-process cluster (memory storage,
// in-memory transport through the wire codec). A benchmark, not a test:
//   node_modules/.bin/node test/peer/bench.ts [writes] [concurrency]
// It measures the layers above the core (group commit, waiting rooms, apply, router parsing),
// not I/O: real hosts add fsyncs / Durable Object writes and network round trips.

import { createApiRouter } from '../../worker/api/router.ts';
import type { KvCommand } from '../../worker/kv/types.ts';
import { TestCluster, addressOf } from './cluster.ts';

const writes = Number(process.argv[2] ?? 20_000);
const concurrency = Number(process.argv[3] ?? 256);

async function run(label: string, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < writes) await op(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  console.log(`${label}: ${writes} requests, concurrency ${concurrency}: ${Math.round(writes / seconds)}/s (${seconds.toFixed(2)} s)`);
}

const cluster = await TestCluster.start({ limits: { snapshotEveryEntries: 5_000 } });
const leader = await cluster.waitLeader();
await cluster.tick(2);
// Deliveries happen in the cluster's settle loop; keep it pumping while clients run.
let pumping = true;
const pump = (async () => {
  while (pumping) await cluster.settle();
})();

const disk = cluster.disks.get(leader.id)!;
let before = disk.saves.length;
await run('peer.write', (i) => leader.write({ op: 'put', pairs: [[`k${i % 1000}`, `v${i}`]] } as KvCommand));
console.log(`  leader saves: ${disk.saves.length - before} (${(writes / (disk.saves.length - before)).toFixed(1)} writes per save)`);

const api = createApiRouter({ peer: leader, mode: 'redirect', leaderUrl: () => '' });
before = disk.saves.length;
await run('router PUT /key', (i) =>
  api.fetch(new Request(`${addressOf(leader.id)}/k${i % 1000}`, { method: 'PUT', body: `v${i}` })).then((r) => {
    if (r.status !== 204) throw new Error(`status ${r.status}`);
  }),
);
await run('router GET default', (i) =>
  api.fetch(new Request(`${addressOf(leader.id)}/k${i % 1000}`)).then((r) => {
    if (r.status !== 200) throw new Error(`status ${r.status}`);
  }),
);
pumping = false;
await pump;
await cluster.closeAll();
