// Leases on real metcd processes: a key whose lease is kept alive survives SIGKILL of the
// leader (the new leader gives every lease its ttl plus an election timeout); a key whose lease
// nobody keeps alive disappears within ttl + an election timeout (plus scheduling slack).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, type ProcNode } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';

const TTL_S = 2;
const ELECTION_MS = 10 * 50; // 10 ticks of the cluster's 50 ms
const SLACK_MS = 2000; // a loaded 2-core machine: process scheduling, commit round trips

const cluster = new ProcCluster({ engine: 'memory' });
beforeAll(async () => {
  await cluster.start();
}, 60_000);
afterAll(async () => {
  await cluster.stopAll();
});

async function call(node: ProcNode, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${node.url}${path}`, { ...init, headers: node.headers, signal: AbortSignal.timeout(3000) });
}

async function grantWithKey(leader: ProcNode, key: string): Promise<string> {
  const g = await call(leader, '/lease', { method: 'POST', body: JSON.stringify({ ttl: TTL_S }) });
  expect(g.status).toBe(200);
  const { id } = (await g.json()) as { id: string };
  const p = await call(leader, `/${key}?lease=${id}`, { method: 'PUT', body: 'v' });
  expect(p.status).toBe(204);
  return id;
}

/** Whether `node` holds `key` (its own applied state). */
async function has(node: ProcNode, key: string): Promise<boolean> {
  const res = await call(node, `/${key}?level=stale`);
  await res.arrayBuffer();
  return res.status === 200;
}

describe('leases on a Node cluster', () => {
  it('a kept-alive lease survives SIGKILL of the leader; abandoned ones vanish within ttl + election timeout', async () => {
    const leader = await cluster.leader();
    const kept = await grantWithKey(leader, 'kept');
    const abandonedAt = Date.now();
    await grantWithKey(leader, 'abandoned');

    let keeping = true;
    let acks = 0;
    const keeper = (async () => {
      while (keeping) {
        for (const node of cluster.live()) {
          try {
            const res = await call(node, `/lease/${kept}/keepalive`, { method: 'POST' });
            if (res.status === 200) {
              acks++;
              await res.arrayBuffer();
              break;
            }
            await res.arrayBuffer();
          } catch {
            // a killed or unreachable node: the next one
          }
        }
        await new Promise((r) => setTimeout(r, (TTL_S * 1000) / 6));
      }
    })();

    await waitFor('the abandoned key to vanish', TTL_S * 1000 + ELECTION_MS + SLACK_MS, async () =>
      (await has(leader, 'abandoned')) ? undefined : true,
    );
    expect(Date.now() - abandonedAt).toBeGreaterThanOrEqual(TTL_S * 1000 - 100);

    await leader.kill('SIGKILL');
    const next = await cluster.leader({ not: leader.id });
    // Three TTLs under the new leader: the kept key never disappears from any live node.
    const until = Date.now() + 3 * TTL_S * 1000;
    while (Date.now() < until) {
      for (const node of cluster.live()) expect(await has(node, 'kept'), `kept on ${node.id}`).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(acks).toBeGreaterThan(6);

    keeping = false;
    await keeper;
    const stoppedAt = Date.now();
    await waitFor('the kept key to vanish once abandoned', TTL_S * 1000 + ELECTION_MS + SLACK_MS, async () =>
      (await has(next, 'kept')) ? undefined : true,
    );
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(TTL_S * 1000 - (TTL_S * 1000) / 6 - 200);
    expect((await (await call(next, `/lease/${kept}`)).json()) as object).toMatchObject({ error: { code: 'lease_not_found' } });
  }, 60_000);
});
