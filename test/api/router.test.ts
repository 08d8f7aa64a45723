// The shared router against an in-process 3-peer cluster, with real Request/Response objects.

import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_KV_LIMITS } from '../../worker/kv/types.ts';
import { createApiRouter, needsLeader } from '../../worker/api/router.ts';
import { Grant } from '../../worker/api/access.ts';
import type { ApiHost, ApiRoute, Authorize } from '../../worker/api/router.ts';
import { ApiError } from '../../worker/api/http.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import { DRAIN_BYTES_MAX } from '../../worker/api/body.ts';

type Api = { fetch(request: Request): Promise<Response> };

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

interface Env {
  c: TestCluster;
  api(id: NodeId): Api;
  /** Send a request to a peer's router while ticking the cluster; checks the invariants every answer keeps. */
  call(id: NodeId, path: string, init?: RequestInit): Promise<Response>;
  leader: NodeId;
  follower: NodeId;
}

async function setup(
  opts: Parameters<typeof TestCluster.start>[0] & { mode?: 'redirect' | 'proxy'; elect?: boolean; authorize?: Authorize } = {},
): Promise<Env> {
  const c = await TestCluster.start(opts);
  cluster = c;
  const apis = new Map<NodeId, Api>();
  const api = (id: NodeId): Api => {
    let a = apis.get(id);
    if (a === undefined) {
      const host: ApiHost = {
        peer: c.peer(id),
        mode: opts.mode ?? 'redirect',
        leaderUrl: (request, _leader, address) => {
          const url = new URL(request.url);
          return `${address}${url.pathname}${url.search}`;
        },
        forward: (request, leader) => api(leader).fetch(request),
        ...(opts.authorize === undefined ? {} : { authorize: opts.authorize }),
        log: (level, event, fields) => {
          if (level === 'error') throw new Error(`router logged ${event}: ${JSON.stringify(fields)}`);
        },
      };
      a = createApiRouter(host);
      apis.set(id, a);
    }
    return a;
  };
  const call = async (id: NodeId, path: string, init?: RequestInit): Promise<Response> => {
    const response = await c.drive(api(id).fetch(new Request(`${addressOf(id)}${path}`, init)));
    expect(response.headers.get('X-Metcd-Revision'), `X-Metcd-Revision on ${path}`).toMatch(/^\d+$/);
    expect(response.status, `status of ${path}`).not.toBe(500);
    if (response.status >= 400) {
      const body = (await response.clone().json()) as { error: Record<string, unknown> };
      const { code, message, ...details } = body.error;
      expect({ code, message }).toEqual({ code: expect.any(String), message: expect.any(String) });
      // Further fields only where documented for the code.
      expect(Object.keys(details).sort(), `error fields of ${String(code)}`).toEqual(
        code === 'learner_behind' ? ['leaderLastIndex', 'learnerMatch'] : code === 'compacted' ? ['compactRevision'] : [],
      );
    }
    return response;
  };
  let leader = '';
  let follower = '';
  if (opts.elect !== false) {
    leader = (await c.waitLeader()).id;
    await c.tick(2); // followers learn who leads
    follower = c.followers()[0]!;
  }
  return { c, api, call, leader, follower };
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

/** Follow a 307 the way `curl -L` does: same method and body to Location. */
async function follow(env: Env, response: Response, init?: RequestInit): Promise<Response> {
  expect(response.status).toBe(307);
  const location = new URL(response.headers.get('Location')!);
  const id = location.hostname.replace(/\.test$/, '');
  return env.call(id, `${location.pathname}${location.search}`, init);
}

describe('api: the quick-start flows', () => {
  it('hraftd style: POST /key, GET /key/:key at each level, DELETE /key/:key', async () => {
    const env = await setup();
    const post = await env.call(env.leader, '/key', { method: 'POST', body: '{"foo": "bar"}' });
    expect(post.status).toBe(200);
    expect(await post.json()).toEqual({ revision: 1 });
    expect(post.headers.get('X-Metcd-Revision')).toBe('1');
    expect(post.headers.get('X-Metcd-Leader')).toBe(env.leader);

    for (const level of ['', '?level=default', '?level=consistent', '?level=stale']) {
      const get = await env.call(env.leader, `/key/foo${level}`);
      expect(get.status).toBe(200);
      expect(await get.text()).toBe('{"foo":"bar"}');
      expect(get.headers.get('X-Metcd-Mod-Revision')).toBe('1');
      expect(get.headers.get('X-Metcd-Version')).toBe('1');
    }

    const multi = await env.call(env.leader, '/key', { method: 'POST', body: '{"a":"1","b":"2"}' });
    expect(await multi.json()).toEqual({ revision: 2 });

    const del = await env.call(env.leader, '/key/foo', { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ deleted: 1, revision: 3 });
    const gone = await env.call(env.leader, '/key/foo');
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe('key_not_found');
    expect(gone.headers.get('X-Metcd-Revision')).toBe('3');
    expect(gone.headers.get('X-Metcd-Leader')).toBe(env.leader);
  });

  it('every answer names the leader the peer knows of, and none while it knows none', async () => {
    const env = await setup();
    for (const path of ['/status', '/members', '/health', '/hello?level=stale']) {
      const r = await env.call(env.follower, path);
      expect(r.headers.get('X-Metcd-Leader'), path).toBe(env.leader);
    }
    await env.c.closeAll();
    const leaderless = await setup({ elect: false });
    const r = await leaderless.call(leaderless.c.initial.voters[0]!, '/status');
    expect(r.headers.get('X-Metcd-Leader')).toBeNull();
    expect(r.headers.get('X-Metcd-Revision')).toBe('0');
  });

  it('metcd style: PUT /hello -d world, GET /hello → world, DELETE /hello', async () => {
    const env = await setup();
    const put = await env.call(env.leader, '/hello', { method: 'PUT', body: 'world' });
    expect(put.status).toBe(204);
    expect(put.headers.get('X-Metcd-Revision')).toBe('1');
    const get = await env.call(env.leader, '/hello');
    expect(get.status).toBe(200);
    expect(get.headers.get('Content-Type')).toMatch(/^text\/plain/);
    expect(await get.text()).toBe('world');
    // Keys may hold slashes and percent-encoded characters; the same key is reachable via /key/.
    await env.call(env.leader, '/dir/sub%20key', { method: 'PUT', body: 'nested' });
    expect(await (await env.call(env.leader, '/key/dir%2Fsub%20key')).text()).toBe('{"dir/sub key":"nested"}');
    expect(await (await env.call(env.leader, '/key/dir/sub%20key')).text()).toBe('{"dir/sub key":"nested"}');
    // A key named like a reserved path is reached through /key/.
    expect((await env.call(env.leader, '/key/status', { method: 'PUT', body: 's' })).status).toBe(204);
    expect(await (await env.call(env.leader, '/key/status')).text()).toBe('{"status":"s"}');

    expect((await env.call(env.leader, '/hello', { method: 'DELETE' })).status).toBe(204);
    expect((await env.call(env.leader, '/hello')).status).toBe(404);
  });

  it('GET /key stops adding pairs past the byte bound and says where to continue', async () => {
    const env = await setup();
    const c = env.c;
    const api = createApiRouter({ peer: c.peer(env.leader), mode: 'redirect', leaderUrl: () => '', limits: { rangeBytesMax: 10 } });
    await env.call(env.leader, '/key', { method: 'POST', body: '{"a":"12345678","b":"12345678","c":"1"}' });
    const get = (query: string) => c.drive(api.fetch(new Request(`${addressOf(env.leader)}/key${query}`)));
    const first = await get('');
    expect(await first.text()).toBe('{"a":"12345678","b":"12345678"}'); // passes 10 bytes at the second pair
    expect(first.headers.get('X-Metcd-More')).toBe('true');
    const rest = await get(`?start=${first.headers.get('X-Metcd-Next-Start')}`);
    expect(await rest.text()).toBe('{"c":"1"}');
    expect(rest.headers.get('X-Metcd-More')).toBe('false');
  });

  it('GET /key lists a sorted, bounded range', async () => {
    const env = await setup();
    await env.call(env.leader, '/key', { method: 'POST', body: '{"b/2":"x","a/1":"y","a/3":"z","10":"n","9":"m"}' });
    const all = await env.call(env.leader, '/key');
    expect(await all.text()).toBe('{"10":"n","9":"m","a/1":"y","a/3":"z","b/2":"x"}');
    expect(all.headers.get('X-Metcd-More')).toBe('false');
    const page = await env.call(env.leader, '/key?prefix=a/&limit=1');
    expect(await page.text()).toBe('{"a/1":"y"}');
    expect(page.headers.get('X-Metcd-More')).toBe('true');
    const next = await env.call(env.leader, `/key?prefix=a/&limit=1&start=${page.headers.get('X-Metcd-Next-Start')}`);
    expect(await next.text()).toBe('{"a/3":"z"}');
    expect(next.headers.get('X-Metcd-More')).toBe('false');
    const from = await env.call(env.leader, '/key?start=a/3&end=b&level=consistent');
    expect(await from.text()).toBe('{"a/3":"z"}');
  });
});

describe('api: followers, leaders and read levels', () => {
  it('a follower answers writes and default/consistent reads with 307 to the leader; curl -L completes them', async () => {
    const env = await setup();
    const init = { method: 'POST', body: '{"foo":"bar"}' };
    const redirect = await env.call(env.follower, '/key?peer=x', init);
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get('X-Metcd-Leader')).toBe(env.leader);
    expect(redirect.headers.get('Location')).toBe(`${addressOf(env.leader)}/key?peer=x`);
    const done = await follow(env, redirect, init);
    expect(done.status).toBe(200);

    const put = { method: 'PUT', body: 'world' };
    expect((await follow(env, await env.call(env.follower, '/hello', put), put)).status).toBe(204);

    for (const path of ['/key/foo', '/key/foo?level=consistent', '/hello', '/key']) {
      const r = await env.call(env.follower, path);
      expect(r.status, path).toBe(307);
      expect((await follow(env, r)).status).toBe(200);
    }
    for (const path of ['/members/p1', '/members/p1/promote', '/transfer-leader', '/join']) {
      const method = path === '/members/p1' ? 'DELETE' : 'POST';
      expect((await env.call(env.follower, path, { method, body: '{}' })).status, path).toBe(307);
    }
  });

  it('stale reads are answered by any peer, with headers saying how far behind it may be', async () => {
    const env = await setup();
    await env.call(env.leader, '/hello', { method: 'PUT', body: 'world' });
    await env.c.tick(3);
    const r = await env.call(env.follower, '/hello?level=stale');
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('world');
    expect(r.headers.get('X-Metcd-Read-Level')).toBe('stale');
    expect(r.headers.get('X-Metcd-Leader')).toBe(env.leader);
    expect(r.headers.get('X-Metcd-Applied-Index')).toMatch(/^\d+$/);
    expect(r.headers.get('X-Metcd-Commit-Index')).toMatch(/^\d+$/);
    expect(Number(r.headers.get('X-Metcd-Last-Contact-Ms'))).toBeGreaterThanOrEqual(0);
  });

  it('proxy mode: a follower forwards to the leader and relays its answer', async () => {
    const env = await setup({ mode: 'proxy' });
    const post = await env.call(env.follower, '/key', { method: 'POST', body: '{"via":"proxy"}' });
    expect(post.status).toBe(200);
    const get = await env.call(env.follower, '/key/via?level=consistent');
    expect(await get.text()).toBe('{"via":"proxy"}');
    // A request that was already forwarded once is not forwarded again (no loops).
    const looped = await env.call(env.follower, '/key/via', { headers: { 'X-Metcd-Forwarded': 'p9' } });
    expect(looped.status).toBe(503);
    expect(await errorCode(looped)).toBe('not_leader');
  });

  it('answers 503 with Retry-After when no leader is known', async () => {
    const env = await setup({ elect: false });
    env.c.isolated.add('p1'); // p1, the first founder, campaigns at start: nobody hears it
    const r = await env.c.drive(env.api('p1').fetch(new Request(`${addressOf('p1')}/hello`, { method: 'PUT', body: 'x' })), 0);
    expect(r.status).toBe(503);
    expect(r.headers.get('Retry-After')).toBe('1');
    expect(await errorCode(r)).toBe('no_leader');
    const health = await env.c.drive(env.api('p1').fetch(new Request(`${addressOf('p1')}/health`)), 0);
    expect(health.status).toBe(503);
    // Stale reads still work without a leader.
    const stale = await env.c.drive(env.api('p1').fetch(new Request(`${addressOf('p1')}/hello?level=stale`)), 0);
    expect(stale.status).toBe(404);
  });
});

describe('api: conditional writes and idempotency', () => {
  it('ifRevision compare-and-set answers 409 with the actual mod revision when it fails', async () => {
    const env = await setup();
    expect((await env.call(env.leader, '/k?ifRevision=0', { method: 'PUT', body: 'v1' })).status).toBe(204);
    const conflict = await env.call(env.leader, '/k?ifRevision=0', { method: 'PUT', body: 'v2' });
    expect(conflict.status).toBe(409);
    expect(await errorCode(conflict)).toBe('compare_failed');
    expect(conflict.headers.get('X-Metcd-Mod-Revision')).toBe('1');
    expect((await env.call(env.leader, '/key?ifRevision=1', { method: 'POST', body: '{"k":"v2"}' })).status).toBe(200);
    const del = await env.call(env.leader, '/key/k?ifRevision=1', { method: 'DELETE' });
    expect(del.status).toBe(409);
    expect((await env.call(env.leader, '/key/k?ifRevision=2', { method: 'DELETE' })).status).toBe(200);
    const multi = await env.call(env.leader, '/key?ifRevision=0', { method: 'POST', body: '{"a":"1","b":"2"}' });
    expect(multi.status).toBe(400);
    const named = await env.call(env.leader, '/key?ifRevision=0&ifKey=a', { method: 'POST', body: '{"a":"1","b":"2"}' });
    expect(named.status).toBe(200);
  });

  it('X-Metcd-Client + X-Metcd-Seq: a retry returns the first answer and is applied once', async () => {
    const env = await setup();
    const init = { method: 'POST', body: '{"n":"1"}', headers: { 'X-Metcd-Client': 'app-7', 'X-Metcd-Seq': '1' } };
    const first = await env.call(env.leader, '/key', init);
    const retry = await env.call(env.leader, '/key', init);
    expect(await retry.json()).toEqual(await first.json());
    expect(env.c.peer(env.leader).revision).toBe(1);
    const next = await env.call(env.leader, '/key', { ...init, headers: { 'X-Metcd-Client': 'app-7', 'X-Metcd-Seq': '2' } });
    expect(await next.json()).toEqual({ revision: 2 });
    const old = await env.call(env.leader, '/key', init); // seq 1 again, after 2: the answer is gone
    expect(old.status).toBe(409);
    expect(await errorCode(old)).toBe('session_expired');
  });
});

describe('api: bad input', () => {
  const limits = {
    ...DEFAULT_KV_LIMITS,
    keyBytesMax: 16,
    valueBytesMax: 64,
    pairsPerCommandMax: 8,
    commandBytesMax: 512,
    sessionsMax: 100,
    sessionIdleEntriesMax: 10_000,
    tokensMax: 10,
    historyRetention: 1000,
    txnOpsMax: 8,
  };

  it('answers 400 for malformed requests, naming the problem', async () => {
    const env = await setup({ kvLimits: limits });
    const cases: Array<[string, RequestInit | undefined]> = [
      ['/key', { method: 'POST', body: '{"foo": ' }],
      ['/key', { method: 'POST', body: '' }],
      ['/key', { method: 'POST', body: '["foo","bar"]' }],
      ['/key', { method: 'POST', body: 'null' }],
      ['/key', { method: 'POST', body: '{}' }],
      ['/key', { method: 'POST', body: '{"foo": 1}' }],
      ['/key', { method: 'POST', body: '{"foo": null}' }],
      ['/key', { method: 'POST', body: '{"foo": {"x":"y"}}' }],
      ['/key', { method: 'POST', body: '{"": "v"}' }],
      ['/key', { method: 'POST', body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x22, 0x22, 0x7d]) }],
      ['/key?ifKey=a', { method: 'POST', body: '{"a":"1"}' }],
      ['/key?ifRevision=-1', { method: 'POST', body: '{"a":"1"}' }],
      ['/key?ifRevision=abc', { method: 'POST', body: '{"a":"1"}' }],
      ['/', { method: 'PUT', body: 'v' }],
      ['/', undefined],
      ['/%E0%A4%A', undefined],
      ['/key/foo?level=strong', undefined],
      ['/key/foo?lvl=stale', undefined],
      ['/key/foo?level=stale&level=default', undefined],
      ['/foo?x=1', { method: 'PUT', body: 'v' }],
      ['/key?limit=0', undefined],
      ['/key?limit=100000', undefined],
      ['/foo', { method: 'PUT', body: new Uint8Array([0xc3, 0x28]) }],
      ['/foo', { method: 'PUT', body: 'v', headers: { 'X-Metcd-Client': 'c' } }],
      ['/foo', { method: 'PUT', body: 'v', headers: { 'X-Metcd-Client': 'c', 'X-Metcd-Seq': '0' } }],
      ['/foo', { method: 'PUT', body: 'v', headers: { 'X-Metcd-Client': 'c', 'X-Metcd-Seq': 'x' } }],
      ['/join', { method: 'POST', body: '{"id":"p4"}' }], // no address and no host default
      ['/join', { method: 'POST', body: '{"id":"bad id!","address":"http://x"}' }],
      ['/join', { method: 'POST', body: '{"id":"p4","address":"http://x","learner":"yes"}' }],
      ['/join', { method: 'POST', body: '{"id":"p4","address":"http://x","extra":1}' }],
      ['/transfer-leader', { method: 'POST', body: '{}' }],
      ['/members/bad%20id', { method: 'DELETE' }],
      ['/status?verbose=1', undefined],
    ];
    for (const [path, init] of cases) {
      const r = await env.call(env.leader, path, init);
      expect(r.status, `${init?.method ?? 'GET'} ${path}`).toBe(400);
      expect(await errorCode(r)).toBe('bad_request');
    }
    expect(env.c.peer(env.leader).revision).toBe(0);
  });

  it('answers 507 space_exceeded for a put past the space quota; a delete and a compaction make room', async () => {
    const env = await setup({ limits: { stateBytesMax: 64 } });
    expect((await env.call(env.leader, '/a', { method: 'PUT', body: '12345678' })).status).toBe(204); // 9 bytes
    const r = await env.call(env.leader, '/key', { method: 'POST', body: JSON.stringify({ b: 'x'.repeat(55) }) }); // 56 more
    expect(r.status).toBe(507);
    expect(await errorCode(r)).toBe('space_exceeded');
    expect((await env.call(env.leader, '/a', { method: 'DELETE' })).status).toBe(204);
    expect((await env.call(env.leader, '/b', { method: 'PUT', body: 'x'.repeat(10) })).status).toBe(507); // a's history: 56 bytes
    const revision = Number((await env.call(env.leader, '/status')).headers.get('X-Metcd-Revision'));
    expect((await env.call(env.leader, '/compact', { method: 'POST', body: JSON.stringify({ revision }) })).status).toBe(200);
    expect((await env.call(env.leader, '/b', { method: 'PUT', body: 'x'.repeat(10) })).status).toBe(204);
  });

  it('answers 413 over the size limits, even for a body streamed without Content-Length', async () => {
    const env = await setup({ kvLimits: limits });
    const big = 'x'.repeat(65);
    const cases: Array<[string, RequestInit | undefined]> = [
      ['/k', { method: 'PUT', body: big }],
      [`/${'k'.repeat(17)}`, { method: 'PUT', body: 'v' }],
      [`/key/${'k'.repeat(17)}`, undefined],
      ['/key', { method: 'POST', body: JSON.stringify({ k: big }) }],
      ['/key', { method: 'POST', body: JSON.stringify({ ['k'.repeat(17)]: 'v' }) }],
      ['/key', { method: 'POST', body: JSON.stringify(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'v']))) }],
      ['/key', { method: 'POST', body: 'x'.repeat(2000) }],
    ];
    for (const [path, init] of cases) {
      const r = await env.call(env.leader, path, init);
      expect(r.status, `${init?.method ?? 'GET'} ${path}`).toBe(413);
      expect(await errorCode(r)).toBe('too_large');
    }
    // A streamed body: the limit is enforced while reading. Past it the rest is read and dropped
    // (so the 413 is not lost to a connection reset) only up to DRAIN_BYTES_MAX, then cut off:
    // an endless upload ends with a 413 after a bounded read, and nothing is buffered or applied.
    const chunkBytes = 64 * 1024;
    let pulledBytes = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulledBytes += chunkBytes;
        controller.enqueue(new Uint8Array(chunkBytes).fill(0x61));
      },
    });
    const r = await env.call(env.leader, '/k', { method: 'PUT', body: endless, duplex: 'half' } as RequestInit);
    expect(r.status).toBe(413);
    expect(pulledBytes).toBeLessThanOrEqual(DRAIN_BYTES_MAX + 4 * chunkBytes);
    expect(env.c.peer(env.leader).revision).toBe(0);
  });

  it('answers HEAD as GET (the HTTP layer drops the body)', async () => {
    const env = await setup();
    await env.call(env.leader, '/hello', { method: 'PUT', body: 'world' });
    const r = await env.call(env.leader, '/hello', { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('X-Metcd-Mod-Revision')).toBe('1');
    expect((await env.call(env.leader, '/missing', { method: 'HEAD' })).status).toBe(404);
    expect((await env.call(env.leader, '/status', { method: 'HEAD' })).status).toBe(200);
  });

  it('answers 405 with Allow for a wrong method on a known path, 404 for unknown reserved paths', async () => {
    const env = await setup();
    const cases: Array<[string, string, string]> = [
      ['PATCH', '/foo', 'GET, PUT, DELETE'],
      ['POST', '/foo', 'GET, PUT, DELETE'],
      ['PUT', '/key', 'GET, POST'],
      ['DELETE', '/key', 'GET, POST'],
      ['POST', '/key/foo', 'GET, PUT, DELETE'],
      ['GET', '/join', 'POST'],
      ['POST', '/members', 'GET'],
      ['GET', '/members/p1', 'DELETE'],
      ['GET', '/members/p1/promote', 'POST'],
      ['GET', '/transfer-leader', 'POST'],
      ['POST', '/status', 'GET'],
      ['DELETE', '/health', 'GET'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await env.call(env.leader, path, { method, ...(method === 'GET' ? {} : { body: '' }) });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.get('Allow')).toBe(allow);
      expect(await errorCode(r)).toBe('method_not_allowed');
    }
    for (const path of ['/status/x', '/health/deep', '/raft/append', '/_metcd/anything', '/members/p1/demote', '/join/x']) {
      const r = await env.call(env.leader, path);
      expect(r.status, path).toBe(404);
      expect(await errorCode(r)).toBe('not_found');
    }
  });

  it('a path is a key exactly when its first segment is not reserved (the key routes skip the route table)', async () => {
    const env = await setup();
    // Keys that merely look like reserved segments, an empty first segment, a trailing slash,
    // and a percent-encoded reserved word: all metcd-style keys, readable back via /key/<key>.
    const keys: Array<[string, string]> = [
      ['/keys/a', 'keys/a'],
      ['/statusx', 'statusx'],
      ['/join-me', 'join-me'],
      ['//key', '/key'],
      ['/a/', 'a/'],
      ['/%6Bey', 'key'],
      ['/_metcdx/y', '_metcdx/y'],
    ];
    for (const [path, key] of keys) {
      const put = await env.call(env.leader, path, { method: 'PUT', body: `v:${key}` });
      expect(put.status, `PUT ${path}`).toBe(204);
      const get = await env.call(env.leader, path);
      expect(await get.text(), `GET ${path}`).toBe(`v:${key}`);
      const json = await env.call(env.leader, `/key/${encodeURIComponent(key)}`);
      expect(await json.json(), `GET /key/<${key}>`).toEqual({ [key]: `v:${key}` });
      const del = await env.call(env.leader, path, { method: 'DELETE' });
      expect(del.status, `DELETE ${path}`).toBe(204);
      expect((await env.call(env.leader, path)).status, `GET ${path} after DELETE`).toBe(404);
    }
    // Reserved first segments keep their routes for every method, fast or not.
    expect((await env.call(env.leader, '/status', { method: 'PUT', body: 'x' })).status).toBe(405);
    expect((await env.call(env.leader, '/members')).status).toBe(200);
    expect((await env.call(env.leader, '/key', { method: 'DELETE' })).status).toBe(405);
    expect((await env.call(env.leader, '/raft', { method: 'PUT', body: 'x' })).status).toBe(404);
    expect((await env.call(env.leader, '/', { method: 'PUT', body: 'x' })).status).toBe(400);
  });
});

describe('api: membership, status, health', () => {
  it('join as learner, promote, transfer leadership, remove; /members and /status reflect it', async () => {
    const env = await setup();
    await env.c.open('p4');
    env.c.isolated.add('p4'); // until promoted below: it replicates nothing
    const joined = await env.call(env.leader, '/join', {
      method: 'POST',
      body: JSON.stringify({ id: 'p4', learner: true, address: addressOf('p4') }),
    });
    expect(joined.status).toBe(200);
    const joinedBody = (await joined.json()) as { members: Array<{ id: string; voter: boolean; address: string }> };
    expect(joinedBody.members).toContainEqual(expect.objectContaining({ id: 'p4', voter: false, address: addressOf('p4') }));

    const again = await env.call(env.leader, '/join', {
      method: 'POST',
      body: JSON.stringify({ id: 'p4', learner: true, address: addressOf('p4') }),
    });
    expect(again.status).toBe(409);
    expect(await errorCode(again)).toBe('member_conflict');

    // Promoting a learner that has replicated nothing is refused, saying how far behind it is.
    const early = await env.call(env.leader, '/members/p4/promote', { method: 'POST' });
    expect(early.status).toBe(409);
    const leaderLast = env.c.peer(env.leader).status().lastIndex;
    expect(((await early.json()) as { error: unknown }).error).toMatchObject({
      code: 'learner_behind',
      learnerMatch: 0,
      leaderLastIndex: leaderLast,
    });
    env.c.isolated.delete('p4');
    const leaderPeer = env.c.peer(env.leader);
    await env.c.until(() => leaderPeer.status().members.find((m) => m.id === 'p4')?.match === leaderPeer.status().lastIndex);

    const promoted = await env.call(env.leader, '/members/p4/promote', { method: 'POST' });
    expect(promoted.status).toBe(200);
    expect(((await promoted.json()) as { members: unknown[] }).members).toContainEqual(expect.objectContaining({ id: 'p4', voter: true }));

    const missing = await env.call(env.leader, '/members/p9', { method: 'DELETE' });
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe('member_not_found');

    const p4 = env.c.peer('p4');
    await env.c.until(() => p4.status().applied >= env.c.peer(env.leader).status().applied);
    const transfer = await env.call(env.leader, '/transfer-leader', { method: 'POST', body: '{"id":"p4"}' });
    expect(transfer.status).toBe(200);
    expect(await transfer.json()).toEqual({ leader: 'p4' });
    await env.c.until(() => env.c.leaderId() === 'p4', 50);

    const removed = await env.call('p4', `/members/${env.leader}`, { method: 'DELETE' });
    expect(removed.status).toBe(200);
    expect(((await removed.json()) as { members: Array<{ id: string }> }).members.map((m) => m.id)).not.toContain(env.leader);

    const members = await env.call('p4', '/members');
    expect(await members.json()).toMatchObject({
      leader: 'p4',
      members: expect.arrayContaining([expect.objectContaining({ id: 'p4', voter: true })]),
    });

    const status = (await (await env.call('p4', '/status')).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ id: 'p4', role: 'leader', leader: 'p4', term: expect.any(Number) });
    for (const field of ['commit', 'applied', 'lastIndex']) expect(status[field]).toEqual(expect.any(Number));
    const health = await env.call('p4', '/health');
    expect(health.status).toBe(200);
  });

  it('replaces a failed peer: remove it, join a fresh one as a voter, keep writing', async () => {
    const env = await setup();
    const dead = env.follower;
    env.c.crash(dead);
    await env.call(env.leader, '/before', { method: 'PUT', body: 'replace' });
    expect((await env.call(env.leader, `/members/${dead}`, { method: 'DELETE' })).status).toBe(200);
    await env.c.open('p5');
    const joined = await env.call(env.leader, '/join', { method: 'POST', body: JSON.stringify({ id: 'p5', address: addressOf('p5') }) });
    expect(joined.status).toBe(200);
    const ids = ((await joined.json()) as { members: Array<{ id: string; voter: boolean }> }).members;
    expect(
      ids
        .filter((m) => m.voter)
        .map((m) => m.id)
        .sort(),
    ).toEqual(['p1', 'p2', 'p3', 'p5'].filter((id) => id !== dead).sort());
    expect((await env.call(env.leader, '/after', { method: 'PUT', body: 'replace' })).status).toBe(204);
    const p5 = env.c.peer('p5');
    await env.c.until(() => p5.status().applied >= env.c.peer(env.leader).status().applied);
    expect(await (await env.call('p5', '/before?level=stale')).text()).toBe('replace');
    expect(await (await env.call('p5', '/after?level=stale')).text()).toBe('replace');
  });

  it('joins with the host-provided address when the body names none', async () => {
    const env = await setup();
    const c = env.c;
    await c.open('p4');
    const api = createApiRouter({
      peer: c.peer(env.leader),
      mode: 'redirect',
      leaderUrl: () => 'unused',
      memberAddress: (id) => `cluster/${id}`,
    });
    const r = await c.drive(api.fetch(new Request(`${addressOf(env.leader)}/join`, { method: 'POST', body: '{"id":"p4"}' })));
    expect(r.status).toBe(200);
    expect(c.peer(env.leader).membership().addresses['p4']).toBe('cluster/p4');
  });

  it('/health answers 503 on a follower cut off from the leader', async () => {
    const env = await setup();
    expect((await env.call(env.follower, '/health')).status).toBe(200);
    env.c.isolated.add(env.follower);
    await env.c.tick(25);
    const r = await env.call(env.follower, '/health');
    expect(r.status).toBe(503);
    expect(r.headers.get('Retry-After')).toBe('1');
  });
});

describe('api: nothing a client sends makes it answer 500', () => {
  it('survives a seeded barrage of odd methods, paths, parameters and bodies on a leader and a follower', async () => {
    const env = await setup({ mode: 'proxy' });
    const rnd = new SeededRandom(20261123);
    const pick = <T>(xs: readonly T[]): T => xs[rnd.nextInt(xs.length)]!;
    const methods = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;
    const segments = [
      '',
      'key',
      'join',
      'members',
      'status',
      'health',
      'transfer-leader',
      'raft',
      '_metcd',
      'foo',
      '%',
      '%ZZ',
      '%E2%82',
      '..',
      'a%2Fb',
      'promote',
      'p9',
      '__proto__',
      'constructor',
      '%00',
      'x'.repeat(300),
    ];
    const queries = [
      '',
      '?level=stale',
      '?level=bogus',
      '?peer=p2',
      '?limit=5',
      '?limit=-1',
      '?ifRevision=0',
      '?ifRevision=x',
      '?prefix=a',
      '?x=y',
      '?level=default&level=stale',
      '?ifKey=a&ifRevision=3',
      '?start=b&end=a',
    ];
    const bodies: Array<string | Uint8Array> = [
      '',
      '{',
      '{}',
      '{"a":"b"}',
      '{"__proto__":"x"}',
      '[1]',
      'null',
      '"str"',
      '{"a":{"b":1}}',
      '{"id":"__proto__"}',
      '{"id":"p9"}',
      new Uint8Array([0xff, 0xfe, 0x00]),
      'v'.repeat(5000),
    ];
    for (let i = 0; i < 250; i++) {
      const method = pick(methods);
      const depth = 1 + rnd.nextInt(3);
      const path = '/' + Array.from({ length: depth }, () => pick(segments)).join('/') + pick(queries);
      const init: RequestInit = { method };
      if (method !== 'GET' && method !== 'HEAD') init.body = pick(bodies);
      if (rnd.nextInt(4) === 0)
        init.headers = {
          'X-Metcd-Client': pick(['c', '', 'é', 'x'.repeat(80)]),
          'X-Metcd-Seq': pick(['1', '0', '-1', '1e3', '99999999999999999']),
        };
      await env.call(pick([env.leader, env.follower]), path, init); // call() asserts: not 500, revision header, error shape
    }
  });
});

describe('needsLeader (which requests a host may hold during an election)', () => {
  const at = (path: string, method = 'GET') => new Request(`http://metcd.test${path}`, { method });
  it('introspection and stale reads do not; writes, default and consistent reads do', () => {
    for (const path of ['/status', '/health', '/members', '/hello?level=stale', '/key/foo?level=stale']) {
      expect(needsLeader(at(path)), path).toBe(false);
    }
    for (const [path, method] of [
      ['/hello', 'GET'],
      ['/key/foo?level=consistent', 'GET'],
      ['/hello', 'PUT'],
      ['/key', 'POST'],
      ['/hello?level=stale', 'DELETE'],
      ['/join', 'POST'],
      ['/members/p2', 'DELETE'],
    ] as const) {
      expect(needsLeader(at(path, method)), `${method} ${path}`).toBe(true);
    }
  });
});

describe('api: the authorize hook', () => {
  it('is asked once per request about the route as resolved, whatever the spelling of the path', async () => {
    const asked: Array<{ route: ApiRoute; token: string | null }> = [];
    const env = await setup({
      authorize: (route, headers) => {
        asked.push({ route, token: headers.header('authorization') });
        return Grant.everything('test');
      },
    });
    const resolved = async (path: string, init: RequestInit = {}): Promise<ApiRoute> => {
      asked.length = 0;
      await env.call(env.leader, path, { ...init, headers: { Authorization: 'Bearer t' } });
      expect(asked, `authorize calls for ${init.method ?? 'GET'} ${path}`).toHaveLength(1);
      expect(asked[0]!.token).toBe('Bearer t');
      return asked[0]!.route;
    };
    const jsonKeyA = { method: 'GET', pattern: '/key/:key+', params: { key: 'a' }, need: 'read-key' };
    expect(await resolved('/key/a')).toEqual(jsonKeyA);
    expect(await resolved('/key/%61')).toEqual(jsonKeyA);
    expect(await resolved('/key/a', { method: 'HEAD' })).toEqual(jsonKeyA);
    // A doubled slash is part of the key, and so is a trailing one: the hook sees the key the
    // handler acts on, not a look-alike.
    expect(await resolved('/key//a')).toEqual({ method: 'GET', pattern: '/key/:key+', params: { key: '/a' }, need: 'read-key' });
    expect(await resolved('//key//a')).toEqual({ method: 'GET', pattern: '/:key+', params: { key: '/key//a' }, need: 'read-key' });
    expect(await resolved('/key/a/')).toEqual({ method: 'GET', pattern: '/key/:key+', params: { key: 'a/' }, need: 'read-key' });
    expect(await resolved('/%61', { method: 'PUT', body: 'v' })).toEqual({
      method: 'PUT',
      pattern: '/:key+',
      params: { key: 'a' },
      need: 'write-key',
    });
    // Member ids: a trailing slash and percent-encoding name the same member.
    const removeP9 = { method: 'DELETE', pattern: '/members/:id', params: { id: 'p9' }, need: 'cluster' };
    expect(await resolved('/members/p9', { method: 'DELETE' })).toEqual(removeP9);
    expect(await resolved('/members/%70%39/', { method: 'DELETE' })).toEqual(removeP9);
    expect(await resolved('/status/')).toEqual({ method: 'GET', pattern: '/status', params: {}, need: 'status' });
    // Refused paths and wrong methods are asked about too, before their error.
    expect(await resolved('/raft/x', { method: 'POST' })).toEqual({
      method: 'POST',
      pattern: '/raft/*',
      params: {},
      need: 'authenticated',
    });
    expect(await resolved('/status', { method: 'PUT', body: 'x' })).toEqual({
      method: 'PUT',
      pattern: '/status',
      params: {},
      need: 'authenticated',
    });
  });

  it('a refusal is the answer: the route never runs', async () => {
    const env = await setup({
      authorize: (route) =>
        route.method === 'GET'
          ? Grant.everything('test')
          : new ApiError(403, 'permission_denied', `no ${route.method} on ${route.pattern}`),
    });
    const put = await env.call(env.leader, '/key/%61', { method: 'PUT', body: 'v' });
    expect(put.status).toBe(403);
    expect(await put.json()).toEqual({ error: { code: 'permission_denied', message: 'no PUT on /key/:key+' } });
    const removed = await env.call(env.leader, `/members/${env.follower}`, { method: 'DELETE' });
    expect(removed.status).toBe(403);
    await env.c.tick(3);
    expect((await env.call(env.leader, '/a')).status).toBe(404); // not written
    expect(env.c.peer(env.leader).membership().voters).toContain(env.follower); // not removed
  });
});

describe('api: a removed member', () => {
  it('answers 410 removed, naming the cluster, to everything but introspection — a write is not redirected', async () => {
    const env = await setup();
    const removedRes = await env.call(env.leader, `/members/${env.follower}`, { method: 'DELETE' });
    expect(removedRes.status).toBe(200);
    const gone = env.c.peer(env.follower);
    await env.c.until(() => gone.removed() !== null, 200, 'the removed peer learning it');
    for (const [path, init] of [
      ['/k', { method: 'PUT', body: 'v' }],
      ['/k?level=stale', {}],
      ['/key/k', {}],
      ['/join', { method: 'POST', body: '{"id":"p9","address":"http://p9.test"}' }],
    ] as const) {
      const res = await env.call(env.follower, path, init);
      expect(res.status, `${init.method ?? 'GET'} ${path}`).toBe(410);
      expect(((await res.json()) as { error: unknown }).error).toEqual({
        code: 'removed',
        message: `${env.follower} was removed from the cluster; it serves nothing (send requests to a member)`,
      });
    }
    const status = await env.call(env.follower, '/status');
    expect(status.status).toBe(200);
    expect(((await status.json()) as { removed: string | null }).removed).toContain('was removed');
    expect((await env.call(env.follower, '/health')).status).toBe(503);
  });
});

describe('api: key history', () => {
  it('reads a key and a range as of a revision, compacts on request, and answers 410 compacted below it', async () => {
    const env = await setup();
    for (const v of ['one', 'two', 'three']) expect((await env.call(env.leader, '/h', { method: 'PUT', body: v })).status).toBe(204);
    expect((await env.call(env.leader, '/h', { method: 'DELETE' })).status).toBe(204); // revision 4
    const at = async (revision: number, path = '/h') => env.call(env.leader, `${path}?revision=${revision}`);
    expect(await (await at(1)).text()).toBe('one');
    const second = await at(2);
    expect(await second.text()).toBe('two');
    expect(second.headers.get('X-Metcd-Mod-Revision')).toBe('2');
    expect(second.headers.get('X-Metcd-Version')).toBe('2');
    expect((await at(4)).status).toBe(404);
    expect(await (await at(3, '/key/h')).json()).toEqual({ h: 'three' });
    expect(await (await env.call(env.leader, '/key?prefix=h&revision=1')).json()).toEqual({ h: 'one' });
    const future = await at(9);
    expect(future.status).toBe(400);
    expect((await env.call(env.leader, '/compact', { method: 'POST', body: '{"revision":3}' })).status).toBe(200);
    const gone = await at(2);
    expect(gone.status).toBe(410);
    expect(await gone.json()).toEqual({
      error: { code: 'compacted', compactRevision: 3, message: 'revision 2 has been compacted; the oldest readable revision is 3' },
    });
    expect(await (await at(3)).text()).toBe('three');
    expect((await env.call(env.leader, '/compact', { method: 'POST', body: '{"revision":3}' })).status).toBe(410);
    expect((await env.call(env.leader, '/compact', { method: 'POST', body: '{"revision":99}' })).status).toBe(400);
    expect((await env.call(env.leader, '/compact', { method: 'POST', body: '{"revision":"3"}' })).status).toBe(400);
    expect((await env.call(env.leader, '/h?revision=0')).status).toBe(400);
    const status = (await (await env.call(env.leader, '/status')).json()) as { compactRevision: number };
    expect(status.compactRevision).toBe(3);
  });
});

describe('api: transactions', () => {
  it('runs etcd-shaped transactions over JSON, once under the session headers, and answers bad ones 400', async () => {
    const env = await setup();
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      env.call(env.leader, '/txn', { method: 'POST', body: JSON.stringify(body), headers });
    const lock = {
      compare: [{ key: 'lock', target: 'createRevision', result: '==', value: 0 }],
      success: [{ put: { key: 'lock', value: 'me' } }, { get: { key: 'lock' } }],
      failure: [{ get: { key: 'lock' } }],
    };
    const first = await post(lock, { 'X-Metcd-Client': 't1', 'X-Metcd-Seq': '1' });
    expect(first.status).toBe(200);
    const answer = await first.json();
    expect(answer).toEqual({
      succeeded: true,
      revision: 1,
      results: [
        { put: { revision: 1 } },
        { get: { kvs: [{ key: 'lock', value: 'me', createRevision: 1, modRevision: 1, version: 1 }], more: false } },
      ],
    });
    // A retry under the same stamp answers the same, and writes nothing again.
    expect(await (await post(lock, { 'X-Metcd-Client': 't1', 'X-Metcd-Seq': '1' })).json()).toEqual(answer);
    const second = (await (await post(lock)).json()) as { succeeded: boolean; revision: number };
    expect(second).toMatchObject({ succeeded: false, revision: 1 });
    // A follower sends it to the leader.
    const redirected = await env.call(env.follower, '/txn', { method: 'POST', body: JSON.stringify(lock) });
    expect(redirected.status).toBe(307);
    for (const bad of [
      'not json',
      '[]',
      '{"compare":"x"}',
      '{"success":[{"put":{"key":"a"}}]}',
      '{"success":[{"put":{"key":"a","value":"1"}},{"delete":{"key":"a"}}]}',
      '{"compare":[{"key":"a","target":"nope","result":"==","value":1}]}',
      '{"other":[]}',
    ]) {
      const res = await env.call(env.leader, '/txn', { method: 'POST', body: bad });
      expect(res.status, bad).toBe(400);
    }
    expect((await env.call(env.leader, '/txn')).status).toBe(405);
  });
});
