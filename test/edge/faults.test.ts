// Peers failing on the edge: the leader's Durable Object aborted mid-traffic (a new leader, no
// acknowledged write lost, the old leader catches up), a follower cut off while the leader
// compacts its log (it catches up by InstallSnapshot), and every peer aborted at once (the
// Durable Object alarm brings the cluster back with no client traffic at all).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

const PEERS = ['p1', 'p2', 'p3'];
const SNAPSHOT_EVERY_ENTRIES = 20;

let c: EdgeCluster;

beforeAll(async () => {
  // QUIESCE off: these drills crash an active cluster, whose watchdog alarm brings it back.
  // A cluster that crashes while quiescent has no alarm to wait for and is woken by its next
  // request (test/edge/quiesce.test.ts).
  c = await startCluster({
    vars: { CLUSTER_NAME: 'faults', SNAPSHOT_EVERY_ENTRIES: String(SNAPSHOT_EVERY_ENTRIES), QUIESCE: 'false' },
  });
  expect((await c.follow('/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
});

afterAll(async () => {
  await c?.close();
});

/**
 * Writes through the front door like a careful client: follows redirects, and on a 503 (no
 * leader yet, leadership lost) or a failed connection retries with the same client stamp, so
 * a write whose first attempt did commit is applied once. Returns once acknowledged.
 */
async function writeUntilAcked(key: string, value: string, client: string, seq: number): Promise<void> {
  const headers = { 'X-Metcd-Client': client, 'X-Metcd-Seq': String(seq) };
  let last = '';
  await waitFor(
    `an acknowledgement for ${key}`,
    async () => {
      try {
        const res = await c.follow(`/${key}`, { method: 'PUT', body: value, headers });
        last = `${res.status} ${await res.text()}`;
        return res.status === 204;
      } catch (err) {
        last = String(err);
        return false;
      }
    },
    () => `last answer: ${last}`,
  );
}

async function consistentValue(key: string): Promise<string | null> {
  const res = await c.follow(`/${key}?level=consistent`);
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  return res.text();
}

describe('faults on the edge', () => {
  it("aborting the leader's object: a new leader, no acknowledged write lost, the old leader catches up", async () => {
    const oldLeader = await c.leader();
    const oldTerm = (await c.status(oldLeader)).term;
    const acked: Array<[string, string]> = [];
    for (let i = 0; i < 10; i++) {
      await writeUntilAcked(`before-${i}`, `v${i}`, 'crash-client', i + 1);
      acked.push([`before-${i}`, `v${i}`]);
    }
    await c.peer(oldLeader).abort('test: crash the leader');
    for (let i = 0; i < 10; i++) {
      await writeUntilAcked(`after-${i}`, `w${i}`, 'crash-client', 100 + i);
      acked.push([`after-${i}`, `w${i}`]);
    }
    const newLeader = await c.leader();
    expect((await c.status(newLeader)).term).toBeGreaterThan(oldTerm);
    for (const [key, value] of acked) expect(await consistentValue(key), key).toBe(value);

    // The aborted peer came back from storage and has every write, including those it missed.
    const commit = (await c.status(newLeader)).commit;
    await waitFor(`${oldLeader} to apply up to ${commit}`, async () => (await c.status(oldLeader)).applied >= commit);
    for (const [key, value] of acked) {
      const res = await c.request(`/${key}?level=stale&peer=${oldLeader}`);
      expect(await res.text(), `${key} on ${oldLeader}`).toBe(value);
    }
  });

  it('a follower that missed compacted entries catches up by snapshot', async () => {
    const leader = await c.leader();
    const lagging = PEERS.find((id) => id !== leader)!;
    await c.peer(lagging).isolate(true);
    const behindAt = (await c.status(lagging)).lastIndex;
    for (let i = 0; i < 3 * SNAPSHOT_EVERY_ENTRIES; i++) {
      await writeUntilAcked(`bulk-${i}`, `b${i}`, 'bulk-client', i + 1);
    }
    // The leader no longer holds the entries right after the lagging peer's log: only a
    // snapshot can bring it up to date.
    await waitFor('the leader to compact past the lagging log', async () => (await c.status(leader)).firstIndex > behindAt + 1);
    await c.peer(lagging).isolate(false);
    const commit = (await c.status(leader)).commit;
    await waitFor(`${lagging} to catch up to ${commit}`, async () => (await c.status(lagging)).applied >= commit);
    const caughtUp = await c.status(lagging);
    expect(caughtUp.snapshotIndex).toBeGreaterThan(behindAt);
    for (const i of [0, SNAPSHOT_EVERY_ENTRIES, 3 * SNAPSHOT_EVERY_ENTRIES - 1]) {
      const res = await c.request(`/bulk-${i}?level=stale&peer=${lagging}`);
      expect(await res.text()).toBe(`b${i}`);
    }
    const value = await c.request(`/warmup?level=stale&peer=${lagging}`);
    expect(await value.text()).toBe('w');
  });

  it('with every peer aborted, the alarm brings the cluster back without any request', async () => {
    const before = Math.max(...(await Promise.all(PEERS.map(async (id) => (await c.status(id)).term))));
    c.server.clearLogs();
    await Promise.all(PEERS.map((id) => c.peer(id).abort('test: crash everything')));
    // Watch the peers' own log lines only: any request would wake an object by itself.
    const events = () =>
      c.server.getLogs().flatMap((log) => {
        try {
          return [JSON.parse(String(log.message)) as { event: string; peer: string; role?: string; term?: number }];
        } catch {
          return [];
        }
      });
    await waitFor(
      'every peer to restart and a leader to be elected',
      () => {
        const seen = events();
        const opened = new Set(seen.filter((e) => e.event === 'peer.open').map((e) => e.peer));
        const leaders = seen.filter((e) => e.event === 'peer.role' && e.role === 'leader');
        return PEERS.every((id) => opened.has(id)) && leaders.length > 0;
      },
      () => JSON.stringify(events()),
    );
    // At least one peer was started by its alarm, not by a sibling's message.
    expect(events().some((e) => e.event === 'peer.wake')).toBe(true);
    const elected = events().find((e) => e.event === 'peer.role' && e.role === 'leader')!;
    expect(elected.term).toBeGreaterThan(before);
    expect(await consistentValue('warmup')).toBe('w');
  });
});
