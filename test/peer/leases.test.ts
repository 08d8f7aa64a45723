// Leases on the production peer, in an in-process cluster with fake time: the leader's lessor
// expires an abandoned lease by proposing its revoke (within ttl + an election timeout), a lease
// kept alive survives leader changes (the new leader gives every lease its TTL plus an election
// timeout), and a revoke deletes every attached key in one revision on every replica.

import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from './cluster.ts';
import type { Peer } from '../../worker/peer/peer.ts';
import type { KvResult } from '../../worker/kv/types.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

const ELECTION_TICKS = 10; // worker/raft/config.ts default; DEFAULT_TICK_MS = 100
const TTL_SECONDS = 2;
const TTL_TICKS = TTL_SECONDS * 10;

async function start(): Promise<{ c: TestCluster; leader: Peer }> {
  const c = await TestCluster.start({ seed: 7 });
  cluster = c;
  const leader = await c.waitLeader();
  await c.tick(2);
  return { c, leader };
}

async function grantWithKey(c: TestCluster, leader: Peer, key: string): Promise<number> {
  const g = (await c.drive(leader.write({ op: 'lease-grant', ttl: TTL_SECONDS }))).result as Extract<KvResult, { op: 'lease-grant' }>;
  expect(g).toMatchObject({ ok: true, op: 'lease-grant', ttl: TTL_SECONDS });
  const p = await c.drive(leader.write({ op: 'put', pairs: [[key, 'v']], lease: g.id }));
  expect(p.result.ok).toBe(true);
  return g.id;
}

/** Whether any live peer's applied state lacks `key`. */
const goneAnywhere = (c: TestCluster, key: string) => [...c.peers.values()].some((p) => p.status().keys === 0 || !hasKey(p, key));
function hasKey(p: Peer, key: string): boolean {
  let found = false;
  void p.read('stale', (kv) => (found = kv.get(key) !== undefined));
  return found;
}

describe('leases on the peer', () => {
  it('an abandoned lease is revoked by the leader within ttl + an election timeout, not before its ttl', async () => {
    const { c, leader } = await start();
    await grantWithKey(c, leader, 'a');
    // Granted and attached at about now: nobody keeps it alive.
    let ticks = 0;
    while ([...c.peers.values()].some((p) => hasKey(p, 'a'))) {
      await c.tick();
      ticks++;
      expect(ticks, 'ticks until the key is gone everywhere').toBeLessThanOrEqual(TTL_TICKS + ELECTION_TICKS);
    }
    expect(ticks).toBeGreaterThanOrEqual(TTL_TICKS - 2);
    expect(leader.status().leases).toBe(0);
  });

  it('a lease kept alive survives leader changes; once abandoned its keys vanish within ttl + election timeout', async () => {
    const { c } = await start();
    const id = await grantWithKey(c, c.peer(c.leaderId()!), 'kept');
    let lastAck = 0;
    let changes = 0;
    for (let t = 0; t < 400; t++) {
      const leaderId = c.leaderId();
      // No leader known: as a client trying its endpoints, ask every peer it can reach. A group
      // that slept (quiescence) notices a lost leader only when something wakes it.
      if (leaderId === null && t % 5 === 0) {
        for (const [peerId, p] of c.peers) if (!c.isolated.has(peerId)) p.keepAlive(id).catch(() => {});
      }
      // Keep alive every ttl/4 through whoever leads now.
      if (leaderId !== null && t % 5 === 0) {
        const kept = c.peer(leaderId).keepAlive(id);
        kept.then(
          (k) => {
            expect(k).toEqual({ ttl: TTL_SECONDS });
            lastAck = t;
          },
          () => {}, // a leader that lost its place: the next one is asked
        );
      }
      // Every 80 ticks the leader is cut off (a new one is elected), then let back in.
      if (t % 80 === 40 && leaderId !== null) {
        c.isolated.add(leaderId);
        changes++;
      }
      if (t % 80 === 70) c.isolated.clear();
      await c.tick();
      expect(goneAnywhere(c, 'kept'), `key lost at tick ${t}`).toBe(false);
    }
    expect(changes).toBe(5);
    expect(lastAck).toBeGreaterThan(390);
    c.isolated.clear();
    let ticks = 0;
    while ([...c.peers.values()].some((p) => hasKey(p, 'kept'))) {
      await c.tick();
      expect(++ticks).toBeLessThanOrEqual(TTL_TICKS + ELECTION_TICKS + 5);
    }
  });

  it('a revoke deletes every attached key at one revision, the same on every replica; keepalive of it is refused', async () => {
    const { c, leader } = await start();
    const id = await grantWithKey(c, leader, 'x');
    await c.drive(
      leader.write({
        op: 'put',
        pairs: [
          ['y', '1'],
          ['z', '1'],
        ],
        lease: id,
      }),
    );
    await c.drive(leader.write({ op: 'put', pairs: [['other', '1']] }));
    const r = (await c.drive(leader.write({ op: 'lease-revoke', id }))).result;
    expect(r).toMatchObject({ ok: true, op: 'delete', deleted: 3 });
    await c.tick(3);
    for (const p of c.peers.values()) {
      const events = (
        await p.read('stale', (kv) => [...(kv.eventsFrom(r.revision) as Iterable<{ type: string; key: string; revision: number }>)])
      ).value;
      expect(events.map((e) => `${e.type} ${e.key}@${e.revision}`)).toEqual(['x', 'y', 'z'].map((k) => `delete ${k}@${r.revision}`));
      expect(hasKey(p, 'other')).toBe(true);
    }
    expect(await c.drive(leader.keepAlive(id))).toBeNull();
    expect(await c.drive(leader.leaseTimeToLive(id))).toBeNull();
  });

  it('keep-alives are for the leader; time to live counts down on it', async () => {
    const { c, leader } = await start();
    const id = await grantWithKey(c, leader, 'k');
    const follower = c.peer(c.followers()[0]!);
    await expect(c.drive(follower.keepAlive(id))).rejects.toMatchObject({ code: 'not-leader' });
    await c.tick(10);
    const ttl = await c.drive(leader.leaseTimeToLive(id));
    expect(ttl).toMatchObject({ id, grantedTtl: TTL_SECONDS, keys: ['k'] });
    expect(ttl!.ttl).toBeLessThan(TTL_SECONDS);
    expect(await c.drive(leader.keepAlive(id))).toEqual({ ttl: TTL_SECONDS });
    expect((await c.drive(leader.leaseTimeToLive(id)))!.ttl).toBe(TTL_SECONDS);
    expect(leader.leaseTtlMinSeconds).toBe(2); // 1.5 × 10 ticks × 100 ms, rounded up
  });
});
