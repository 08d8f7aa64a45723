// Locks and elections through the router, on an in-process cluster: waiters served in order of
// their create revision with growing fencing tokens, a wait that elapses leaving nothing behind,
// a dead holder's lease releasing the lock, and an election's leader, proclaim, resign and observe.

import { afterEach, describe, expect, it } from 'vitest';
import { routersFor } from './routers.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

async function setup() {
  const c = await TestCluster.start();
  cluster = c;
  const router = routersFor(c);
  const leader = (await c.waitLeader()).id;
  /** A request that is not driven yet (the caller drives it with others). */
  const send = (path: string, init: RequestInit = {}) => router(leader).fetch(new Request(`${addressOf(leader)}${path}`, init));
  const call = (path: string, init: RequestInit = {}) => c.drive(send(path, init), 2000);
  return { c, leader, send, call, router };
}

describe('locks', () => {
  it('serve waiters in order, each with a larger fencing token, and hand over on release', async () => {
    const { c, send, call } = await setup();
    const a = await call('/lock/jobs?ttl=30', { method: 'POST' });
    expect(a.status).toBe(200);
    const held = (await a.json()) as { key: string; lease: string; revision: number };
    expect(held.key).toBe(`lock/jobs/${Number(held.lease).toString(16)}`);
    // B waits behind A.
    let bDone = false;
    const b = send('/lock/jobs?ttl=30&wait=30s', { method: 'POST' }).then((r) => {
      bDone = true;
      return r;
    });
    await c.tick(20);
    expect(bDone).toBe(false);
    const released = await call(`/lock/jobs/${held.key.split('/')[2]}`, { method: 'DELETE' });
    expect(released.status).toBe(200);
    const got = await c.drive(b, 200);
    expect(got.status).toBe(200);
    const second = (await got.json()) as { revision: number };
    expect(second.revision).toBeGreaterThan(held.revision);
    expect((await call(`/lock/jobs/${held.key.split('/')[2]}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('answers 409 lock_wait_elapsed when the wait passes, and leaves no key or lease behind', async () => {
    const { c, call } = await setup();
    expect((await call('/lock/one?ttl=30', { method: 'POST' })).status).toBe(200);
    const late = await call('/lock/one?ttl=30&wait=300ms', { method: 'POST' });
    expect(late.status).toBe(409);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('lock_wait_elapsed');
    await c.tick(5);
    const keys = (await (await call('/key?prefix=lock/one/')).json()) as Record<string, string>;
    expect(Object.keys(keys)).toHaveLength(1);
    const status = (await (await call('/status')).json()) as { leases: number };
    expect(status.leases).toBe(1);
  });

  it('is released when its holder stops keeping its lease alive', async () => {
    const { c, send, call } = await setup();
    const a = (await (await call('/lock/ttl?ttl=2', { method: 'POST' })).json()) as { revision: number };
    const b = send('/lock/ttl?ttl=30&wait=60s', { method: 'POST' });
    const got = await c.drive(b, 2000); // the 2 s lease (plus an election timeout) runs out in ticks
    expect(got.status).toBe(200);
    expect(((await got.json()) as { revision: number }).revision).toBeGreaterThan(a.revision);
  });

  it('refuses bad names, ids, ttls and waits with 400, and an unknown lease with 404', async () => {
    const { call } = await setup();
    for (const [method, path] of [
      ['POST', '/lock/bad name'],
      ['POST', '/lock/x?ttl=abc'],
      ['POST', '/lock/x?wait=forever'],
      ['POST', '/lock/x?ttl=5&lease=7'],
      ['DELETE', '/lock/x/NOTHEX'],
    ] as const) {
      expect((await call(path, { method })).status, `${method} ${path}`).toBe(400);
    }
    const unknown = await call('/lock/x?lease=999', { method: 'POST' });
    expect(unknown.status).toBe(404);
  });
});

describe('elections', () => {
  it('elect the first campaigner, let only the leader proclaim, and pass leadership on resign; observe sees each leader', async () => {
    const { c, send, call, router, leader } = await setup();
    const observed = await c.drive(router(leader).fetch(new Request(`${addressOf(leader)}/election/svc/observe`)), 200);
    const reader = observed.body!.getReader();
    const first = (await (await call('/election/svc/campaign', { method: 'POST', body: '{"value":"node-a","ttl":30}' })).json()) as {
      key: string;
    };
    let bDone = false;
    const b = send('/election/svc/campaign?wait=60s', { method: 'POST', body: '{"value":"node-b","ttl":30}' }).then((r) => {
      bDone = true;
      return r;
    });
    await c.tick(10);
    expect(bDone).toBe(false);
    expect(await (await call('/election/svc')).json()).toMatchObject({ key: first.key, value: 'node-a' });
    const proclaimed = await call('/election/svc/proclaim', {
      method: 'POST',
      body: JSON.stringify({ key: first.key, value: 'node-a v2' }),
    });
    expect(proclaimed.status).toBe(200);
    expect(await (await call('/election/svc')).json()).toMatchObject({ value: 'node-a v2' });
    expect((await call('/election/svc/resign', { method: 'POST', body: JSON.stringify({ key: first.key }) })).status).toBe(200);
    const second = (await (await c.drive(b, 200)).json()) as { key: string };
    expect(await (await call('/election/svc')).json()).toMatchObject({ key: second.key, value: 'node-b' });
    const notLeader = await call('/election/svc/proclaim', { method: 'POST', body: JSON.stringify({ key: first.key, value: 'x' }) });
    expect(notLeader.status).toBe(409);
    // The observer saw node-a, node-a v2, then node-b.
    let text = '';
    const decoder = new TextDecoder();
    while (!text.includes('node-b')) {
      const chunk = await c.drive(reader.read(), 200);
      if (chunk.done) break;
      text += decoder.decode(chunk.value);
    }
    await reader.cancel();
    const values = [...text.matchAll(/"value":"([^"]*)"/g)].map((m) => m[1]);
    expect(values).toEqual(['node-a', 'node-a v2', 'node-b']);
  });
});
