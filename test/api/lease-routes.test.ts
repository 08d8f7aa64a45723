// The lease routes through the shared router, against an in-process 3-peer cluster.

import { afterEach, describe, expect, it } from 'vitest';
import { routersFor } from './routers.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import { LEASE_TTL_MAX_SECONDS } from '../../worker/kv/leases.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

async function setup() {
  const c = await TestCluster.start({ seed: 3 });
  cluster = c;
  const router = routersFor(c);
  const call = async (id: NodeId, path: string, init: RequestInit = {}): Promise<Response> => {
    const r = router(id);
    const res = await c.drive(r.fetch(new Request(`${addressOf(id)}${path}`, init)));
    expect(res.status, path).not.toBe(500);
    return res;
  };
  const leader = (await c.waitLeader()).id;
  await c.tick(2);
  return { c, call, leader, follower: c.followers()[0]! };
}

const code = async (res: Response) => ((await res.clone().json()) as { error: { code: string } }).error.code;
const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });

describe('lease routes', () => {
  it('grant, attach, keep alive, read and revoke; the revoke deletes every key at one revision', async () => {
    const { call, leader } = await setup();
    const g = await call(leader, '/lease', post({ ttl: 30 }));
    expect(g.status).toBe(200);
    const { id, ttl } = (await g.json()) as { id: string; ttl: number };
    expect(id).toMatch(/^[1-9][0-9]*$/);
    expect(ttl).toBe(30);
    expect((await call(leader, `/a?lease=${id}`, { method: 'PUT', body: '1' })).status).toBe(204);
    expect((await call(leader, `/key/b?lease=${id}`, { method: 'PUT', body: '1' })).status).toBe(204);
    expect((await call(leader, `/key?lease=${id}`, post({ c: '1', d: '1' }))).status).toBe(200);
    expect((await call(leader, '/d', { method: 'PUT', body: '2' })).status).toBe(204); // detached (etcd)
    const ka = await call(leader, `/lease/${id}/keepalive`, { method: 'POST' });
    expect(await ka.json()).toEqual({ id, ttl: 30 });
    const info = await call(leader, `/lease/${id}`);
    expect(await info.json()).toEqual({ id, ttl: 30, grantedTtl: 30, keys: ['a', 'b', 'c'] });
    const status = (await (await call(leader, '/status')).json()) as { leases: number };
    expect(status.leases).toBe(1);
    const del = await call(leader, `/lease/${id}`, { method: 'DELETE' });
    const { deleted, revision } = (await del.json()) as { deleted: number; revision: number };
    expect(deleted).toBe(3);
    for (const key of ['a', 'b', 'c']) {
      expect((await call(leader, `/${key}`)).status).toBe(404);
      expect((await call(leader, `/${key}?revision=${revision - 1}`)).status).toBe(200);
    }
    expect((await call(leader, '/d')).status).toBe(200);
  });

  it('lists leases in id order a page at a time, and refuses a bad limit or after', async () => {
    const { call, leader, follower } = await setup();
    const ids: string[] = [];
    for (const ttl of [30, 40, 50]) ids.push(((await (await call(leader, '/lease', post({ ttl }))).json()) as { id: string }).id);
    const all = await call(leader, '/lease');
    expect(all.status).toBe(200);
    expect(await all.json()).toEqual({
      leases: ids.map((id, i) => ({ id, grantedTtl: [30, 40, 50][i] })),
      more: false,
    });
    const first = (await (await call(leader, '/lease?limit=2')).json()) as { leases: Array<{ id: string }>; more: boolean };
    expect([first.leases.map((l) => l.id), first.more]).toEqual([ids.slice(0, 2), true]);
    const rest = (await (await call(leader, `/lease?limit=2&after=${ids[1]}`)).json()) as { leases: Array<{ id: string }>; more: boolean };
    expect([rest.leases.map((l) => l.id), rest.more]).toEqual([ids.slice(2), false]);
    await call(leader, `/lease/${ids[0]}`, { method: 'DELETE' });
    const after = (await (await call(leader, '/lease')).json()) as { leases: Array<{ id: string }> };
    expect(after.leases.map((l) => l.id)).toEqual(ids.slice(1));
    for (const bad of ['limit=0', 'limit=10001', 'limit=x', 'after=-1', 'after=', 'other=1']) {
      const res = await call(leader, `/lease?${bad}`);
      expect([bad, res.status, await code(res)]).toEqual([bad, 400, 'bad_request']);
    }
    expect((await call(follower, '/lease')).status).toBe(307);
    const put = await call(leader, '/lease', { method: 'PUT', body: '{}' });
    expect([put.status, put.headers.get('Allow')]).toEqual([405, 'GET, POST']);
  });

  it('PUT /:key?ttl=N grants a lease for the key and names it in X-Metcd-Lease; the TTL is raised to the minimum', async () => {
    const { call, leader } = await setup();
    const put = await call(leader, '/solo?ttl=1', { method: 'PUT', body: 'v' });
    expect(put.status).toBe(204);
    const id = put.headers.get('X-Metcd-Lease')!;
    const info = (await (await call(leader, `/lease/${id}`)).json()) as { grantedTtl: number; keys: string[] };
    expect(info).toMatchObject({ grantedTtl: 2, keys: ['solo'] }); // 1.5 election timeouts, rounded up
    expect(((await (await call(leader, '/lease', post({ ttl: 1 }))).json()) as { ttl: number }).ttl).toBe(2);
  });

  it('answers 404 lease_not_found for an unknown lease and 400 for a bad ttl or id, writing nothing', async () => {
    const { call, leader } = await setup();
    for (const [path, init] of [
      ['/lease/12345/keepalive', { method: 'POST' }],
      ['/lease/12345', {}],
      ['/lease/12345', { method: 'DELETE' }],
      ['/k?lease=12345', { method: 'PUT', body: 'v' }],
      ['/key?lease=12345', post({ k: 'v' })],
    ] as const) {
      const res = await call(leader, path, init);
      expect(res.status, path).toBe(404);
      expect(await code(res), path).toBe('lease_not_found');
    }
    expect((await call(leader, '/k')).status).toBe(404);
    for (const body of [{ ttl: 0 }, { ttl: -1 }, { ttl: 1.5 }, { ttl: '10' }, { ttl: LEASE_TTL_MAX_SECONDS + 1 }, {}, { ttl: 5, id: 3 }]) {
      const res = await call(leader, '/lease', post(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await call(leader, '/lease', post({ ttl: LEASE_TTL_MAX_SECONDS }))).status).toBe(200);
    for (const path of ['/lease/0', '/lease/abc', '/lease/01', '/lease/99999999999999999'])
      expect((await call(leader, path)).status, path).toBe(400);
    expect((await call(leader, '/k?ttl=0', { method: 'PUT', body: 'v' })).status).toBe(400);
    expect((await call(leader, '/k?ttl=5&lease=3', { method: 'PUT', body: 'v' })).status).toBe(400);
    expect((await call(leader, '/lease', { method: 'DELETE' })).status).toBe(405);
    expect((await call(leader, '/lease/1/keepalive', { method: 'GET' })).status).toBe(405);
  });

  it('followers send every lease route to the leader', async () => {
    const { call, leader, follower } = await setup();
    for (const [path, init] of [
      ['/lease', post({ ttl: 10 })],
      ['/lease/5/keepalive', { method: 'POST' }],
      ['/lease/5', {}],
      ['/lease/5', { method: 'DELETE' }],
    ] as const) {
      const res = await call(follower, path, init);
      expect(res.status, path).toBe(307);
      expect(res.headers.get('Location'), path).toBe(`${addressOf(leader)}${path}`);
    }
  });
});
