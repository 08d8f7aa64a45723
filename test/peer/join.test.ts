// Adding members and their addresses (worker/peer/peer.ts addMember, committedAddress): a new
// voter joins as a learner first, so no configuration counts it before its address is in a
// committed one, and a host that sends a credential (Node) reads committed addresses only.

import { afterEach, describe, expect, it } from 'vitest';
import { decodeConfChange, encodeConfChange } from '../../worker/raft/codec.ts';
import type { ConfChange } from '../../worker/raft/types.ts';
import { encodeState } from '../../worker/kv/codec.ts';
import { Peer } from '../../worker/peer/peer.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import { MemoryDisk, MemoryStorage } from './memory-storage.ts';
import { TestCluster, addressOf } from './cluster.ts';

let cluster: TestCluster | null = null;
const opened: Peer[] = [];
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
  for (const p of opened.splice(0)) await p.close();
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
    expect(confChanges(c, 'solo').map((cc) => `${cc.type} ${cc.node}`)).toEqual(['addLearner p2', 'promoteLearner p2']);
    // A voter already: refused as before. A learner added as a voter: promoted in one step, at
    // the address it has (a promotion to another one would make a voter of an address never
    // committed).
    await expect(solo.addMember('p2', addressOf('p2'), false)).rejects.toMatchObject({ code: 'member-conflict' });
    await c.open('p3');
    await c.drive(solo.addMember('p3', addressOf('p3'), true));
    await expect(solo.addMember('p3', 'http://elsewhere.test', false)).rejects.toMatchObject({ code: 'member-conflict' });
    await c.drive(solo.addMember('p3', addressOf('p3'), false));
    expect(confChanges(c, 'solo').slice(2)).toEqual([
      { type: 'addLearner', node: 'p3', address: addressOf('p3') },
      { type: 'promoteLearner', node: 'p3' },
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

  it('names a voter of its latest configuration that it has not applied (a committed learner first), not such a learner', async () => {
    // A peer whose log holds the changes adding p4, above its applied index: a follower that
    // lagged, or a new leader that has not committed in its term yet. p4's ack may be needed.
    const open = async (changes: ConfChange[]): Promise<Peer> => {
      const disk = new MemoryDisk();
      const membership = {
        voters: ['p1', 'p2', 'p3'],
        learners: [],
        addresses: { p1: addressOf('p1'), p2: addressOf('p2'), p3: addressOf('p3') },
      };
      const snapshot = { meta: { index: 1, term: 1, membership }, data: encodeState({ revision: 0, records: [], sessions: [] }) };
      disk.apply({
        installSnapshot: { snapshot, kv: { revision: 0, records: [], sessions: [] } },
        hardState: { term: 2, vote: '', commit: 1 },
      });
      disk.apply({ entries: changes.map((cc, i) => ({ term: 2, index: 2 + i, type: 'conf', data: encodeConfChange(cc) })) });
      const peer = await Peer.open({
        id: 'p1',
        storage: new MemoryStorage(disk),
        transport: { send: () => {} },
        clock: { nowMs: () => 0 },
        tickMs: 100,
        random: new SeededRandom(1),
        initialMembership: { voters: [], learners: [], addresses: {} },
      });
      opened.push(peer);
      return peer;
    };
    const learner: ConfChange = { type: 'addLearner', node: 'p4', address: addressOf('p4') };
    const onlyLearner = await open([learner]);
    expect(onlyLearner.membership().learners).toEqual(['p4']);
    expect(onlyLearner.committedAddress('p4')).toBeUndefined();
    const promoted = await open([learner, { type: 'promoteLearner', node: 'p4' }]);
    expect(promoted.status().applied).toBe(1);
    expect(promoted.committedAddress('p4')).toBe(addressOf('p4'));
    expect(promoted.committedAddress('p2')).toBe(addressOf('p2'));
  });
});
