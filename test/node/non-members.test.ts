// Non-members on a real Node cluster (worker/peer/senders.ts, node-runtime/node.ts raftAddress):
// a forged Raft message from an id that is not a member, carrying the cluster token, moves no
// follower and is counted; one from a removed member is dropped; and the cluster token never
// reaches an address an admin did not add: not the address a stranger names, not a /join's
// address before its entry commits, and not an address a sender names for a member. The steps
// share one cluster and run in order; every process is killed in afterAll.

import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessages } from '../../worker/raft/codec.ts';
import type { Message } from '../../worker/raft/types.ts';
import type { NonMemberCounts } from '../../worker/peer/senders.ts';
import { freePort, ProcCluster, ProcNode } from './proc-cluster.ts';
import { sleep, waitFor } from '../support/wait.ts';

const TOKEN = 'test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

/** An HTTP listener that records every request it gets and answers 204, as a peer would. */
interface Listener {
  url: string;
  requests: Array<{ path: string; authorization: string | undefined }>;
  close(): Promise<void>;
}

async function listen(): Promise<Listener> {
  const requests: Listener['requests'] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Status {
  id: string;
  role: string;
  term: number;
  leader: string;
  commit: number;
  members: Array<{ id: string; voter: boolean }>;
  nonMemberMessages: NonMemberCounts;
}

async function status(node: ProcNode): Promise<Status> {
  const res = await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(2000) });
  if (res.status !== 200) throw new Error(`${node.id} /status: HTTP ${res.status}`);
  return (await res.json()) as Status;
}

/** POSTs `msgs` to `node` as peer traffic from `from`, with the cluster token and cluster id. */
async function postRaft(node: ProcNode, from: string, address: string, msgs: Message[]): Promise<number> {
  const res = await fetch(`${node.url}/raft/messages`, {
    method: 'POST',
    headers: {
      ...auth,
      'x-metcd-cluster': 'test',
      'x-metcd-from': from,
      'x-metcd-address': address,
      'content-type': 'application/octet-stream',
    },
    body: encodeMessages(msgs),
    signal: AbortSignal.timeout(2000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** A leader's heartbeat and a transfer vote (which the core's vote lease lets through) from `from`. */
const forged = (from: string, to: string, term: number): Message[] => [
  { type: 'heartbeat', from, to, term, commit: 0 },
  { type: 'vote', from, to, term, index: 1_000_000, logTerm: term, transfer: true },
];

describe('non-members on a Node cluster', () => {
  const cluster = new ProcCluster({ engine: 'memory' });
  let stranger: Listener;

  beforeAll(async () => {
    stranger = await listen();
    await cluster.start();
  }, 60_000);

  afterAll(async () => {
    await cluster.stopAll();
    await stranger.close();
  });

  it('a forged heartbeat and vote from a non-member with the token and a high term move no follower, are counted, and are not answered', async () => {
    await cluster.withStableLeader(async (leader) => {
      const follower = cluster.live().find((n) => n.id !== leader.id)!;
      const before = await status(follower);
      // Two batches: an address learned from the first would be answered by the second.
      for (const m of forged('x9', follower.id, before.term + 10)) expect(await postRaft(follower, 'x9', stranger.url, [m])).toBe(204);
      const after = await status(follower);
      expect(after).toMatchObject({ term: before.term, leader: leader.id, role: 'follower' });
      expect(after.nonMemberMessages.droppedUnknown).toBe(before.nonMemberMessages.droppedUnknown + 2);
      expect((await status(leader)).term).toBe(before.term);
    });
    const follower = cluster.live().find((n) => n.output.includes('peer.sender.dropped'));
    expect(follower, 'a drop logged').toBeDefined();
    expect(follower!.output).not.toContain(TOKEN);
    // Nothing goes back to the address the stranger named (its removal notice has nowhere to go).
    await sleep(500);
    expect(stranger.requests).toEqual([]);
  });

  it('a message from a removed member is dropped', async () => {
    const leader = await cluster.leader({ all: true });
    const [gone, follower] = cluster.live().filter((n) => n.id !== leader.id) as [ProcNode, ProcNode];
    await waitFor(`removal of ${gone.id}`, 15_000, async () => {
      const res = await fetch(`${(await cluster.leader()).url}/members/${gone.id}`, {
        method: 'DELETE',
        headers: auth,
        redirect: 'manual',
      });
      await res.arrayBuffer();
      return res.status === 200 || res.status === 404 ? true : undefined; // 404: an earlier attempt went through
    });
    await waitFor(`${follower.id} applying the removal`, 15_000, async () =>
      (await status(follower)).members.some((m) => m.id === gone.id) ? undefined : true,
    );
    await cluster.withStableLeader(async (current) => {
      const before = await status(follower);
      expect(await postRaft(follower, gone.id, gone.url, forged(gone.id, follower.id, before.term + 10))).toBe(204);
      const after = await status(follower);
      expect(after).toMatchObject({ term: before.term, leader: current.id });
      expect(after.nonMemberMessages.droppedRemoved).toBe(before.nonMemberMessages.droppedRemoved + 2);
    });
    await waitFor(`${gone.id} to exit, told it was removed`, 20_000, async () => (gone.alive ? undefined : true));
    cluster.nodes.delete(gone.id);
  });

  it('a sender cannot point a member id at its own address', async () => {
    await cluster.withStableLeader(async (leader) => {
      const follower = cluster.live().find((n) => n.id !== leader.id)!;
      const { term } = await status(leader);
      const decoy = await listen();
      try {
        // An answer the leader steps (from a member, in its term), naming another address.
        const ack: Message = { type: 'heartbeatResp', from: follower.id, to: leader.id, term };
        expect(await postRaft(leader, follower.id, decoy.url, [ack])).toBe(204);
        await sleep(500); // ten heartbeats
        expect(decoy.requests).toEqual([]);
      } finally {
        await decoy.close();
      }
    });
  });

  it('a /join address gets no request carrying the token until its entry commits, and gets them after', async () => {
    const leader = await cluster.leader({ all: true });
    const others = cluster.live().filter((n) => n.id !== leader.id);
    const joiner = await listen();
    try {
      // The leader alone cannot commit; it appends the entry and, for an election timeout, leads.
      await leader.setFaults({ dropTo: others.map((n) => n.id), dropFrom: others.map((n) => n.id) });
      const join = (at: ProcNode): Promise<number> =>
        fetch(`${at.url}/join`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ id: 'x1', address: joiner.url, learner: true }),
          redirect: 'manual',
          signal: AbortSignal.timeout(5000),
        }).then(
          async (res) => (await res.arrayBuffer(), res.status),
          () => 0,
        );
      const pending = join(leader);
      await waitFor('the leader appending x1', 5000, async () =>
        (await status(leader)).members.some((m) => m.id === 'x1') ? true : undefined,
      );
      await sleep(1000); // twenty heartbeat intervals, and past the leader's step-down
      expect(joiner.requests, 'requests before the entry committed').toEqual([]);
      await leader.setFaults({});
      await pending;
      // The entry commits once the old leader wins again (its log is the longest), or a retry
      // adds x1 anew if it was overwritten; 409: it is a member already.
      await waitFor('x1 added', 20_000, async () => {
        const status = await join(await cluster.leader());
        return status === 200 || status === 409 ? true : undefined;
      });
      const current = await cluster.leader();
      await waitFor('x1 committed on every member', 10_000, async () => {
        const all = await Promise.all(cluster.live().map((n) => status(n)));
        return all.every((s) => s.members.some((m) => m.id === 'x1')) ? true : undefined;
      });
      await waitFor('traffic to x1', 5000, async () => (joiner.requests.length > 0 ? true : undefined));
      expect(joiner.requests[0]).toEqual({ path: '/raft/messages', authorization: `Bearer ${TOKEN}` });
      expect((await status(current)).role).toBe('leader');
    } finally {
      await leader.setFaults({}).catch(() => undefined);
      await joiner.close();
    }
  });
});

describe('joining a voter beside a single node (the README: --bootstrap one, --join the others)', () => {
  const cluster = new ProcCluster({ engine: 'memory', size: 1 });
  afterAll(() => cluster.stopAll());

  // The configuration of two voters cannot commit without the newcomer, which is contacted only
  // once a configuration naming it committed: it joins as a learner first (Peer.addMember).
  it('the joining node is contacted, promoted and caught up', async () => {
    const port = await freePort();
    const n1 = new ProcNode('n1', port, path.join(cluster.root, 'n1'), [...cluster.commonArgs('n1', port), '--bootstrap']);
    cluster.nodes.set('n1', n1);
    n1.start();
    await cluster.leader();
    const n2 = await cluster.join('n2', n1);
    await waitFor('n2 a voter', 15_000, async () => ((await status(n1)).members.some((m) => m.id === 'n2' && m.voter) ? true : undefined));
    await cluster.caughtUp(n2, n1);
  }, 30_000);
});
