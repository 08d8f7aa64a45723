// Quiescence in the peer (worker/peer/quiescence.ts) over a host that honours the TickPort:
// what the peer adds to the core's conditions (waiting clients, blocking reads, leases due),
// when the host may stop ticking (not while a watcher is registered here), the lease timer,
// waking by client operations, and turning it off.

import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from './cluster.ts';
import type { KvResult } from '../../worker/kv/types.ts';
import { PeerError } from '../../worker/peer/errors.ts';

const E = 10; // the core's default election timeout, in ticks

let c: TestCluster;
afterEach(async () => {
  await c?.closeAll();
});

async function idleCluster(opts: { quiesce?: boolean } = {}): Promise<TestCluster> {
  c = await TestCluster.start({ hostTicks: true, ...opts });
  const leader = await c.waitLeader();
  await c.drive(leader.write({ op: 'put', pairs: [['k', 'v']] }));
  return c;
}

function allResting(): boolean {
  return [...c.peers.keys()].every((id) => c.resting.has(id));
}

const sent = (): number => [...c.sentBy.values()].reduce((a, b) => a + b, 0);

describe('peer quiescence', () => {
  it('an idle group rests on every host after an election timeout of idleness, and sends nothing while it rests', async () => {
    await idleCluster();
    await c.until(allResting, 4 * E, 'every peer resting');
    for (const id of c.peers.keys()) {
      expect(c.resting.get(id)).toBeNull(); // no lease: no timer
      const st = c.peer(id).status();
      expect([st.quiescent, st.quiescedAtMs !== null]).toEqual([true, true]);
    }
    const [before, ticked] = [sent(), new Map(c.ticked)];
    await c.tick(20 * E);
    expect(sent()).toBe(before);
    expect(c.ticked).toEqual(ticked);
  });

  it('a write wakes the group (to a follower: not-leader, and its wake reaches the leader), then it rests again', async () => {
    await idleCluster();
    await c.until(allResting, 4 * E);
    const leaderId = c.leaderId()!;
    const follower = c.followers()[0]!;
    await expect(c.peer(follower).write({ op: 'put', pairs: [['a', '1']] })).rejects.toThrow(PeerError);
    await c.settle();
    expect(c.resting.size).toBe(0); // the follower's wake reached the leader, whose heartbeat woke the other
    await c.drive(c.peer(leaderId).write({ op: 'put', pairs: [['a', '1']] }));
    await c.until(allResting, 4 * E, 'resting again');
    for (const id of c.peers.keys()) expect(c.peer(id).status().wakes).toBe(1);
    expect(c.leaderId()).toBe(leaderId);
  });

  it('a woken leader does not serve a default read from its old lease: it takes a ReadIndex round', async () => {
    await idleCluster();
    await c.until(allResting, 4 * E);
    const leader = c.peer(c.leaderId()!);
    for (const f of c.followers()) c.isolated.add(f);
    // Cut off, the woken leader cannot confirm it leads: the read waits (and would time out).
    const read = leader.read('default', (kv) => kv.get('k')?.value);
    let answered = false;
    void read.then(
      () => (answered = true),
      () => (answered = true),
    );
    await c.tick(E - 2); // within what its pre-sleep lease would still have covered
    expect(answered).toBe(false);
    c.isolated.clear();
    const got = await c.drive(read);
    expect(got.value).toBe('v');
  });

  it('a blocking read waiting on the leader keeps the group awake; a watcher on a follower keeps only that host ticking', async () => {
    await idleCluster();
    const leader = c.peer(c.leaderId()!);
    const blocking = leader.watch({ key: 'later' }, { waitMs: 60_000 });
    await c.tick(4 * E);
    expect(leader.status().quiescent).toBe(false);
    blocking.close();

    const follower = c.followers()[0]!;
    const watcher = c.peer(follower).watch({ key: 'later' });
    await c.until(() => c.peer(follower).status().quiescent && c.resting.size === 2, 4 * E, 'the group quiescent around the watcher');
    expect(c.resting.has(follower)).toBe(false);
    const ticked = c.ticked.get(follower)!;
    await c.tick(5);
    expect(c.ticked.get(follower)).toBe(ticked + 5); // its host ticks, for the watcher
    expect(c.peer(follower).status().quiescent).toBe(true); // the group does not wake for it
    // The write that wakes the group reaches the watcher.
    await c.drive(leader.write({ op: 'put', pairs: [['later', 'x']] }));
    await c.until(() => watcher.queuedFrames > 0, 2 * E, 'the change at the watcher');
    watcher.close();
    await c.until(allResting, 4 * E, 'all resting once the watcher left');
  });

  it('a lease keeps the leader awake only near its expiry: it rests with a timer at the expiry, wakes then and revokes it', async () => {
    await idleCluster();
    const leaderId = c.leaderId()!;
    const ttl = 5; // seconds: 50 ticks, beyond the election timeout
    const g = (await c.drive(c.peer(leaderId).write({ op: 'lease-grant', ttl }))).result as Extract<KvResult, { op: 'lease-grant' }>;
    await c.until(() => c.resting.has(leaderId), 4 * E, 'the leader resting');
    const wakeAt = c.resting.get(leaderId)!;
    expect(wakeAt).not.toBeNull();
    await c.until(() => c.peer(leaderId).status().leases === 0, 100, 'the lease revoked');
    expect(c.tickCalls).toContain(`${leaderId} resume`);
    expect(g.id).toBeGreaterThan(0);
    // It expired no sooner than its TTL after the grant.
    await c.until(allResting, 4 * E);
  });

  it('a lease due within an election timeout keeps the leader from quiescing', async () => {
    await idleCluster();
    const leaderId = c.leaderId()!;
    // The shortest TTL (1.5 election timeouts): due within an election timeout of the grant
    // plus the idle stretch, so the leader stays awake until it has revoked it.
    await c.drive(c.peer(leaderId).write({ op: 'lease-grant', ttl: 1 }));
    const ttlTicks = Math.ceil((c.peer(leaderId).leaseTtlMinSeconds * 1000) / c.tickMs);
    for (let i = 0; i < ttlTicks - E; i++) {
      await c.tick();
      if (c.peer(leaderId).status().leases > 0) expect(c.resting.has(leaderId)).toBe(false);
    }
  });

  it('quiesce: false keeps every peer ticking', async () => {
    await idleCluster({ quiesce: false });
    await c.tick(5 * E);
    expect(c.tickCalls).toEqual([]);
    for (const id of c.peers.keys()) expect(c.peer(id).status().quiescent).toBe(false);
  });
});
