// Per-request CPU of the layers above the host, on one process: the shared router (through
// handle(), as the Node host calls it) and the peer
// of a single-voter cluster over in-memory storage (no sockets, no fsync). What a Node or edge
// host adds (HTTP parsing, sockets, disk) is not in these numbers. For profiling the API path:
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof test/bench/api-micro.ts [requests] [concurrency]

import { createApiRouter } from '../../worker/api/router.ts';
import type { ApiReply, ApiRequest } from '../../worker/api/exchange.ts';
import { Peer } from '../../worker/peer/peer.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { LoadedState, PeerStorage } from '../../worker/peer/ports.ts';

const requests = Number(process.argv[2] ?? 50_000);
const concurrency = Number(process.argv[3] ?? 64);
const base = 'http://n1.test';

/** Durable nowhere: saves resolve at once (a sole voter never reads its log back). */
const nullStorage: PeerStorage = {
  load: async (): Promise<LoadedState> => ({
    hardState: { term: 0, vote: '', commit: 0 },
    snapshot: { meta: { index: 0, term: 0, membership: { voters: [], learners: [], addresses: {} } }, data: new Uint8Array(0) },
    entries: [],
    applied: 0,
    kv: { revision: 0, records: [], sessions: [] },
    meta: {},
  }),
  save: async () => {},
  close: async () => {},
};

const TICK_MS = 100;
const peer = await Peer.open({
  id: 'n1',
  storage: nullStorage,
  transport: { send: () => {} },
  clock: { nowMs: () => Date.now() },
  tickMs: TICK_MS,
  random: new SeededRandom(1),
  initialMembership: { voters: ['n1'], learners: [], addresses: { n1: base } },
  limits: { snapshotEveryEntries: 1_000_000 },
});
peer.campaign();
const ticker = setInterval(() => peer.tick(), TICK_MS);
while (!peer.isLeader()) await new Promise((r) => setTimeout(r, 10));
const api = createApiRouter({ peer, mode: 'redirect', leaderUrl: () => '' });
const value = 'x'.repeat(100);

/** What the Node host hands the router (node-runtime/node-request.ts), minus the socket. */
function request(method: string, path: string, body?: string): ApiRequest {
  const bytes = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(body);
  return { method, url: new URL(path, base), header: () => null, headerPairs: () => [], body: async () => bytes };
}

async function run(label: string, op: (i: number) => Promise<ApiReply>, expect: number): Promise<void> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const reply = await op(next++);
        if (reply.status !== expect) throw new Error(`${label}: HTTP ${reply.status} ${String(reply.body)}`);
      }
    }),
  );
  const ms = performance.now() - started;
  console.log(
    `${label.padEnd(22)} ${Math.round(requests / (ms / 1000))
      .toString()
      .padStart(7)}/s  ${((1000 * ms) / requests).toFixed(1)} µs/request`,
  );
}

for (let round = 0; round < 2; round++) {
  await run('PUT /<key>', (i) => api.handle(request('PUT', `/k${i % 1000}`, value)), 204);
  await run('GET ?level=stale', (i) => api.handle(request('GET', `/k${i % 1000}?level=stale`)), 200);
  await run('GET (default, lease)', (i) => api.handle(request('GET', `/k${i % 1000}`)), 200);
  await run('GET ?level=consistent', (i) => api.handle(request('GET', `/k${i % 1000}?level=consistent`)), 200);
}
clearInterval(ticker);
await peer.close();
