// Membership on the edge, through the public API: add a learner, promote it, remove it,
// replace a failed peer (remove, then join a new one), and hand leadership over. New peers are
// Durable Objects created by the first Raft message the leader sends them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

interface MembersBody {
  leader: string;
  members: Array<{ id: string; address: string; voter: boolean }>;
}

let c: EdgeCluster;

beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'members' } });
  expect((await c.follow('/seed', { method: 'PUT', body: 'before any change' })).status).toBe(204);
});

afterAll(async () => {
  await c?.close();
});

async function members(): Promise<MembersBody> {
  const res = await c.follow('/members');
  expect(res.status).toBe(200);
  return (await res.json()) as MembersBody;
}

function roster(body: MembersBody): string[] {
  return body.members.map((m) => `${m.id}:${m.voter ? 'voter' : 'learner'}`).sort();
}

/** `id` has applied everything the leader had committed when this was called. */
async function caughtUp(id: string): Promise<void> {
  const leader = await c.leader(voters(await members()));
  const commit = (await c.status(leader)).commit;
  await waitFor(`${id} to apply up to ${commit}`, async () => (await c.status(id)).applied >= commit);
}

function voters(body: MembersBody): string[] {
  return body.members.filter((m) => m.voter).map((m) => m.id);
}

describe('membership on the edge', () => {
  it('adds a learner that receives the log but does not vote', async () => {
    const res = await c.follow('/join', { method: 'POST', body: '{"id":"p4","learner":true}' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as MembersBody;
    expect(roster(body)).toEqual(['p1:voter', 'p2:voter', 'p3:voter', 'p4:learner']);
    expect(body.members.find((m) => m.id === 'p4')!.address).toBe('members/p4');
    await caughtUp('p4');
    const read = await c.request('/seed?level=stale&peer=p4');
    expect(await read.text()).toBe('before any change');
    expect((await c.status('p4')).role).toBe('follower');
  });

  it('promotes the learner to a voter', async () => {
    const res = await c.follow('/members/p4/promote', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(roster((await res.json()) as MembersBody)).toEqual(['p1:voter', 'p2:voter', 'p3:voter', 'p4:voter']);
    await waitFor('p4 to see itself as a voter', async () => (await c.status('p4')).members.some((m) => m.id === 'p4' && m.voter));
  });

  it('removes a member; the rest keep committing', async () => {
    const res = await c.follow('/members/p4', { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(roster((await res.json()) as MembersBody)).toEqual(['p1:voter', 'p2:voter', 'p3:voter']);
    expect((await c.follow('/after-remove', { method: 'PUT', body: 'x' })).status).toBe(204);
  });

  it('the removed member learns it and goes dormant: 410 removed naming the cluster, no alarm, no ticks', async () => {
    let last = '';
    await waitFor(
      'p4 to answer 410',
      async () => {
        const res = await c.request('/seed?level=stale&peer=p4');
        last = `${res.status} ${await res.text()}`;
        return res.status === 410;
      },
      () => `last answer: ${last}`,
    );
    const body = JSON.parse(last.slice(last.indexOf(' ') + 1)) as { error: { code: string; message: string } };
    expect(body.error).toEqual({ code: 'removed', message: expect.stringContaining('removed from cluster members') });
    const write = await c.request('/k?peer=p4', { method: 'PUT', body: 'x' });
    expect(write.status).toBe(410);
    await waitFor('p4 to stop ticking and clear its alarm', async () => {
      const seen = await c.inspect('p4');
      return seen.alarmAt === null && !seen.ticking;
    });
    const seen = await c.inspect('p4');
    expect(seen.status?.removed).toContain('removed from cluster members');
    // Dormant for good: nothing wakes it (a term that no longer moves, no alarm set later).
    const term = seen.status!.term;
    await new Promise((resolve) => setTimeout(resolve, 3000)); // several election timeouts
    const later = await c.inspect('p4');
    expect(later).toMatchObject({ alarmAt: null, ticking: false });
    expect(later.status!.term).toBe(term);
  });

  it('replaces a failed peer: remove it, join a new one, which catches up and votes', async () => {
    const leader = await c.leader();
    const failed = ['p1', 'p2', 'p3'].find((id) => id !== leader)!;
    // The failed peer hears and says nothing from here on.
    await c.peer(failed).isolate(true);
    const removed = await c.follow(`/members/${failed}`, { method: 'DELETE' });
    expect(removed.status).toBe(200);
    const joined = await c.follow('/join', { method: 'POST', body: '{"id":"p5"}' });
    expect(joined.status).toBe(200);
    const remaining = ['p1', 'p2', 'p3'].filter((id) => id !== failed);
    expect(roster((await joined.json()) as MembersBody)).toEqual([...remaining, 'p5'].map((id) => `${id}:voter`).sort());
    // With the failed peer gone from the configuration, writes need the new one or both others.
    expect((await c.follow('/after-replace', { method: 'PUT', body: 'y' })).status).toBe(204);
    await caughtUp('p5');
    for (const key of ['seed', 'after-remove', 'after-replace']) {
      expect((await c.request(`/${key}?level=stale&peer=p5`)).status, key).toBe(200);
    }
    // p5 counts toward the quorum: with the other old follower cut off, leader + p5 commit.
    const current = await c.leader([...remaining, 'p5']);
    const other = remaining.find((id) => id !== current)!;
    await c.peer(other).isolate(true);
    expect((await c.follow('/needs-p5', { method: 'PUT', body: 'q' })).status).toBe(204);
    await c.peer(other).isolate(false);
    await c.peer(failed).isolate(false);
  });

  it('transfers leadership to a chosen voter', async () => {
    const body = await members();
    const from = await c.leader(voters(body));
    const to = voters(body).find((id) => id !== from)!;
    const res = await c.follow('/transfer-leader', { method: 'POST', body: JSON.stringify({ id: to }) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { leader: string }).leader).toBe(to);
    expect(await c.leader(voters(body))).toBe(to);
    expect((await c.follow('/after-transfer', { method: 'PUT', body: 'z' })).status).toBe(204);
  });
});
