// Transactions and key history on real Node processes: a lock taken by a transaction survives
// SIGKILL of the leader (a second taker loses on the new leader), and every node reads the key
// as of a revision from its own state.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, followLeader } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';

const cluster = new ProcCluster({ engine: 'sqlite' });
beforeAll(() => cluster.start());
afterAll(() => cluster.stopAll());

const call = followLeader;

const takeLock = (who: string) =>
  JSON.stringify({
    compare: [{ key: 'the-lock', target: 'createRevision', result: '==', value: 0 }],
    success: [{ put: { key: 'the-lock', value: who } }],
    failure: [{ get: { key: 'the-lock' } }],
  });

describe('Node: transactions and history across a leader crash', () => {
  it('keeps a lock taken by a transaction through SIGKILL of the leader, and serves past revisions on every node', async () => {
    const leader = await cluster.leader({ all: true });
    const taken = await call(leader, '/txn', { method: 'POST', body: takeLock('a') });
    const { succeeded, revision } = (await taken.json()) as { succeeded: boolean; revision: number };
    expect(succeeded).toBe(true);
    expect((await call(leader, '/the-lock', { method: 'PUT', body: 'a-renewed' })).status).toBe(204);
    await leader.kill('SIGKILL');
    const next = await cluster.leader({ not: leader.id, all: true });
    const second = (await (await call(next, '/txn', { method: 'POST', body: takeLock('b') })).json()) as {
      succeeded: boolean;
      results: Array<{ get: { kvs: Array<{ value: string }> } }>;
    };
    expect(second.succeeded).toBe(false);
    expect(second.results[0]!.get.kvs[0]!.value).toBe('a-renewed');
    for (const node of cluster.live()) {
      await waitFor(`${node.id} to read the-lock as of ${revision}`, 10_000, async () => {
        const res = await fetch(`${node.url}/the-lock?level=stale&revision=${revision}`);
        return res.status === 200 && (await res.text()) === 'a' ? true : undefined;
      });
    }
    // Back to three nodes for what follows: the killed one restarts on its data dir.
    leader.start();
    await cluster.caughtUp(leader, next);
  });
});

describe('Node: locks across a leader crash', () => {
  it('hands a lock whose holder died to the next waiter, with a larger fencing token, even when the leader is killed meanwhile', async () => {
    const leader = await cluster.leader({ all: true });
    const first = await call(leader, '/lock/batch?ttl=2', { method: 'POST' });
    expect(first.status).toBe(200);
    const a = (await first.json()) as { revision: number };
    // The holder "dies": nobody keeps its lease alive. The leader is killed too.
    await leader.kill('SIGKILL');
    const next = await cluster.leader({ not: leader.id, all: true });
    let got: { revision: number } | undefined;
    await waitFor('the next waiter to take the lock', 30_000, async () => {
      const res = await call(next, '/lock/batch?ttl=10&wait=5s', { method: 'POST' }).catch(() => null);
      if (res === null || res.status !== 200) return undefined;
      got = (await res.json()) as { revision: number };
      return true;
    });
    expect(got!.revision).toBeGreaterThan(a.revision);
  });
});
