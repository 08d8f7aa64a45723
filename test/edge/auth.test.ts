// Access control on the edge, in real workerd: a Worker deployed without a root token serves
// nothing but /health; with one, a stranger gets 401 on every route, a token made through the
// API works per its rules on every peer, and its revocation is enforced by every peer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

const ROOT = 'edge-root-token-0123456789abcdef';
const PEERS = ['p1', 'p2', 'p3'];

let c: EdgeCluster;
beforeAll(async () => {
  // As deployed: no open mode; the secret is a binding like any var.
  c = await startCluster({ vars: { METCD_AUTH: '', METCD_ROOT_TOKEN: ROOT }, headers: { authorization: `Bearer ${ROOT}` } });
  await c.leader();
});
afterAll(async () => {
  await c?.close();
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });

/** A request straight to the Worker with this Authorization header (null: none at all). */
async function stranger(path: string, init: RequestInit, authorization: string | null): Promise<Response> {
  const headers = new Headers();
  if (authorization !== null) headers.set('authorization', authorization);
  type DispatchInit = Parameters<EdgeCluster['server']['fetch']>[1];
  return (await c.server.fetch(path, { redirect: 'manual', ...init, headers } as DispatchInit)) as unknown as Response;
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

describe('edge: access control', () => {
  it('answers a stranger 401 on every route and spelling, and /health alone, with nothing about the cluster', async () => {
    for (const [method, path] of [
      ['GET', '/hello'],
      ['PUT', '/hello'],
      ['GET', '/key?prefix='],
      ['POST', '/key'],
      ['GET', '/status?peer=p2'],
      ['GET', '/members'],
      ['POST', '/join'],
      ['POST', '/join/'],
      ['POST', '/x/../transfer-leader'],
      ['DELETE', '/members/p2/'],
      ['POST', '/members/p2/promote'],
      ['GET', '/auth/tokens'],
      ['POST', '/auth/tokens//'],
    ] as const) {
      for (const credential of [null, 'Bearer wrong-token', 'Basic dXNlcjpwYXNz', '']) {
        const res = await stranger(path, { method, ...(method === 'GET' ? {} : { body: '{}' }) }, credential);
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.headers.get('WWW-Authenticate')).toMatch(/^Bearer realm="metcd"/);
        expect(res.headers.get('X-Metcd-Leader')).toBeNull();
        expect(await errorCode(res)).toBe('unauthenticated');
      }
    }
    const health = await stranger('/health', {}, null);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    // The members are as they were.
    const members = (await (await c.request('/members')).json()) as { members: Array<{ id: string }> };
    expect(members.members.map((m) => m.id)).toEqual(PEERS);
  });

  it('enforces an API token on every peer per its rules, and its revocation on every peer', async () => {
    const made = await c.follow('/auth/tokens', {
      method: 'POST',
      body: JSON.stringify({ name: 'app-reader', rules: [{ prefix: 'app/', access: 'read' }] }),
    });
    expect(made.status).toBe(201);
    const { id, token } = (await made.json()) as { id: string; token: string };
    expect((await c.follow('/app/config', { method: 'PUT', body: 'v1' })).status).toBe(204);
    for (const peer of PEERS) {
      await waitFor(`${peer} to serve the token`, async () => {
        const res = await c.request(`/app/config?peer=${peer}&level=stale`, { headers: as(token) });
        return res.status === 200 && (await res.text()) === 'v1';
      });
    }
    const write = await c.follow('/app/config', { method: 'PUT', body: 'v2', headers: as(token) });
    expect(write.status).toBe(403);
    expect(await errorCode(write)).toBe('permission_denied');
    expect((await c.follow('/secret', { headers: as(token) })).status).toBe(403);
    expect((await c.follow('/auth/tokens', { headers: as(token) })).status).toBe(403);

    expect((await c.follow(`/auth/tokens/${id}`, { method: 'DELETE' })).status).toBe(200);
    for (const peer of PEERS) {
      await waitFor(`${peer} to refuse the revoked token`, async () => {
        const res = await c.request(`/app/config?peer=${peer}&level=stale`, { headers: as(token) });
        return res.status === 401;
      });
    }
  });
});

describe('edge: deployed without a root token', () => {
  it('serves nothing but /health, and says how to set the secret', async () => {
    const locked = await startCluster({ vars: { METCD_AUTH: '', CLUSTER_NAME: 'locked' } });
    try {
      for (const path of ['/hello', '/status', '/members', '/auth/tokens']) {
        const res = await locked.request(path, { headers: as(ROOT) });
        expect(res.status, path).toBe(401);
        expect(((await res.json()) as { error: { message: string } }).error.message).toContain('wrangler secret put METCD_ROOT_TOKEN');
      }
      expect((await locked.request('/join', { method: 'POST', body: '{"id":"p4"}' })).status).toBe(401);
      const health = await locked.request('/health');
      // Unauthenticated, /health says whether the peer is healthy and nothing else.
      expect([200, 503]).toContain(health.status);
      expect(health.headers.get('X-Metcd-Leader')).toBeNull();
      // The peers' own paths stay refused at the Worker, whatever the mode.
      for (const path of ['/raft/messages', '/_metcd/faults']) expect((await locked.request(path, { method: 'POST' })).status).toBe(404);
    } finally {
      await locked.close();
    }
  });
});
