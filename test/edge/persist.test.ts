// Persist before you speak, on the edge (storage.ts says where the output gate is relied on).
// Three angles, in real workerd:
//   1. every message a peer sent was already backed by its SQLite at the moment it was handed
//      to the transport (the persist checker, on in every edge test cluster);
//   2. a write acknowledged to a client survives aborting every peer right after the answer,
//      while derived state (commit index, apply results) is still waiting to be written and so
//      is lost by the crash (storage.ts; DERIVED_FLUSH_MS is long here so that it always is);
//   3. the votes that elected a leader survive aborting every peer right after the election.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

const PEERS = ['p1', 'p2', 'p3'];

let c: EdgeCluster;

beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'persist', DERIVED_FLUSH_MS: '600000' } });
  expect((await c.follow('/first', { method: 'PUT', body: '1' })).status).toBe(204);
});

afterAll(async () => {
  await c?.close();
});

interface LogEvent {
  event: string;
  peer: string;
  term?: number;
  role?: string;
}

function events(): LogEvent[] {
  return c.server.getLogs().flatMap((log) => {
    try {
      const e = JSON.parse(String(log.message)) as LogEvent;
      return typeof e.event === 'string' ? [e] : [];
    } catch {
      return [];
    }
  });
}

/** Crashes every peer; resolves to how many unwritten derived batches the crashes lost. */
async function abortAll(): Promise<number> {
  const lost = await Promise.all(PEERS.map((id) => c.peer(id).abort('test: crash right after speaking')));
  return lost.reduce((a, b) => a + b, 0);
}

describe('persist before you speak', () => {
  it('no peer ever sends a vote, a term or an acknowledgement its storage does not hold', async () => {
    for (let i = 0; i < 20; i++) expect((await c.follow(`/k${i}`, { method: 'PUT', body: String(i) })).status).toBe(204);
    // A leadership transfer adds an election (votes) to the traffic checked.
    const leader = await c.leader();
    const to = PEERS.find((id) => id !== leader)!;
    expect((await c.follow('/transfer-leader', { method: 'POST', body: JSON.stringify({ id: to }) })).status).toBe(200);
    expect((await c.follow('/after-transfer', { method: 'PUT', body: 'x' })).status).toBe(204);
    const byType: Record<string, number> = {};
    for (const id of PEERS) {
      const report = (await c.inspect(id)).persistCheck!;
      expect(report.examples, id).toEqual([]);
      expect(report.violations, id).toBe(0);
      for (const [type, n] of Object.entries(report.checkedByType)) byType[type] = (byType[type] ?? 0) + n;
    }
    // The rules that matter were exercised, not just heartbeats.
    expect(byType['vote']).toBeGreaterThan(0);
    expect(byType['voteResp']).toBeGreaterThan(0);
    expect(byType['appendResp']).toBeGreaterThan(0);
    // Acknowledgements rode back on the leader's calls (transport.ts), checked like the rest.
    // The old leader returns its first ones only once the new leader's appends reach it, which
    // the write above need not wait for (the other follower made its majority): wait for them.
    const followers = PEERS.filter((id) => id !== to);
    let returned: number[] = [];
    await waitFor(
      'every follower to return acknowledgements on the leader calls',
      async () => {
        returned = await Promise.all(followers.map(async (id) => (await c.inspect(id)).transport!.repliesReturned));
        return returned.every((n) => n > 0);
      },
      () => `${followers.join(', ')} returned ${JSON.stringify(returned)}`,
    );
    expect((await c.inspect(to)).transport!.repliesReceived).toBeGreaterThan(0);
  });

  it('an acknowledged write survives every peer being aborted right after the answer', async () => {
    for (let round = 0; round < 3; round++) {
      const res = await c.follow(`/acked-${round}`, { method: 'PUT', body: `r${round}` });
      expect(res.status).toBe(204);
      // The leader's commit of this write and its result at least were not written yet.
      expect(await abortAll()).toBeGreaterThan(0);
      await waitFor(`acked-${round} after the crash`, async () => {
        try {
          const get = await c.follow(`/acked-${round}?level=consistent`);
          return get.status === 200 && (await get.text()) === `r${round}`;
        } catch {
          return false;
        }
      });
    }
  });

  it('the votes that elected a leader survive every peer being aborted right after the election', async () => {
    const leader = await c.leader();
    const to = PEERS.find((id) => id !== leader)!;
    const res = await c.follow('/transfer-leader', { method: 'POST', body: JSON.stringify({ id: to }) });
    expect(res.status).toBe(200);
    const term = (await c.status(to)).term;
    c.server.clearLogs();
    await abortAll();
    // Each peer logs the term it loaded from storage when it comes back (peer.open).
    await waitFor(
      'every peer to reopen',
      () =>
        new Set(
          events()
            .filter((e) => e.event === 'peer.open')
            .map((e) => e.peer),
        ).size === 3,
    );
    const loaded = new Map<string, number>();
    for (const e of events()) if (e.event === 'peer.open' && !loaded.has(e.peer)) loaded.set(e.peer, e.term ?? -1);
    // The leader of `term` was elected by a majority, each of which had made its vote durable.
    const durable = [...loaded.values()].filter((t) => t >= term).length;
    expect(durable, JSON.stringify([...loaded])).toBeGreaterThanOrEqual(2);
  });
});
