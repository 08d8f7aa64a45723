// Access control in the shared router, against an in-process 3-peer cluster: every route × every
// spelling of its path × every kind of credential, judged by an oracle written here from the
// README's rules (not from the route table); then tokens created, used, expired and revoked on
// every peer, ranges, multi-key writes, compares, the locked and open modes.

import { afterEach, describe, expect, it } from 'vitest';
import { createAuthorizer, digestOf } from '../../worker/api/router.ts';
import { routersFor } from './routers.ts';
import type { AuthSettings } from '../../worker/api/router.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import { DEFAULT_KV_LIMITS } from '../../worker/kv/types.ts';

const ROOT = 'root-token-for-tests-0123456789';
const CLUSTER = 'cluster-token-for-tests-012345';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

interface Env {
  c: TestCluster;
  leader: NodeId;
  followers: NodeId[];
  /** A request to a peer's router (redirects are answered, not followed). */
  call(id: NodeId, path: string, init?: RequestInit & { token?: string }): Promise<Response>;
  /** Moves the authorizer's clock (token expiry). */
  advance(ms: number): void;
}

async function setup(settings: Partial<AuthSettings> = {}, clusterOptions: Parameters<typeof TestCluster.start>[0] = {}): Promise<Env> {
  const c = await TestCluster.start(clusterOptions);
  cluster = c;
  // The authorizer's clock runs ahead of the one tokens are stamped with by `advance`.
  let ahead = 0;
  const now = () => Date.now() + ahead;
  const router = routersFor(c, (id) => ({
    now,
    authorize: createAuthorizer(
      { mode: 'tokens', rootDigest: digestOf(ROOT), clusterDigest: digestOf(CLUSTER), now, ...settings },
      () => c.peer(id).tokens,
    ),
  }));
  const call: Env['call'] = async (id, path, init = {}) => {
    const { token, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== undefined) headers.set('Authorization', `Bearer ${token}`);
    const res = await c.drive(router(id).fetch(new Request(`${addressOf(id)}${path}`, { ...rest, headers })));
    expect(res.status, `${init.method ?? 'GET'} ${path}`).not.toBe(500);
    return res;
  };
  const leader = (await c.waitLeader()).id;
  return { c, leader, followers: c.followers(), call, advance: (ms) => (ahead += ms) };
}

interface MadeToken {
  id: string;
  token: string;
}

async function makeToken(env: Env, spec: Record<string, unknown>): Promise<MadeToken> {
  const res = await env.call(env.leader, '/auth/tokens', { method: 'POST', token: ROOT, body: JSON.stringify(spec) });
  expect(res.status, await res.clone().text()).toBe(201);
  expect(res.headers.get('Cache-Control')).toBe('no-store');
  return (await res.json()) as MadeToken;
}

async function code(res: Response): Promise<string> {
  return ((await res.clone().json()) as { error: { code: string } }).error.code;
}

// ---- the oracle ------------------------------------------------------------------------------

type Credential = 'none' | 'malformed' | 'wrong' | 'root' | 'cluster' | 'admin' | 'status' | 'reader' | 'writer' | 'revoked' | 'expired';
/** What a request acts on, as the README describes the routes. */
type Act =
  | { kind: 'health' }
  | { kind: 'none' } // an answer that touches nothing (404 on a reserved path, 405, an empty key)
  | { kind: 'read'; key: string }
  | { kind: 'write'; key: string }
  | { kind: 'range'; prefix: string }
  | { kind: 'status' }
  /** Leases: granting and keeping alive need only a credential the cluster knows (etcd's rule). */
  | { kind: 'lease' }
  | { kind: 'admin' }
  | { kind: 'cluster' };

/** 'ok' (the route ran: any answer but 401/403), 401 or 403. */
function expected(cred: Credential, act: Act): 'ok' | 401 | 403 {
  if (act.kind === 'health') return 'ok';
  if (['none', 'malformed', 'wrong', 'revoked', 'expired'].includes(cred)) return 401;
  if (cred === 'root' || act.kind === 'none' || act.kind === 'lease') return 'ok';
  const underApp = (key: string) => key.startsWith('app/');
  switch (act.kind) {
    case 'read':
      return cred === 'reader' && underApp(act.key) ? 'ok' : 403;
    case 'write':
      return cred === 'writer' && underApp(act.key) ? 'ok' : 403;
    case 'range':
      return cred === 'reader' && underApp(act.prefix) ? 'ok' : 403;
    case 'status':
      return cred === 'status' || cred === 'admin' || cred === 'cluster' ? 'ok' : 403;
    case 'admin':
      return cred === 'admin' ? 'ok' : 403;
    case 'cluster':
      return cred === 'admin' || cred === 'cluster' ? 'ok' : 403;
  }
}

/** A request and what it acts on. Destructive routes name things that do not exist, so a run
 *  that is allowed answers 4xx from the handler and the cluster stays as it is. */
interface Case {
  method: string;
  path: string;
  body?: string;
  act: Act;
}

/** Spellings the router resolves to the same route (not for key routes, where a slash is part
 *  of the key): trailing slash, doubled slash, dot segments. */
function sameRoute(path: string): string[] {
  return [path, `${path}/`, `${path}//`, `${path}/.`, `/x/..${path}`, `/x/../${path.slice(1)}/`, `/.${path}`];
}

/** Leases the matrix reads (ids as strings): one holding app/leased, one holding other-leased. */
interface MatrixLeases {
  app: string;
  other: string;
}

function cases(leases: MatrixLeases = { app: '999999', other: '999998' }): Case[] {
  const out: Case[] = [];
  const fixed = (method: string, path: string, act: Act, body?: string) => {
    for (const p of sameRoute(path)) out.push({ method, path: p, act, ...(body === undefined ? {} : { body }) });
  };
  fixed('GET', '/health', { kind: 'health' });
  fixed('GET', '/ui', { kind: 'health' }); // the dashboard's files: open (ui-route.ts)
  fixed('POST', '/ui', { kind: 'none' }, 'x');
  fixed('GET', '/status', { kind: 'status' });
  fixed('GET', '/members', { kind: 'status' });
  fixed('GET', '/metrics', { kind: 'status' });
  fixed('POST', '/metrics', { kind: 'none' }, 'x');
  fixed('POST', '/join', { kind: 'cluster' }, '{"id":"bad id!"}');
  fixed('POST', '/transfer-leader', { kind: 'cluster' }, '{"id":"p9"}');
  fixed('DELETE', '/members/p9', { kind: 'cluster' });
  fixed('POST', '/members/p9/promote', { kind: 'cluster' });
  fixed('POST', '/auth/tokens', { kind: 'admin' }, '{"name":"x","rules":"not a list"}');
  fixed('GET', '/auth/tokens', { kind: 'admin' });
  fixed('POST', '/compact', { kind: 'admin' }, '{"revision":"not a number"}');
  fixed('GET', '/snapshot', { kind: 'admin' });
  fixed('POST', '/snapshot', { kind: 'none' }, 'x');
  fixed('PUT', '/snapshot', { kind: 'admin' }, 'not a backup');
  fixed('POST', '/txn', { kind: 'write', key: 'app/t' }, '{"success":[{"put":{"key":"app/t","value":"1"}}]}');
  fixed('POST', '/txn', { kind: 'read', key: 'app/t' }, '{"compare":[{"key":"app/t","target":"version","result":">","value":0}]}');
  fixed('POST', '/txn', { kind: 'range', prefix: 'app/' }, '{"success":[{"get":{"prefix":"app/"}}]}');
  fixed('DELETE', '/auth/tokens/0000000000000000', { kind: 'admin' });
  fixed('PUT', '/status', { kind: 'none' }, 'x');
  fixed('GET', '/raft/messages', { kind: 'none' });
  fixed('GET', '/key', { kind: 'range', prefix: '' });
  // Leases: grant (bad ttl) and keep alive (unknown id) need a known caller; reading a lease
  // needs read on its keys, revoking (an unknown id: 404 once allowed) a known caller.
  fixed('POST', '/lease', { kind: 'lease' }, '{"ttl":"ten"}');
  fixed('POST', '/lease/999999/keepalive', { kind: 'lease' });
  fixed('DELETE', '/lease/999999', { kind: 'lease' });
  fixed('GET', '/lease/999999', { kind: 'lease' });
  fixed('GET', '/lease', { kind: 'lease' }); // the list: ids and TTLs, no keys
  fixed('GET', `/lease/${leases.app}`, { kind: 'read', key: 'app/leased' });
  fixed('GET', `/lease/${leases.other}`, { kind: 'read', key: 'other-leased' });
  fixed('PATCH', '/lease', { kind: 'none' });
  out.push({ method: 'PUT', path: '/app/l?lease=999999', body: 'v', act: { kind: 'write', key: 'app/l' } });
  out.push({ method: 'PUT', path: '/other?lease=999999', body: 'v', act: { kind: 'write', key: 'other' } });
  out.push({ method: 'PUT', path: '/other?ttl=0', body: 'v', act: { kind: 'write', key: 'other' } });
  out.push({ method: 'POST', path: '/key?lease=999999', body: '{"app/x":"1"}', act: { kind: 'write', key: 'app/x' } });
  // Keys: a path's slashes and encodings are part of the key, judged as the key they decode to.
  for (const [path, key] of [
    ['/app/a', 'app/a'],
    ['/%61pp/a', 'app/a'],
    ['/app%2Fa', 'app/a'],
    ['/app/a/', 'app/a/'],
    ['/app//a', 'app//a'],
    ['/other', 'other'],
    ['/x/../other', 'other'],
    ['/%6Aoin', 'join'], // a reserved name percent-encoded is a key, not the route
    ['/JOIN', 'JOIN'], // paths are case-sensitive: a key
    ['/Status', 'Status'],
    ['/key/app/k', 'app/k'],
    ['/key/%61pp/k', 'app/k'],
    ['/key//app/k', '/app/k'],
    ['/key/other', 'other'],
  ] as const) {
    out.push({ method: 'GET', path, act: { kind: 'read', key } });
    out.push({ method: 'HEAD', path, act: { kind: 'read', key } });
    out.push({ method: 'PUT', path, body: 'v', act: { kind: 'write', key } });
    out.push({ method: 'DELETE', path, act: { kind: 'write', key } });
  }
  out.push({ method: 'POST', path: '/key', body: '{"app/x":"1"}', act: { kind: 'write', key: 'app/x' } });
  out.push({ method: 'POST', path: '/key/', body: '{"other":"1"}', act: { kind: 'write', key: 'other' } });
  out.push({ method: 'GET', path: '/key?prefix=app/', act: { kind: 'range', prefix: 'app/' } });
  out.push({ method: 'GET', path: '/key/?prefix=app%2F', act: { kind: 'range', prefix: 'app/' } });
  out.push({ method: 'GET', path: '/key?prefix=ap', act: { kind: 'range', prefix: 'ap' } });
  // Locks and elections: their prefixes lock/<name>/ and election/<name>/.
  out.push({ method: 'POST', path: '/lock/x?wait=10ms&ttl=5', act: { kind: 'write', key: 'lock/x/' } });
  out.push({ method: 'DELETE', path: '/lock/x/1f', act: { kind: 'write', key: 'lock/x/1f' } });
  out.push({ method: 'GET', path: '/election/e', act: { kind: 'range', prefix: 'election/e/' } });
  out.push({ method: 'GET', path: '/election/e/', act: { kind: 'range', prefix: 'election/e/' } });
  out.push({ method: 'POST', path: '/election/e/resign', body: '{"key":"election/e/1f"}', act: { kind: 'write', key: 'election/e/1f' } });
  // Watches: read on the key, or on the whole prefix or range (an allowed one streams: cancelled below).
  out.push({ method: 'GET', path: '/watch/app/a', act: { kind: 'read', key: 'app/a' } });
  out.push({ method: 'GET', path: '/watch/%61pp/a', act: { kind: 'read', key: 'app/a' } });
  out.push({ method: 'GET', path: '/watch/other', act: { kind: 'read', key: 'other' } });
  out.push({ method: 'GET', path: '/watch/app/?prefix=1', act: { kind: 'range', prefix: 'app/' } });
  out.push({ method: 'GET', path: '/watch/ap?prefix=1', act: { kind: 'range', prefix: 'ap' } });
  out.push({ method: 'GET', path: '/watch?prefix=app/', act: { kind: 'range', prefix: 'app/' } });
  out.push({ method: 'GET', path: '/watch?start=app/&end=app0', act: { kind: 'range', prefix: 'app/' } });
  out.push({ method: 'GET', path: '/watch?start=a&end=b', act: { kind: 'range', prefix: '' } });
  out.push({ method: 'PUT', path: '/watch/app/a', body: 'v', act: { kind: 'none' } });
  return out;
}

describe('access control: every route × spelling × credential', () => {
  it('answers 401 without a valid credential, 403 without the right, and runs the route otherwise', async () => {
    const env = await setup();
    const secrets: Partial<Record<Credential, string>> = {
      malformed: 'has spaces in it',
      wrong: 'not-a-token',
      root: ROOT,
      cluster: CLUSTER,
    };
    secrets.admin = (await makeToken(env, { name: 'admin', admin: true })).token;
    secrets.status = (await makeToken(env, { name: 'watcher', status: true })).token;
    secrets.reader = (await makeToken(env, { name: 'app-reader', rules: [{ prefix: 'app/', access: 'read' }] })).token;
    secrets.writer = (await makeToken(env, { name: 'app-writer', rules: [{ prefix: 'app/', access: 'write' }] })).token;
    const revoked = await makeToken(env, { name: 'gone', rules: [{ prefix: '', access: 'readwrite' }], admin: true });
    secrets.revoked = revoked.token;
    expect((await env.call(env.leader, `/auth/tokens/${revoked.id}`, { method: 'DELETE', token: ROOT })).status).toBe(200);
    secrets.expired = (await makeToken(env, { name: 'brief', rules: [{ prefix: '', access: 'readwrite' }], admin: true, ttl: 60 })).token;
    env.advance(61_000);
    const voters = [...env.c.peer(env.leader).membership().voters].sort();
    const leased = async (key: string): Promise<string> => {
      const res = await env.call(env.leader, `/${key}?ttl=3600`, { method: 'PUT', body: 'v', token: ROOT });
      expect(res.status).toBe(204);
      return res.headers.get('X-Metcd-Lease')!;
    };
    const leases: MatrixLeases = { app: await leased('app/leased'), other: await leased('other-leased') };

    let checked = 0;
    for (const cred of Object.keys(secrets).concat('none') as Credential[]) {
      for (const k of cases(leases)) {
        const init: RequestInit & { token?: string } = { method: k.method };
        if (k.body !== undefined) init.body = k.body;
        const secret = secrets[cred];
        if (secret !== undefined) init.headers = { Authorization: `Bearer ${secret}` };
        const res = await env.call(env.leader, k.path, init);
        const want = expected(cred, k.act);
        const streaming = (res.headers.get('Content-Type') ?? '').startsWith('text/event-stream');
        if (streaming) await res.body?.cancel(); // a watch that was allowed: its events are not the point here
        const what = `${cred}: ${k.method} ${k.path} (${JSON.stringify(k.act)}) → ${res.status} ${k.method === 'HEAD' || streaming ? '' : await res.clone().text()}`;
        if (want === 'ok') expect([401, 403], what).not.toContain(res.status);
        else {
          expect(res.status, what).toBe(want);
          if (k.method !== 'HEAD') expect(await code(res), what).toBe(want === 401 ? 'unauthenticated' : 'permission_denied');
          if (want === 401) expect(res.headers.get('WWW-Authenticate'), what).toMatch(/^Bearer realm="metcd"/);
          // Nothing about the cluster for a caller it does not know.
          if (want === 401) expect(res.headers.get('X-Metcd-Leader') ?? res.headers.get('X-Metcd-Revision'), what).toBeNull();
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
    // Whoever ran what, nothing named by the destructive cases changed the cluster.
    expect([...env.c.peer(env.leader).membership().voters].sort()).toEqual(voters);
    expect(env.c.leaderId()).toBe(env.leader);
  });
});

describe('access control: tokens', () => {
  it('are created by root, shown once, listed without their secret, and enforced by their rules', async () => {
    const env = await setup();
    const reader = await makeToken(env, { name: 'app-reader', rules: [{ prefix: 'app/', access: 'read' }] });
    expect(reader.token).toMatch(/^metcd_[A-Za-z0-9_-]{43}$/);
    expect(reader.id).toMatch(/^[0-9a-f]{16}$/);
    const list = await env.call(env.leader, '/auth/tokens', { token: ROOT });
    const text = await list.text();
    expect(text).not.toContain(reader.token);
    expect(JSON.parse(text)).toEqual({
      tokens: [
        {
          id: reader.id,
          name: 'app-reader',
          rules: [{ prefix: 'app/', access: 'read' }],
          admin: false,
          status: false,
          createdAt: expect.any(String),
          expiresAt: null,
          expired: false,
        },
      ],
    });
    expect((await env.call(env.leader, '/app/x', { method: 'PUT', body: 'v', token: ROOT })).status).toBe(204);
    const got = await env.call(env.leader, '/app/x', { token: reader.token });
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('v');
    const denied = await env.call(env.leader, '/app/x', { method: 'PUT', body: 'w', token: reader.token });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({
      error: { code: 'permission_denied', message: `token app-reader (${reader.id}) lacks the right: write on key "app/x"` },
    });
  });

  it('revoked on the leader, stop working on every peer as each applies the revocation', async () => {
    const env = await setup();
    const t = await makeToken(env, { name: 'everywhere', rules: [{ prefix: '', access: 'readwrite' }] });
    await env.c.tick(5);
    for (const id of [env.leader, ...env.followers]) {
      expect((await env.call(id, '/k?level=stale', { token: t.token })).status, id).toBe(404); // allowed: no such key
    }
    expect((await env.call(env.leader, `/auth/tokens/${t.id}`, { method: 'DELETE', token: ROOT })).status).toBe(200);
    await env.c.until(() => [env.leader, ...env.followers].every((id) => env.c.peer(id).tokens.get(t.id) === undefined));
    for (const id of [env.leader, ...env.followers]) {
      const res = await env.call(id, '/k?level=stale', { token: t.token });
      expect(res.status, id).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'unauthenticated', message: 'unknown or revoked token' } });
    }
    const again = await env.call(env.leader, `/auth/tokens/${t.id}`, { method: 'DELETE', token: ROOT });
    expect(again.status).toBe(404);
  });

  it('expire by the clock of the peer that checks them', async () => {
    const env = await setup();
    const t = await makeToken(env, { name: 'brief', rules: [{ prefix: '', access: 'read' }], ttl: 10 });
    expect((await env.call(env.leader, '/k', { token: t.token })).status).toBe(404);
    env.advance(10_000);
    const res = await env.call(env.leader, '/k', { token: t.token });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('has expired');
    const listed = (await (await env.call(env.leader, '/auth/tokens', { token: ROOT })).json()) as { tokens: Array<{ expired: boolean }> };
    expect(listed.tokens.map((x) => x.expired)).toEqual([true]);
  });

  it('answer a range only when the whole range is readable, and a multi-key write only when every key is writable', async () => {
    const env = await setup();
    const t = await makeToken(env, {
      name: 'two-prefixes',
      rules: [
        { prefix: 'a/', access: 'readwrite' },
        { prefix: 'b/', access: 'read' },
      ],
    });
    for (const [query, status] of [
      ['prefix=a/', 200],
      ['prefix=a/x', 200],
      ['prefix=b/', 200],
      ['prefix=a', 403], // would include "ab"
      ['', 403],
      ['start=a/&end=a0', 200], // "a0" is the first key after every "a/…"
      ['start=a/&end=b/z', 403], // the gap between "a0" and "b/"
      ['start=a/x&end=a/y', 200],
      ['prefix=c/', 403],
    ] as const) {
      const res = await env.call(env.leader, `/key?${query}`, { token: t.token });
      expect(res.status, query).toBe(status);
    }
    const mixed = await env.call(env.leader, '/key', { method: 'POST', body: '{"a/1":"x","b/1":"y"}', token: t.token });
    expect(mixed.status).toBe(403);
    expect(await mixed.text()).toContain('write on key \\"b/1\\"');
    expect((await env.call(env.leader, '/key/a/1', { token: ROOT })).status).toBe(404); // nothing written
    expect((await env.call(env.leader, '/key', { method: 'POST', body: '{"a/1":"x","a/2":"y"}', token: t.token })).status).toBe(200);
    // A compare answers the compared key's revision: it needs read on that key.
    const writer = await makeToken(env, { name: 'blind', rules: [{ prefix: 'a/', access: 'write' }] });
    expect((await env.call(env.leader, '/a/1?ifRevision=1', { method: 'PUT', body: 'z', token: writer.token })).status).toBe(403);
    expect((await env.call(env.leader, '/a/1', { method: 'PUT', body: 'z', token: writer.token })).status).toBe(204);
  });

  it('leases: any known caller grants and keeps alive; revoking needs write on every key the lease holds, reading needs read', async () => {
    const env = await setup();
    const writer = await makeToken(env, { name: 'w', rules: [{ prefix: 'app/', access: 'write' }] });
    const grant = await env.call(env.leader, '/lease', { method: 'POST', body: '{"ttl":3600}', token: writer.token });
    expect(grant.status).toBe(200);
    const { id } = (await grant.json()) as { id: string };
    expect((await env.call(env.leader, `/lease/${id}/keepalive`, { method: 'POST', token: writer.token })).status).toBe(200);
    expect((await env.call(env.leader, `/app/a?lease=${id}`, { method: 'PUT', body: 'v', token: writer.token })).status).toBe(204);
    expect((await env.call(env.leader, `/other?lease=${id}`, { method: 'PUT', body: 'v', token: writer.token })).status).toBe(403);
    expect((await env.call(env.leader, `/lease/${id}`, { token: writer.token })).status).toBe(403); // no read on app/a
    // Root attaches a key the writer may not write: the writer may no longer revoke the lease.
    expect((await env.call(env.leader, `/other?lease=${id}`, { method: 'PUT', body: 'v', token: ROOT })).status).toBe(204);
    const denied = await env.call(env.leader, `/lease/${id}`, { method: 'DELETE', token: writer.token });
    expect(denied.status).toBe(403);
    expect(await denied.text()).toContain('other');
    expect((await env.call(env.leader, '/other', { method: 'DELETE', token: ROOT })).status).toBe(204);
    const revoked = await env.call(env.leader, `/lease/${id}`, { method: 'DELETE', token: writer.token });
    expect(await revoked.json()).toMatchObject({ deleted: 1 });
    expect((await env.call(env.leader, '/app/a', { token: ROOT })).status).toBe(404);
  });

  it('leases count against the granting token: past its quota it is refused, other tokens and root are not', async () => {
    const env = await setup({}, { kvLimits: { ...DEFAULT_KV_LIMITS, leasesPerOwnerMax: 2 } });
    const a = await makeToken(env, { name: 'a', rules: [{ prefix: '', access: 'readwrite' }] });
    const b = await makeToken(env, { name: 'b', rules: [] });
    const grant = (token: string) => env.call(env.leader, '/lease', { method: 'POST', body: '{"ttl":60}', token });
    const first = (await (await grant(a.token)).json()) as { id: string };
    expect((await grant(a.token)).status).toBe(200);
    const refused = await grant(a.token);
    expect([refused.status, await code(refused)]).toEqual([400, 'bad_request']);
    expect(await refused.text()).toContain(`token ${a.id} holds 2 leases`);
    // Every way a token takes a lease counts: a key's ?ttl= and a lock.
    expect((await env.call(env.leader, '/k/x?ttl=5', { method: 'PUT', body: 'v', token: a.token })).status).toBe(400);
    expect((await env.call(env.leader, '/lock/jobs?ttl=30', { method: 'POST', token: a.token })).status).toBe(400);
    expect((await grant(b.token)).status).toBe(200);
    expect((await grant(ROOT)).status).toBe(200);
    // A revoke gives the place back.
    expect((await env.call(env.leader, `/lease/${first.id}`, { method: 'DELETE', token: a.token })).status).toBe(200);
    expect((await grant(a.token)).status).toBe(200);
  });

  it('cannot reach metcd’s own keys, whatever a token may write', async () => {
    const env = await setup();
    await makeToken(env, { name: 'someone', rules: [] });
    for (const path of ['/%01auth/token/0000000000000000', '/key/%01auth', '/%01']) {
      const res = await env.call(env.leader, path, { method: 'PUT', body: '{}', token: ROOT });
      expect(res.status, path).toBe(400);
    }
    const all = await env.call(env.leader, '/key', { token: ROOT });
    expect(await all.text()).toBe('{}');
    const bad = await env.call(env.leader, '/auth/tokens', {
      method: 'POST',
      token: ROOT,
      body: '{"name":"x","rules":[{"prefix":"\\u0001auth/","access":"readwrite"}]}',
    });
    expect(bad.status).toBe(400);
  });

  it('refuses bad token requests with a clear 400', async () => {
    const env = await setup();
    for (const body of [
      '{}',
      '{"name":""}',
      '{"name":"x","rules":[{"prefix":"a","access":"all"}]}',
      '{"name":"x","rules":[{"prefix":"a"}]}',
      '{"name":"x","rules":[{"prefix":"a","access":"read","extra":1}]}',
      '{"name":"x","admin":"yes"}',
      '{"name":"x","ttl":0}',
      '{"name":"x","ttl":1.5}',
      '{"name":"x","owner":"me"}',
      `{"name":"x","rules":[${Array.from({ length: 65 }, () => '{"prefix":"a","access":"read"}').join(',')}]}`,
    ]) {
      const res = await env.call(env.leader, '/auth/tokens', { method: 'POST', token: ROOT, body });
      expect(res.status, body).toBe(400);
      expect(await code(res), body).toBe('bad_request');
    }
    expect((await env.call(env.leader, '/auth/tokens/NOT-AN-ID', { method: 'DELETE', token: ROOT })).status).toBe(400);
  });

  it('are bounded in number (tokensMax): one more is refused with a 400 naming the limit', async () => {
    const env = await setup({}, { kvLimits: { ...DEFAULT_KV_LIMITS, tokensMax: 2 } });
    const first = await makeToken(env, { name: 'one' });
    await makeToken(env, { name: 'two' });
    const third = await env.call(env.leader, '/auth/tokens', { method: 'POST', token: ROOT, body: '{"name":"three"}' });
    expect(third.status).toBe(400);
    expect(await third.text()).toContain('its limit; revoke one first');
    expect((await env.call(env.leader, `/auth/tokens/${first.id}`, { method: 'DELETE', token: ROOT })).status).toBe(200);
    await makeToken(env, { name: 'three' });
  });
});

describe('access control: modes', () => {
  it('locked (no root token): nothing but /health, and the answer says how to set one', async () => {
    const env = await setup({ mode: 'locked', lockedHint: 'set METCD_ROOT_TOKEN', rootDigest: undefined });
    for (const path of ['/hello', '/status', '/members', '/auth/tokens']) {
      const res = await env.call(env.leader, path, { token: ROOT });
      expect(res.status, path).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'unauthenticated', message: 'set METCD_ROOT_TOKEN' } });
    }
    const health = await env.call(env.leader, '/health');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    expect(health.headers.get('X-Metcd-Leader')).toBeNull();
  });

  it('open: anyone may do anything but change membership or leadership without the cluster token', async () => {
    const env = await setup({ mode: 'open', rootDigest: undefined });
    expect((await env.call(env.leader, '/hello', { method: 'PUT', body: 'world' })).status).toBe(204);
    expect((await env.call(env.leader, '/status')).status).toBe(200);
    const change = await env.call(env.leader, '/transfer-leader/', { method: 'POST', body: `{"id":"${env.followers[0]}"}` });
    expect(change.status).toBe(401);
    const withToken = await env.call(env.leader, '/members/p9', { method: 'DELETE', token: CLUSTER });
    expect(withToken.status).toBe(404); // allowed; there is no p9
  });

  it('/health tells an anonymous caller only whether the peer is healthy', async () => {
    const env = await setup();
    const follower = env.followers[0]!;
    env.c.isolated.add(follower);
    await env.c.tick(40);
    const anonymous = await env.call(follower, '/health');
    expect(anonymous.status).toBe(503);
    expect(await anonymous.json()).toEqual({ error: { code: 'unavailable', message: 'not healthy' } });
    expect(anonymous.headers.get('X-Metcd-Revision')).toBeNull();
    const operator = await env.call(follower, '/health', { token: ROOT });
    expect(await operator.text()).not.toContain('not healthy');
    expect(operator.headers.get('X-Metcd-Revision')).toMatch(/^\d+$/);
  });
});
