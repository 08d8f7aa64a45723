// The edge runtime as a client meets it: a 3-peer cluster of Durable Objects behind the Worker,
// in real workerd. The README's curl flows, redirects to the leader, read levels, idempotent
// retries, bad input on every route, and the peers' Raft endpoints out of the public's reach.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessages } from '../../worker/raft/codec.ts';
import { startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

let c: EdgeCluster;
let leader: string;
let follower: string;

beforeAll(async () => {
  c = await startCluster();
  // No setup call: the first request bootstraps the default cluster.
  const first = await c.follow('/hello', { method: 'PUT', body: 'world' });
  expect(first.status).toBe(204);
  leader = await c.leader();
  follower = ['p1', 'p2', 'p3'].find((id) => id !== leader)!;
});

afterAll(async () => {
  await c?.close();
});

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  expect(res.headers.get('Content-Type')).toMatch(/application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(typeof body.error.code).toBe('string');
  expect(typeof body.error.message).toBe('string');
  return body.error;
}

describe('quick-start flows', () => {
  it('metcd style: PUT /hello -d world, then GET /hello prints world', async () => {
    const put = await c.follow('/hello', { method: 'PUT', body: 'world' });
    expect(put.status).toBe(204);
    const get = await c.follow('/hello');
    expect(get.status).toBe(200);
    expect(await get.text()).toBe('world');
    expect(Number(get.headers.get('X-Metcd-Revision'))).toBeGreaterThan(0);
    const del = await c.follow('/hello', { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await c.follow('/hello')).status).toBe(404);
  });

  it('hraftd style: POST /key, GET /key/foo at every level, DELETE /key/foo', async () => {
    const post = await c.follow('/key', { method: 'POST', body: '{"foo": "bar"}' });
    expect(post.status).toBe(200);
    const { revision } = (await post.json()) as { revision: number };
    expect(revision).toBeGreaterThan(0);
    for (const level of ['default', 'consistent', 'stale']) {
      // A stale read may be served by a follower that has not applied the write yet.
      await waitFor(`foo=bar at level ${level}`, async () => {
        const get = await c.follow(`/key/foo?level=${level}`);
        return get.status === 200 && (await get.text()) === '{"foo":"bar"}';
      });
    }
    const del = await c.follow('/key/foo', { method: 'DELETE' });
    expect(del.status).toBe(200);
    const gone = await c.follow('/key/foo?level=consistent');
    expect(gone.status).toBe(404);
    expect((await errorOf(gone)).code).toBe('key_not_found');
  });

  it('POST /key writes several pairs in one revision', async () => {
    const post = await c.follow('/key', { method: 'POST', body: '{"a":"1","b":"2"}' });
    const { revision } = (await post.json()) as { revision: number };
    for (const key of ['a', 'b']) {
      const get = await c.follow(`/key/${key}`);
      expect(get.headers.get('X-Metcd-Mod-Revision')).toBe(String(revision));
    }
  });
});

describe('redirects to the leader (redirect mode)', () => {
  it('a write on a follower answers 307 naming the leader; following it writes', async () => {
    const res = await c.request(`/redirected?peer=${follower}`, { method: 'PUT', body: 'v' });
    expect(res.status).toBe(307);
    expect(res.headers.get('X-Metcd-Leader')).toBe(leader);
    const location = new URL(res.headers.get('Location')!);
    expect(location.pathname).toBe('/redirected');
    expect(location.searchParams.get('peer')).toBe(leader);
    expect((await errorOf(res)).code).toBe('not_leader');
    const followed = await c.request(location.pathname + location.search, { method: 'PUT', body: 'v' });
    expect(followed.status).toBe(204);
    expect(await (await c.follow('/redirected?level=consistent')).text()).toBe('v');
  });

  it('default and consistent reads on a follower redirect the same way; the query survives', async () => {
    for (const level of ['default', 'consistent']) {
      const res = await c.request(`/key/a?level=${level}&peer=${follower}`);
      expect(res.status).toBe(307);
      const location = new URL(res.headers.get('Location')!);
      expect(location.searchParams.get('level')).toBe(level);
      expect(location.searchParams.get('peer')).toBe(leader);
    }
  });

  it('a stale read is answered by the follower itself, saying how far behind it may be', async () => {
    await c.follow('/stale-key', { method: 'PUT', body: 'fresh' });
    await waitFor('the follower to apply the write', async () => {
      const res = await c.request(`/stale-key?level=stale&peer=${follower}`);
      return res.status === 200 && (await res.text()) === 'fresh';
    });
    const res = await c.request(`/stale-key?level=stale&peer=${follower}`);
    expect(res.headers.get('X-Metcd-Read-Level')).toBe('stale');
    expect(res.headers.get('X-Metcd-Leader')).toBe(leader);
    expect(Number(res.headers.get('X-Metcd-Applied-Index'))).toBeGreaterThan(0);
    expect(res.headers.get('X-Metcd-Last-Contact-Ms')).toMatch(/^\d+$/);
  });

  it('without ?peer the front door goes to the leader it learned of, so writes need no redirect', async () => {
    const res = await c.request('/direct', { method: 'PUT', body: 'x' });
    expect(res.status).toBe(204);
  });
});

describe('reads and retries', () => {
  it('a consistent read on the leader sees every acknowledged write', async () => {
    for (let i = 0; i < 5; i++) {
      await c.follow('/counter', { method: 'PUT', body: String(i) });
      const get = await c.follow('/counter?level=consistent');
      expect(await get.text()).toBe(String(i));
    }
  });

  it('a retried write with the same client and sequence is applied once and answers the same', async () => {
    const headers = { 'X-Metcd-Client': 'edge-test-client', 'X-Metcd-Seq': '1' };
    const first = await c.follow('/once', { method: 'PUT', body: 'first', headers });
    expect(first.status).toBe(204);
    const revision = first.headers.get('X-Metcd-Revision');
    await c.follow('/other', { method: 'PUT', body: 'moves the revision on' });
    const retry = await c.follow('/once', { method: 'PUT', body: 'first', headers });
    expect(retry.status).toBe(204);
    expect(retry.headers.get('X-Metcd-Revision')).toBe(revision);
    const get = await c.follow('/once?level=consistent');
    expect(get.headers.get('X-Metcd-Version')).toBe('1');
    expect(get.headers.get('X-Metcd-Mod-Revision')).toBe(revision);
  });

  it('every answer carries the revision it reflects', async () => {
    for (const path of ['/counter', '/status', '/members', '/health', '/missing-key', `/key/a?peer=${follower}`]) {
      const res = await c.request(path);
      expect(res.headers.get('X-Metcd-Revision'), path).toMatch(/^\d+$/);
    }
  });
});

describe('status, health, members', () => {
  it('/status shows the peer, its role, term, leader, indexes and members with match index', async () => {
    const s = await c.status(leader);
    expect(s).toMatchObject({ id: leader, role: 'leader', leader });
    expect(s.term).toBeGreaterThan(0);
    expect(s.applied).toBeGreaterThan(0);
    expect(s.lastIndex).toBeGreaterThanOrEqual(s.commit);
    expect(s.members.map((m) => m.id).sort()).toEqual(['p1', 'p2', 'p3']);
    for (const m of s.members) expect(m.match).toEqual(expect.any(Number));
  });

  it('/health is 200 on a caught-up peer with a leader', async () => {
    for (const id of ['p1', 'p2', 'p3']) {
      await waitFor(`health of ${id}`, async () => (await c.request(`/health?peer=${id}`)).status === 200);
    }
  });

  it('/members lists the members and the leader from any peer', async () => {
    const res = await c.request(`/members?peer=${follower}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { leader: string; members: Array<{ id: string; address: string; voter: boolean }> };
    expect(body.leader).toBe(leader);
    expect(body.members.map((m) => [m.id, m.address, m.voter])).toEqual([
      ['p1', 'metcd/p1', true],
      ['p2', 'metcd/p2', true],
      ['p3', 'metcd/p3', true],
    ]);
  });
});

describe('bad input answers a clear 4xx, never a 500', () => {
  const cases: Array<[string, string, RequestInit, number, string]> = [
    ['bad JSON', '/key', { method: 'POST', body: '{"foo":' }, 400, 'bad_request'],
    ['a JSON array', '/key', { method: 'POST', body: '["foo"]' }, 400, 'bad_request'],
    ['no pairs', '/key', { method: 'POST', body: '{}' }, 400, 'bad_request'],
    ['a non-string value', '/key', { method: 'POST', body: '{"foo":1}' }, 400, 'bad_request'],
    ['an empty key', '/', { method: 'PUT', body: 'v' }, 400, 'bad_request'],
    ['an empty key in JSON', '/key', { method: 'POST', body: '{"":"v"}' }, 400, 'bad_request'],
    ['an unknown level', '/key/foo?level=eventual', {}, 400, 'bad_request'],
    ['an unknown parameter', '/key/foo?lvl=stale', {}, 400, 'bad_request'],
    ['a repeated parameter', '/hello?level=stale&level=stale', {}, 400, 'bad_request'],
    ['a bad compare revision', '/hello?ifRevision=-1', { method: 'PUT', body: 'v' }, 400, 'bad_request'],
    [
      'a bad client sequence',
      '/hello',
      { method: 'PUT', body: 'v', headers: { 'X-Metcd-Client': 'c', 'X-Metcd-Seq': 'x' } },
      400,
      'bad_request',
    ],
    ['a missing key', '/key/never-written', {}, 404, 'key_not_found'],
    ['an unknown reserved route', '/members/p1/demote', { method: 'POST' }, 404, 'not_found'],
    ['an unsupported method', '/hello', { method: 'PATCH', body: 'v' }, 405, 'method_not_allowed'],
    ['a GET on /join', '/join', {}, 405, 'method_not_allowed'],
    ['a value over 1 MiB', '/big', { method: 'PUT', body: 'x'.repeat(1024 * 1024 + 1) }, 413, 'too_large'],
    ['a join without an id', '/join', { method: 'POST', body: '{}' }, 400, 'bad_request'],
    ['a join with a bad id', '/join', { method: 'POST', body: '{"id":"../p1"}' }, 400, 'bad_request'],
    ['a join with a bad learner flag', '/join', { method: 'POST', body: '{"id":"p9","learner":"yes"}' }, 400, 'bad_request'],
    ['a join of an existing member', '/join', { method: 'POST', body: '{"id":"p2"}' }, 409, 'member_conflict'],
    ['removing a non-member', '/members/p9', { method: 'DELETE' }, 404, 'member_not_found'],
    ['promoting a voter', '/members/p2/promote', { method: 'POST' }, 409, 'member_conflict'],
    ['a transfer to a non-member', '/transfer-leader', { method: 'POST', body: '{"id":"p9"}' }, 404, 'member_not_found'],
    ['a transfer without a body', '/transfer-leader', { method: 'POST' }, 400, 'bad_request'],
    ['a malformed peer name', '/hello?peer=..%2Fp1', {}, 400, 'bad_request'],
    ['two peer names', '/hello?peer=p1&peer=p2', {}, 400, 'bad_request'],
    ['a peer that is not a member', '/hello?peer=p9', {}, 404, 'not_found'],
  ];
  it.each(cases)('%s', async (_what, path, init, status, code) => {
    const res = await c.follow(path, init);
    expect(res.status).toBe(status);
    expect((await errorOf(res)).code).toBe(code);
  });
});

describe('?peer= names only members', () => {
  it('refuses a name outside the cluster before any object is made for it, and reaches a joined member', async () => {
    for (const name of ['p7', 'p999', 'zz-top']) {
      const res = await c.request(`/hello?peer=${name}`);
      expect(res.status, name).toBe(404);
      expect((await errorOf(res)).message).toContain(`peer ${name} is not a member`);
      // Inspecting creates the object if it did not exist: it must never have had a request.
      expect((await c.inspect(name)).requests, name).toBe(0);
    }
    expect((await c.follow('/join', { method: 'POST', body: '{"id":"p6","learner":true}' })).status).toBe(200);
    // The new member's object starts with the leader's first message to it; then it answers.
    await waitFor('p6 answering', async () => (await c.request('/status?peer=p6')).status === 200);
    expect((await c.inspect('p6')).requests).toBeGreaterThan(0);
  });
});

describe("the peers' Raft endpoints are not reachable from the public Worker", () => {
  // A message that reaches a peer is visibly counted: a response from a sender that is not a
  // member is dropped and counted (nonMemberMessages.droppedUnknown).
  const probe = encodeMessages(['p1', 'p2', 'p3'].map((to) => ({ type: 'heartbeatResp' as const, from: 'intruder', to, term: 1 })));

  /** The probe's drops: by the peers' sender check (worker/peer/senders.ts), or by a core. */
  async function unknownSenderDrops(): Promise<number> {
    let total = 0;
    for (const id of ['p1', 'p2', 'p3']) {
      const s = await c.status(id);
      total += (s.dropped['unknown-sender'] ?? 0) + s.nonMemberMessages.droppedUnknown;
    }
    return total;
  }

  it('paths reserved for peer traffic are refused by the Worker', async () => {
    for (const path of ['/raft', '/raft/deliver', '/_metcd', '/_metcd/deliver', '/raft?peer=p1']) {
      for (const method of ['GET', 'POST', 'PUT']) {
        const init: RequestInit = method === 'GET' ? { method } : { method, body: probe };
        const res = await c.request(path, init);
        expect(res.status, `${method} ${path}`).toBe(404);
      }
    }
  });

  it('a Raft message batch sent to any public path never reaches a peer', async () => {
    const before = await unknownSenderDrops();
    const paths = ['/', '/raft', '/deliver', '/key', '/key/deliver', '/metcd/p1', '/p1', '/_metcd/p1', '/members', '/join'];
    for (const path of paths) {
      for (const peer of ['', '?peer=p1', '?peer=p2']) {
        for (const method of ['POST', 'PUT']) {
          const res = await c.request(path + peer, {
            method,
            body: probe,
            headers: { 'Content-Type': 'application/octet-stream' },
          });
          expect(res.status, `${method} ${path}${peer}`).toBeLessThan(500);
          await res.body?.cancel();
        }
      }
    }
    expect(await unknownSenderDrops()).toBe(before);
    for (const id of ['p1', 'p2', 'p3']) {
      const seen = await c.inspect(id);
      expect(seen.badBatches).toBe(0);
    }
  });

  it('the same batch over the internal RPC does reach the peers (the probe above is meaningful)', async () => {
    const before = await unknownSenderDrops();
    for (const id of ['p1', 'p2', 'p3']) await c.peer(id).deliver(probe);
    await waitFor('the probe to be dropped by every core', async () => (await unknownSenderDrops()) === before + 3);
  });
});

describe('transactions and key history on the edge', () => {
  it('runs a transaction through the Worker, reads a key as of a revision on any peer, and compacts', async () => {
    const body = JSON.stringify({
      compare: [{ key: 'edge-lock', target: 'createRevision', result: '==', value: 0 }],
      success: [{ put: { key: 'edge-lock', value: 'first' } }],
      failure: [{ get: { key: 'edge-lock' } }],
    });
    const won = await c.follow('/txn', { method: 'POST', body });
    expect(won.status).toBe(200);
    const { succeeded, revision } = (await won.json()) as { succeeded: boolean; revision: number };
    expect(succeeded).toBe(true);
    const lost = (await (await c.follow('/txn', { method: 'POST', body })).json()) as { succeeded: boolean };
    expect(lost.succeeded).toBe(false);
    expect((await c.follow('/edge-lock', { method: 'PUT', body: 'second' })).status).toBe(204);
    await waitFor('every peer to apply the overwrite', async () => {
      const answers = await Promise.all(['p1', 'p2', 'p3'].map(async (p) => (await c.request(`/edge-lock?peer=${p}&level=stale`)).text()));
      return answers.every((a) => a === 'second');
    });
    for (const p of ['p1', 'p2', 'p3']) {
      const then = await c.request(`/edge-lock?peer=${p}&level=stale&revision=${revision}`);
      expect(await then.text(), p).toBe('first');
    }
    expect((await c.follow('/compact', { method: 'POST', body: JSON.stringify({ revision: revision + 1 }) })).status).toBe(200);
    const gone = await c.follow(`/edge-lock?revision=${revision}`);
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('compacted');
  });
});

describe('locks and elections on the edge', () => {
  it('takes a lock through the Worker, makes a second taker wait and time out, and elects a leader', async () => {
    const first = await c.follow('/lock/edge-job?ttl=30', { method: 'POST' });
    expect(first.status).toBe(200);
    const held = (await first.json()) as { key: string; revision: number };
    const late = await c.follow('/lock/edge-job?ttl=30&wait=500ms', { method: 'POST' });
    expect(late.status).toBe(409);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('lock_wait_elapsed');
    expect((await c.follow(`/lock/edge-job/${held.key.split('/')[2]}`, { method: 'DELETE' })).status).toBe(200);
    const next = (await (await c.follow('/lock/edge-job?ttl=30', { method: 'POST' })).json()) as { revision: number };
    expect(next.revision).toBeGreaterThan(held.revision);

    const won = await c.follow('/election/edge-svc/campaign', { method: 'POST', body: '{"value":"a","ttl":30}' });
    expect(won.status).toBe(200);
    const leader = await c.follow('/election/edge-svc');
    expect(await leader.json()).toMatchObject({ value: 'a' });
  });
});

describe('leases on the edge', () => {
  it('grants a lease, attaches a key, keeps it alive, lists it, and revokes it with its key', async () => {
    const granted = await c.follow('/lease', { method: 'POST', body: '{"ttl":30}' });
    expect(granted.status).toBe(200);
    const { id } = (await granted.json()) as { id: string };
    expect((await c.follow(`/edge-session?lease=${id}`, { method: 'PUT', body: 'alive' })).status).toBe(204);
    expect(await (await c.follow(`/lease/${id}/keepalive`, { method: 'POST' })).json()).toMatchObject({ id, ttl: 30 });
    expect(await (await c.follow(`/lease/${id}`)).json()).toMatchObject({ id, grantedTtl: 30, keys: ['edge-session'] });
    expect((await c.follow(`/lease/${id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await c.follow('/edge-session')).status).toBe(404);
    expect((await c.follow(`/lease/${id}/keepalive`, { method: 'POST' })).status).toBe(404);
  });
});

describe('coordination routes refuse bad input clearly on the edge', () => {
  it('answers 400, 404, 409, 410 and 413 as documented', async () => {
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/txn', { method: 'POST', body: '{"success":[{"put":{"key":"a"}}]}' }, 400, 'bad_request'],
      [
        '/txn',
        { method: 'POST', body: JSON.stringify({ success: [{ put: { key: 'a', value: 'x'.repeat(3 * 1024 * 1024) } }] }) },
        413,
        'too_large',
      ],
      ['/txn', { method: 'POST', body: '{"success":[{"put":{"key":"a","value":"1","lease":987654}}]}' }, 404, 'lease_not_found'],
      ['/lease/987654/keepalive', { method: 'POST' }, 404, 'lease_not_found'],
      ['/lease', { method: 'POST', body: '{"ttl":-1}' }, 400, 'bad_request'],
      ['/election/nobody', {}, 404, 'not_found'],
      ['/election/e1/proclaim', { method: 'POST', body: '{"key":"election/e1/ff","value":"x"}' }, 409, 'not_elected'],
      ['/watch/a?fromRevision=abc', {}, 400, 'bad_request'],
      ['/compact', { method: 'POST', body: '{"revision":0}' }, 400, 'bad_request'],
      ['/edge-lock?revision=1', {}, 410, 'compacted'],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await c.follow(path, init);
      expect(res.status, `${init.method ?? 'GET'} ${path}`).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe(code);
    }
  });
});
