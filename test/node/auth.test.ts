// Access control on real Node processes: a 3-node cluster started with a root token serves
// nothing to a stranger, an API token made on the leader works (and is refused where it has no
// right) on every node, its revocation is enforced by every node, and a node joins with the
// cluster token alone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, followLeader } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = 'node-root-token-0123456789abcdef';
const cluster = new ProcCluster({ engine: 'memory', rootToken: ROOT });
beforeAll(() => cluster.start());
afterAll(() => cluster.stopAll());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const call = followLeader;

describe('Node: access control', () => {
  it('serves a stranger nothing but /health, and nothing about the cluster', async () => {
    const leader = await cluster.leader({ all: true });
    for (const node of cluster.live()) {
      for (const [method, path] of [
        ['GET', '/hello'],
        ['PUT', '/hello'],
        ['GET', '/status'],
        ['GET', '/members'],
        ['POST', '/join/'],
        ['GET', '/auth/tokens'],
      ] as const) {
        const res = await call(node, path, { method, ...(method === 'GET' ? {} : { body: '{}' }) });
        expect(res.status, `${node.id} ${method} ${path}`).toBe(401);
        expect(res.headers.get('x-metcd-leader')).toBeNull();
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
      }
      const health = await call(node, '/health');
      expect(health.status).toBe(200);
      expect(health.headers.get('x-metcd-revision')).toBeNull();
    }
    expect((await call(leader, '/status', { headers: bearer(ROOT) })).status).toBe(200);
  });

  it('enforces a token made on the leader on every node, and its revocation too', async () => {
    const leader = await cluster.leader({ all: true });
    const made = await call(leader, '/auth/tokens', {
      method: 'POST',
      headers: bearer(ROOT),
      body: JSON.stringify({ name: 'app', rules: [{ prefix: 'app/', access: 'readwrite' }] }),
    });
    expect(made.status).toBe(201);
    const { id, token } = (await made.json()) as { id: string; token: string };
    // Each node enforces the tokens it has applied: a new one works there within a heartbeat.
    for (const node of cluster.live()) {
      await waitFor(`${node.id} to serve the token`, 10_000, async () =>
        (await call(node, '/app/x?level=stale', { headers: bearer(token) })).status === 404 ? true : undefined,
      );
    }
    const follower = cluster.live().find((n) => n.id !== leader.id)!;
    // Written through a follower: redirected to the leader, the credential goes along.
    expect((await call(follower, '/app/x', { method: 'PUT', body: 'v', headers: bearer(token) })).status).toBe(204);
    const denied = await call(follower, '/other', { method: 'PUT', body: 'v', headers: bearer(token) });
    expect(denied.status).toBe(403);
    expect(await denied.text()).toContain('write on key \\"other\\"');
    expect((await call(leader, `/auth/tokens/${id}`, { method: 'DELETE', headers: bearer(ROOT) })).status).toBe(200);
    for (const node of cluster.live()) {
      await waitFor(`${node.id} to refuse the revoked token`, 10_000, async () =>
        (await call(node, '/app/x?level=stale', { headers: bearer(token) })).status === 401 ? true : undefined,
      );
    }
  });

  it('lets a new node join with the cluster token alone (the peers’ credential)', async () => {
    const leader = await cluster.leader({ all: true });
    const joined = await cluster.join('n4', leader);
    await waitFor('n4 to be a member', 20_000, async () => ((await leader.status()).members.some((m) => m.id === 'n4') ? true : undefined));
    await cluster.caughtUp(joined, leader);
    // The cluster token changes membership, and reads nothing.
    const read = await call(leader, '/app/x', { headers: bearer('test-token') });
    expect(read.status).toBe(403);
  });
});
