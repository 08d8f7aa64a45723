// GET /snapshot (worker/api/snapshot-route.ts, worker/backup/format.ts) through the shared router,
// against an in-process 3-peer cluster with fake time: a backup taken while writes go on is the
// state at its stated revision; the file checks (magic, version, truncation, one flipped byte);
// a follower redirects unless stale; a restore (PeerOptions.initialState) into a new cluster
// holds every record (internal ones too), revision and session, and carries on past them.

import { afterEach, describe, expect, it } from 'vitest';
import { routersFor } from './routers.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import type { ClusterOptions } from '../peer/cluster.ts';
import { BackupFormatError, readBackup } from '../../worker/backup/format.ts';
import { StateEncoder, StateStreamEncoder, encodeState } from '../../worker/kv/codec.ts';
import { KvStateMachine } from '../../worker/kv/state-machine.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.closeAll();
});

interface Env {
  c: TestCluster;
  call(id: NodeId, path: string, init?: RequestInit): Promise<Response>;
  leader: NodeId;
}

async function setup(opts: ClusterOptions = {}): Promise<Env> {
  const c = await TestCluster.start(opts);
  clusters.push(c);
  const api = routersFor(c);
  const call = (id: NodeId, path: string, init?: RequestInit) => c.drive(api(id).fetch(new Request(`${addressOf(id)}${path}`, init)));
  const leader = (await c.waitLeader()).id;
  await c.tick(2);
  return { c, call, leader };
}

const key = (i: number): string => `k${String(i).padStart(5, '0')}`;

/** Writes keys k00000.. in batches, a lease with a key, a token and a stamped write (a session). */
async function fill(env: Env, keys: number): Promise<number> {
  for (let i = 0; i < keys; i += 250) {
    const pairs: Record<string, string> = {};
    for (let j = i; j < Math.min(keys, i + 250); j++) pairs[key(j)] = `v${j}`;
    const res = await env.call(env.leader, '/key', { method: 'POST', body: JSON.stringify(pairs) });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
  }
  expect((await env.call(env.leader, `/${key(1)}`, { method: 'PUT', body: 'again' })).status).toBe(204);
  const leased = await env.call(env.leader, '/leased?ttl=3600', { method: 'PUT', body: 'l' });
  expect(leased.status).toBe(204);
  const token = await env.call(env.leader, '/auth/tokens', { method: 'POST', body: '{"name":"backup-test","rules":[]}' });
  expect(token.status).toBe(201);
  const stamped = await env.call(env.leader, '/stamped', {
    method: 'PUT',
    body: 's',
    headers: { 'X-Metcd-Client': 'client-1', 'X-Metcd-Seq': '1' },
  });
  expect(stamped.status).toBe(204);
  return Number(leased.headers.get('X-Metcd-Lease'));
}

/** The whole body of a streamed reply, read while the cluster ticks; `between` runs after each chunk. */
async function readAll(env: Env, res: Response, between?: (chunk: number) => Promise<void>): Promise<Uint8Array> {
  const reader = res.body!.getReader();
  const parts: Uint8Array[] = [];
  for (let n = 0; ; n++) {
    const r = await env.c.drive(reader.read());
    if (r.done) break;
    parts.push(r.value);
    await between?.(n);
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function backup(env: Env, id = env.leader, path = '/snapshot'): Promise<{ bytes: Uint8Array; res: Response }> {
  const res = await env.call(id, path);
  expect(res.status, res.status === 200 ? '' : await res.clone().text()).toBe(200);
  return { bytes: await readAll(env, res), res };
}

function formatError(bytes: Uint8Array): string {
  try {
    readBackup(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(BackupFormatError);
    return (err as Error).message;
  }
  throw new Error('the backup was accepted');
}

describe('GET /snapshot', () => {
  it('streams the state as of its stated revision while writes go on', async () => {
    const env = await setup();
    await fill(env, 5000);
    const res = await env.call(env.leader, '/snapshot');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('application/octet-stream');
    const revision = Number(res.headers.get('X-Metcd-Revision'));
    expect(revision).toBe(env.c.peer(env.leader).revision);
    // Between chunks: overwrite a key already sent and one not yet, delete one, create one.
    let wrote = 0;
    const bytes = await readAll(env, res, async (chunk) => {
      if (chunk !== 1) return;
      for (const [path, method] of [
        [`/${key(3)}`, 'PUT'],
        [`/${key(4900)}`, 'PUT'],
        [`/${key(4901)}`, 'DELETE'],
        ['/zzz-new', 'PUT'],
      ] as const) {
        const w = await env.call(env.leader, path, { method, ...(method === 'PUT' ? { body: 'changed' } : {}) });
        expect(w.status).toBe(204);
        wrote++;
      }
    });
    expect(wrote).toBe(4);
    expect(env.c.peer(env.leader).revision).toBe(revision + 4);

    const { header, state } = readBackup(bytes);
    expect(header.revision).toBe(revision);
    expect(header.clusterId).toBe('');
    expect(header.recordCount).toBe(state.records.length);
    const records = new Map(state.records);
    expect(records.get(key(4900))?.value).toBe('v4900');
    expect(records.has(key(4901))).toBe(true);
    expect(records.has('zzz-new')).toBe(false);
    expect(records.get(key(1))).toMatchObject({ value: 'again', version: 2 });
    // Every client key is exactly what a read at the stated revision answers.
    const atRevision = await env.c.drive(
      env.c.peer(env.leader).read('stale', (kv) => kv.rangeAt({ limit: 1_000_000 }, revision) as Array<[string, KeyRecord]>),
    );
    const clientRecords = state.records.filter(([k]) => !k.startsWith('\u0001'));
    expect(clientRecords).toEqual(atRevision.value);
    expect(clientRecords.length).toBe(5000 + 2);
    // metcd's own records ride along: the token, the lease, the key history.
    expect(state.records.length).toBeGreaterThan(clientRecords.length);
    expect(state.sessions.map(([client]) => client)).toEqual(['client-1']);
  });

  it('is refused when corrupted: a flipped byte, a truncation, a bad magic or version', async () => {
    const env = await setup();
    await fill(env, 300);
    const { bytes } = await backup(env);
    expect(readBackup(bytes).state.revision).toBe(env.c.peer(env.leader).revision);
    for (const at of [20, Math.floor(bytes.length / 2), bytes.length - 40, bytes.length - 1]) {
      const flipped = bytes.slice();
      flipped[at]! ^= 0x01;
      expect(formatError(flipped)).toMatch(/^(checksum mismatch: the backup is corrupted|truncated backup)/);
    }
    const mid = bytes.slice();
    mid[Math.floor(bytes.length / 2)]! ^= 0x40;
    expect(formatError(mid)).toMatch(/^checksum mismatch: the backup is corrupted \(SHA-256 [0-9a-f]{16}…, trailer says [0-9a-f]{16}…\)$/);
    for (const cut of [bytes.length - 1, bytes.length - 40, 100, 9]) {
      expect(formatError(bytes.subarray(0, cut))).toMatch(/^truncated backup/);
    }
    expect(formatError(new Uint8Array(0))).toMatch(/^not a metcd backup \(bad magic/);
    expect(formatError(new TextEncoder().encode('{"not":"a backup"}'))).toMatch(/^not a metcd backup \(bad magic/);
    const future = bytes.slice();
    future[8] = 2;
    expect(formatError(future)).toBe('unsupported backup format version 2 (this metcd reads version 1)');
  });

  it('is taken on the leader: a follower redirects, unless level=stale', async () => {
    const env = await setup();
    await fill(env, 10);
    const follower = env.c.followers()[0]!;
    const redirected = await env.call(follower, '/snapshot');
    expect(redirected.status).toBe(307);
    expect(redirected.headers.get('Location')).toBe(`${addressOf(env.leader)}/snapshot`);
    await env.c.tick(3);
    const { bytes, res } = await backup(env, follower, '/snapshot?level=stale');
    expect(res.headers.get('X-Metcd-Read-Level')).toBe('stale');
    expect(readBackup(bytes).header.revision).toBe(Number(res.headers.get('X-Metcd-Revision')));
    expect((await env.call(env.leader, '/snapshot?level=nope')).status).toBe(400);
    expect((await env.call(env.leader, '/snapshot?x=1')).status).toBe(400);
    const post = await env.call(env.leader, '/snapshot', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('Allow')).toBe('GET, PUT');
    // A key named snapshot is reached through /key/snapshot (a reserved segment).
    expect((await env.call(env.leader, '/key/snapshot', { method: 'PUT', body: 'k' })).status).toBe(204);
  });

  it('a client that goes away releases the view', async () => {
    const env = await setup();
    await fill(env, 3000);
    const res = await env.call(env.leader, '/snapshot');
    const reader = res.body!.getReader();
    await env.c.drive(reader.read());
    await reader.cancel();
    // Writes go on and a later backup is whole.
    expect((await env.call(env.leader, '/after', { method: 'PUT', body: 'x' })).status).toBe(204);
    const { bytes } = await backup(env);
    expect(new Map(readBackup(bytes).state.records).get('after')?.value).toBe('x');
  });
});

describe('restore (PeerOptions.initialState)', () => {
  it('starts a new cluster with every record, revision and session, and goes on past them', async () => {
    const src = await setup();
    const leaseId = await fill(src, 1200);
    const { bytes } = await backup(src);
    const { header, state } = readBackup(bytes);

    const dst = await setup({ ids: ['q1', 'q2', 'q3'], seed: 7, initialState: { kv: state, index: header.appliedIndex } });
    for (const id of ['q1', 'q2', 'q3']) {
      expect(dst.c.peer(id).revision).toBe(header.revision);
      expect(dst.c.peer(id).status().applied).toBeGreaterThanOrEqual(header.appliedIndex);
    }
    const again = readBackup((await backup(dst)).bytes);
    expect(again.header.revision).toBe(header.revision);
    expect(again.state.records).toEqual(state.records);
    expect(again.state.sessions).toEqual(state.sessions);
    expect(again.header.appliedIndex).toBeGreaterThanOrEqual(header.appliedIndex);

    // The exactly-once session came along: the retried stamped write is answered, not redone.
    const retried = await dst.call(dst.leader, '/stamped', {
      method: 'PUT',
      body: 'other',
      headers: { 'X-Metcd-Client': 'client-1', 'X-Metcd-Seq': '1' },
    });
    expect(retried.status).toBe(204);
    expect(await (await dst.call(dst.leader, '/stamped')).text()).toBe('s');
    // New writes go on from the restored revision; a new lease never takes a restored lease's id.
    const put = await dst.call(dst.leader, '/new', { method: 'PUT', body: 'n' });
    expect(Number(put.headers.get('X-Metcd-Revision'))).toBe(header.revision + 1);
    const lease = await dst.call(dst.leader, '/leased2?ttl=3600', { method: 'PUT', body: 'l' });
    expect(lease.status).toBe(204);
    expect(Number(lease.headers.get('X-Metcd-Lease'))).toBeGreaterThan(leaseId);
    const lookup = await dst.call(dst.leader, `/lease/${leaseId}`);
    expect(lookup.status).toBe(200);
  });
});

describe('StateStreamEncoder', () => {
  it('gives exactly encodeState’s bytes, slice by slice', () => {
    const kv = new KvStateMachine();
    let index = 0;
    for (let i = 0; i < 500; i++) {
      kv.apply(++index, { op: 'put', pairs: [[`key/${(i * 7919) % 500}`, `value ${i}`]], stamp: { client: `c${i % 3}`, seq: i + 1 } });
    }
    const whole = encodeState(kv.snapshot());
    const view = kv.beginView();
    const encoder = new StateStreamEncoder(view.recordCount);
    const parts = [StateStreamEncoder.head(view.revision, view.recordCount)];
    while (!view.done) parts.push(encoder.slice(view.next(37)));
    parts.push(encoder.tail(view.sessions));
    view.close();
    expect(Buffer.concat(parts)).toEqual(Buffer.from(whole));
    const old = new StateEncoder(kv.revision);
    old.add(kv.snapshot().records);
    expect(Buffer.from(old.finish(kv.snapshot().sessions))).toEqual(Buffer.from(whole));
  });
});
