// Quiescence on the edge, in real workerd: an idle 3-peer cluster stops ticking and clears its
// alarms (every object may hibernate), sends nothing while idle, and answers again: writes and
// linearizable reads sent to the leader and to a follower, a peer aborted while the group
// slept, the leader aborted while quiescent (a new leader is elected on the next request), and
// a watch held open on a follower keeps that object ticking, not the group, and still gets the
// write that wakes it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putRaw, startCluster, waitFor } from './harness.ts';
import type { EdgeCluster, Inspection } from './harness.ts';

const PEERS = ['p1', 'p2', 'p3'];
/** How long the idle cluster is watched for traffic (counts, not speed, are asserted). */
const IDLE_WATCH_MS = 3000;

let c: EdgeCluster;

beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'quiet' } });
  expect((await c.follow('/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
});

afterAll(async () => {
  await c?.close();
});

/** Every peer rests: its group is quiescent, no tick timer runs and no alarm is set. */
async function allAsleep(): Promise<Inspection[]> {
  let views: Inspection[] = [];
  await waitFor(
    'every peer to rest (quiescent, no ticker, no alarm)',
    async () => {
      views = await Promise.all(PEERS.map((id) => c.inspect(id)));
      return views.every((v) => v.status?.quiescent === true && v.resting && !v.ticking && v.alarmAt === null);
    },
    () =>
      JSON.stringify(
        views.map((v) => ({ name: v.name, quiescent: v.status?.quiescent, resting: v.resting, ticking: v.ticking, alarmAt: v.alarmAt })),
      ),
  );
  return views;
}

const sent = (v: Inspection): number => v.transport?.sentMessages ?? 0;

async function consistent(key: string, peer: string): Promise<Response> {
  return c.follow(`/${key}?level=consistent&peer=${peer}`);
}

describe('quiescence on the edge', () => {
  it('an idle cluster goes quiescent: no ticker, no alarm, nothing sent while it idles', async () => {
    const before = await allAsleep();
    for (const v of before) expect(v.status!.quiescedAtMs).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, IDLE_WATCH_MS));
    const after = await Promise.all(PEERS.map((id) => c.inspect(id)));
    for (let i = 0; i < PEERS.length; i++) {
      const [b, a] = [before[i]!, after[i]!];
      expect(sent(a), `${a.name} sent Raft messages while idle`).toBe(sent(b));
      expect(a.status!.wakes, a.name).toBe(b.status!.wakes);
      expect([a.ticking, a.alarmAt, a.status!.quiescent]).toEqual([false, null, true]);
      expect(a.status!.term).toBe(b.status!.term);
    }
  });

  it('answers a write and a linearizable read sent to the leader and to a follower after idling', async () => {
    await allAsleep();
    const leader = await c.leader();
    const follower = PEERS.find((id) => id !== leader)!;
    const term = (await c.status(leader)).term;
    for (const [i, target] of [leader, follower].entries()) {
      await allAsleep();
      const put = await c.follow(`/after-idle-${i}?peer=${target}`, { method: 'PUT', body: `v${i}` });
      expect(put.status, `write via ${target}`).toBe(204);
      await allAsleep();
      const read = await consistent(`after-idle-${i}`, target);
      expect(read.status, `read via ${target}`).toBe(200);
      expect(await read.text()).toBe(`v${i}`);
      const lease = await c.follow(`/after-idle-${i}?peer=${target}`); // level=default: no stale lease after the sleep
      expect(await lease.text()).toBe(`v${i}`);
    }
    // Woken and put back to sleep, with the same leader: no election was needed.
    expect((await c.status(leader)).term).toBe(term);
    const views = await allAsleep();
    for (const v of views) expect(v.status!.wakes).toBeGreaterThan(0);
  });

  it('a peer aborted while the group slept restarts on the next request and the write is served', async () => {
    await allAsleep();
    const leader = await c.leader();
    const follower = PEERS.find((id) => id !== leader)!;
    await c.peer(follower).abort('test: crash a sleeping follower');
    // A request that reaches the object while it is still going down fails (503); as a careful
    // client, retry with the same stamp.
    let last = '';
    await waitFor(
      'the write through the restarted follower',
      async () => {
        const put = await c.follow(`/after-abort?peer=${follower}`, {
          method: 'PUT',
          body: 'a',
          headers: { 'X-Metcd-Client': 'quiesce-abort', 'X-Metcd-Seq': '1' },
        });
        last = `${put.status} ${await put.text()}`;
        return put.status === 204;
      },
      () => `last answer: ${last}`,
    );
    expect(await (await consistent('after-abort', follower)).text()).toBe('a');
    await allAsleep();
  });

  it('the leader aborted while quiescent: a request to a follower gets a new leader elected and the write succeeds', async () => {
    await allAsleep();
    const oldLeader = await c.leader();
    const oldTerm = (await c.status(oldLeader)).term;
    const follower = PEERS.find((id) => id !== oldLeader)!;
    await c.peer(oldLeader).abort('test: crash the sleeping leader');
    let last = '';
    await waitFor(
      'the write through a follower to be acknowledged',
      async () => {
        const res = await c.follow(`/after-leader-abort?peer=${follower}`, {
          method: 'PUT',
          body: 'b',
          headers: { 'X-Metcd-Client': 'quiesce-test', 'X-Metcd-Seq': '1' },
        });
        last = `${res.status} ${await res.text()}`;
        return res.status === 204;
      },
      () => `last answer: ${last}`,
    );
    const leader = await c.leader();
    expect((await c.status(leader)).term).toBeGreaterThan(oldTerm);
    expect(await (await consistent('after-leader-abort', follower)).text()).toBe('b');
    await allAsleep();
  });

  it('a watch open on a follower keeps that object ticking, not the group, and gets the write that wakes it', async () => {
    const leader = await c.leader();
    const follower = PEERS.find((id) => id !== leader)!;
    const others = PEERS.filter((id) => id !== follower);
    const res = await c.request(`/watch/woken?peer=${follower}`);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          text += new TextDecoder().decode(value);
        }
      } catch {
        // cancelled
      }
    })();
    await waitFor('the group to quiesce around the watcher', async () => {
      const views = await Promise.all(PEERS.map((id) => c.inspect(id)));
      const watcher = views[PEERS.indexOf(follower)]!;
      const rest = others.map((id) => views[PEERS.indexOf(id)]!);
      return (
        watcher.status!.watchers === 1 &&
        watcher.status!.quiescent &&
        watcher.ticking &&
        rest.every((v) => v.status!.quiescent && !v.ticking && v.alarmAt === null)
      );
    });
    expect((await putRaw(c, 'woken', 'yes')).status).toBe(204);
    await waitFor(
      'the watcher to get the change',
      () => text.includes('"woken"') && text.includes('yes'),
      () => text,
    );
    // The woken group went back to sleep around the watcher again.
    await waitFor('the others to rest again', async () =>
      (await Promise.all(others.map((id) => c.inspect(id)))).every((v) => v.status!.quiescent && !v.ticking && v.alarmAt === null),
    );
    await reader.cancel();
  });
});
