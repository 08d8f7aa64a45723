// Quiescence with real metcd processes: an idle 3-node cluster goes quiescent (every node says
// so, and stays so while idle: nothing wakes it, no term moves), answers a write after idling
// without an election, and when its leader is SIGKILLed while the group sleeps, a write sent to
// a follower is served once the others have elected a new leader; the killed node, restarted,
// catches up and the group sleeps again.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, followLeader, type NodeStatus } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';

/** How long the idle cluster is watched (its counters must not move; no speed is asserted). */
const IDLE_WATCH_MS = 2000;

type QuiescentStatus = NodeStatus & { quiescent: boolean; quiescedAtMs: number | null; wakes: number };

const cluster = new ProcCluster({ engine: 'memory' });

beforeAll(async () => {
  await cluster.start();
  const leader = await cluster.leader({ all: true });
  expect((await followLeader(leader, '/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
});

afterAll(async () => {
  await cluster.stopAll();
});

async function statuses(): Promise<QuiescentStatus[]> {
  return (await Promise.all(cluster.live().map((n) => n.status()))) as QuiescentStatus[];
}

async function allQuiescent(): Promise<QuiescentStatus[]> {
  return waitFor('every live node to be quiescent', 20_000, async () => {
    const all = await statuses();
    return all.every((s) => s.quiescent && s.quiescedAtMs !== null) ? all : undefined;
  });
}

describe('quiescence on Node', () => {
  it('an idle cluster quiesces and stays asleep while idle', async () => {
    const before = await allQuiescent();
    await new Promise((resolve) => setTimeout(resolve, IDLE_WATCH_MS));
    const after = await statuses();
    for (let i = 0; i < before.length; i++) {
      const [b, a] = [before[i]!, after[i]!];
      expect({ quiescent: a.quiescent, quiescedAtMs: a.quiescedAtMs, wakes: a.wakes, term: a.term, commit: a.commit }).toEqual({
        quiescent: true,
        quiescedAtMs: b.quiescedAtMs,
        wakes: b.wakes,
        term: b.term,
        commit: b.commit,
      });
    }
  });

  it('a write to a follower after idling is served by the same leader, and the group sleeps again', async () => {
    await allQuiescent();
    const leader = await cluster.leader({ all: true });
    const term = (await leader.status()).term;
    const follower = cluster.live().find((n) => n.id !== leader.id)!;
    expect((await followLeader(follower, '/after-idle', { method: 'PUT', body: 'v' })).status).toBe(204);
    const read = await followLeader(follower, '/after-idle?level=consistent');
    expect(await read.text()).toBe('v');
    expect((await leader.status()).term).toBe(term);
    const again = await allQuiescent();
    for (const s of again) expect(s.wakes).toBeGreaterThan(0);
  });

  it('SIGKILL the leader while quiescent: a write to a follower is served after a re-election', async () => {
    await allQuiescent();
    const old = await cluster.leader({ all: true });
    const oldTerm = (await old.status()).term;
    await old.kill('SIGKILL');
    const follower = cluster.live()[0]!;
    let last = '';
    await waitFor('the write through a follower to be acknowledged', 20_000, async () => {
      try {
        const res = await followLeader(follower, '/after-kill', {
          method: 'PUT',
          body: 'k',
          headers: { 'X-Metcd-Client': 'quiesce-test', 'X-Metcd-Seq': '1' },
        });
        last = `${res.status} ${await res.text()}`;
        return res.status === 204 ? true : undefined;
      } catch (err) {
        last = String(err); // redirected to the dead leader, before the others elected one
        return undefined;
      }
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}; last answer: ${last}`);
    });
    const next = await cluster.leader({ not: old.id });
    expect((await next.status()).term).toBeGreaterThan(oldTerm);
    expect(await (await followLeader(follower, '/after-kill?level=consistent')).text()).toBe('k');
    // The killed voter, silent for an election timeout, does not keep the group awake (the
    // two live nodes sleep while it is down); restarted, it wakes the group, catches up, and
    // the whole group sleeps again.
    const twoAsleep = await allQuiescent();
    expect(twoAsleep).toHaveLength(2);
    old.start();
    await allQuiescent();
    expect(cluster.live()).toHaveLength(3);
  });
});
