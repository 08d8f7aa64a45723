// Adding members and their addresses (worker/peer/peer.ts addMember, committedAddress): a new
// voter joins as a learner first, so no configuration counts it before its address is in a
// committed one, and a host that sends a credential (Node) reads committed addresses only.

import { afterEach, describe, expect, it } from 'vitest';
import { decodeConfChange } from '../../worker/raft/codec.ts';
import type { ConfChange } from '../../worker/raft/types.ts';
import { TestCluster, addressOf } from './cluster.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

/** The configuration changes `id` wrote to its log, in order. */
function confChanges(c: TestCluster, id: string): ConfChange[] {
  const out: ConfChange[] = [];
  for (const batch of c.disks.get(id)!.saves) {
    for (const e of batch.entries ?? []) if (e.type === 'conf') out.push(decodeConfChange(e.data)!);
  }
  return out;
}

describe('peer: adding members', () => {
  it('a new voter joins as a learner first and is then promoted, also beside a single voter', async () => {
    cluster = await TestCluster.start({ ids: ['solo'] });
    const c = cluster;
    const solo = await c.waitLeader();
    await c.open('p2');
    const m = await c.drive(solo.addMember('p2', addressOf('p2'), false));
    expect(m.voters.sort()).toEqual(['p2', 'solo']);
    expect(confChanges(c, 'solo').map((cc) => `${cc.type} ${cc.node}`)).toEqual(['addLearner p2', 'addVoter p2']);
    // A voter already: refused as before; a learner added as a voter: promoted in one step.
    await expect(solo.addMember('p2', addressOf('p2'), false)).rejects.toMatchObject({ code: 'member-conflict' });
    await c.open('p3');
    await c.drive(solo.addMember('p3', addressOf('p3'), true));
    await c.drive(solo.addMember('p3', addressOf('p3'), false));
    expect(confChanges(c, 'solo').slice(2)).toEqual([
      { type: 'addLearner', node: 'p3', address: addressOf('p3') },
      { type: 'addVoter', node: 'p3', address: addressOf('p3') },
    ]);
  });

  it('names a member address as committed only once the entry adding it applied', async () => {
    cluster = await TestCluster.start();
    const c = cluster;
    const leader = await c.waitLeader();
    const followers = c.followers();
    expect(leader.committedAddress(followers[0]!)).toBe(addressOf(followers[0]!));
    for (const f of followers) c.isolated.add(f); // the leader cannot commit
    await c.open('p4');
    const added = leader.addMember('p4', addressOf('p4'), true);
    added.catch(() => {});
    await c.tick(2);
    expect(leader.membership().learners).toContain('p4');
    expect(leader.committedAddress('p4')).toBeUndefined();
    for (const f of followers) c.isolated.delete(f);
    await c.drive(added);
    expect(leader.committedAddress('p4')).toBe(addressOf('p4'));
    expect(leader.committedAddress('p9')).toBeUndefined();
  });
});
