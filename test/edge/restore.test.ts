// PUT /snapshot on the edge, in real workerd: a backup taken from cluster "a" while writes go on
// is imported into a new cluster "b" (the same Worker redeployed with another CLUSTER_NAME), and
// every key, value, create and mod revision and version, lease, token digest and session comes
// back identical on every peer, at the backup's revision. A corrupted or cut file, one past the
// size limit, a caller without a token or without admin, and a cluster that has been used are
// refused, each with its JSON error, and none of them changes anything.

import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor, type EdgeCluster } from './harness.ts';
import { readBackup } from '../../worker/backup/format.ts';
import { RESTORE_BYTES_MAX } from '../../worker/edge/import.ts';

const ROOT = 'edge-restore-root-token-0123456789abcdef';
let c: EdgeCluster;

beforeAll(async () => {
  c = await startCluster({
    vars: { CLUSTER_NAME: 'a', METCD_AUTH: '', METCD_ROOT_TOKEN: ROOT },
    headers: { authorization: `Bearer ${ROOT}` },
  });
  await c.leader();
});
afterAll(async () => {
  await c?.close();
});

const put = (body: Uint8Array, headers: Record<string, string> = {}) =>
  c.follow('/snapshot', { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream', ...headers } });

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, code: body.error.code, message: body.error.message };
}

/**
 * A PUT /snapshot over a real socket that announces `bytes` (Content-Length) and sends only the
 * first KiB: the limit must answer from the announcement, without taking the upload.
 */
async function announce(bytes: number): Promise<{ status: number; body: string }> {
  const url = (await c.server.listen()).url;
  return new Promise((resolve, reject) => {
    const headers = { 'content-length': String(bytes), authorization: `Bearer ${ROOT}` };
    const req = httpRequest({ host: url.hostname, port: url.port, method: 'PUT', path: '/snapshot', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.write(new Uint8Array(1024));
  });
}

/** Every peer's revision, by peer. */
async function revisions(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const id of ['p1', 'p2', 'p3']) out[id] = (await c.status(id)).revision;
  return out;
}

describe('PUT /snapshot on the edge', () => {
  it('imports a backup taken under write load into a new cluster, identical; refuses what it must', async () => {
    // Cluster a: keys with several versions, a delete, a lease with a key, a token.
    for (let round = 0; round < 3; round++) {
      const pairs: Record<string, string> = {};
      for (let i = 0; i < 100; i++) pairs[`k/${i}`] = `v${round}-${i}`;
      expect((await c.follow('/key', { method: 'POST', body: JSON.stringify(pairs) })).status).toBe(200);
    }
    expect((await c.follow('/key/k/7', { method: 'DELETE' })).status).toBe(200);
    const lease = (await (await c.follow('/lease', { method: 'POST', body: JSON.stringify({ ttl: 600 }) })).json()) as { id: string };
    expect((await c.follow(`/key/leased?lease=${lease.id}`, { method: 'PUT', body: 'x' })).status).toBe(204);
    const reader = (await (
      await c.follow('/auth/tokens', {
        method: 'POST',
        body: JSON.stringify({ name: 'reader', rules: [{ prefix: 'k/', access: 'read' }] }),
      })
    ).json()) as { token: string };

    // The backup, taken while three writers keep writing.
    let writing = true;
    let written = 0;
    const writers = [0, 1, 2].map(async (w) => {
      for (let i = 0; writing; i++) {
        const res = await c.follow(`/key/load/${w}/${i % 20}`, { method: 'PUT', body: `w${w}-${i}` });
        if (res.status === 204) written++;
      }
    });
    await waitFor('writes under way', () => written >= 10);
    const saved = await c.follow('/snapshot');
    expect(saved.status).toBe(200);
    const backup = new Uint8Array(await saved.arrayBuffer());
    await waitFor('writes after the backup', () => written >= 20);
    writing = false;
    await Promise.all(writers);
    const { header, state } = readBackup(backup);
    expect(header.clusterId).toBe('a');
    expect(state.records.some(([k]) => k.startsWith('load/'))).toBe(true);

    // Refused on a: a token without admin (403), and as root, because a is in use (409).
    expect(await errorOf(await put(backup, { authorization: `Bearer ${reader.token}` }))).toMatchObject({
      status: 403,
      code: 'permission_denied',
    });
    const used = await errorOf(await put(backup));
    expect(used).toMatchObject({ status: 409, code: 'cluster_in_use' });
    expect(used.message).toMatch(/^cluster a is in use \(p\d: it is at revision \d+/);

    // Cluster b: the same Worker with another CLUSTER_NAME, new peers.
    await c.reconfigure({ CLUSTER_NAME: 'b' });
    await c.leader();
    expect(await revisions()).toEqual({ p1: 0, p2: 0, p3: 0 });
    expect(await errorOf(await put(backup, { authorization: 'Bearer not-a-token' }))).toMatchObject({
      status: 401,
      code: 'unauthenticated',
    });
    const corrupted = backup.slice();
    corrupted[Math.floor(corrupted.length / 2)]! ^= 0x01;
    const bad = await errorOf(await put(corrupted));
    expect(bad).toMatchObject({ status: 400, code: 'bad_backup' });
    expect(bad.message).toMatch(/^the backup was refused: checksum mismatch: the backup is corrupted/);
    const cut = await errorOf(await put(backup.subarray(0, backup.length - 100)));
    expect(cut).toMatchObject({ status: 400, code: 'bad_backup' });
    expect(cut.message).toMatch(/truncated backup/);
    const tooLarge = await announce(RESTORE_BYTES_MAX + 1);
    expect({ status: tooLarge.status, code: (JSON.parse(tooLarge.body) as { error: { code: string } }).error.code }).toEqual({
      status: 413,
      code: 'too_large',
    });
    expect(await revisions()).toEqual({ p1: 0, p2: 0, p3: 0 }); // none of that changed anything

    const imported = await put(backup);
    expect(imported.status).toBe(200);
    expect(await imported.json()).toEqual({
      cluster: 'b',
      peers: ['p1', 'p2', 'p3'],
      revision: header.revision,
      appliedIndex: header.appliedIndex,
      records: header.recordCount,
      sourceCluster: 'a',
      createdAt: new Date(header.createdAtMs).toISOString(),
    });

    // Every peer is at the backup's revision, and b's own backup holds the same state.
    await c.leader();
    await waitFor('every peer seeded', async () => Object.values(await revisions()).every((r) => r === header.revision));
    const again = await c.follow('/snapshot');
    expect(again.status).toBe(200);
    const copy = readBackup(new Uint8Array(await again.arrayBuffer()));
    expect(copy.header.clusterId).toBe('b');
    expect(copy.header.revision).toBe(header.revision);
    expect(copy.state.records).toEqual(state.records);
    expect(copy.state.sessions).toEqual(state.sessions);
    const k3 = state.records.find(([k]) => k === 'k/3')![1];
    const got = await c.follow('/key/k/3');
    expect(await got.json()).toEqual({ 'k/3': 'v2-3' });
    expect({
      create: Number(got.headers.get('x-metcd-create-revision')),
      mod: Number(got.headers.get('x-metcd-mod-revision')),
      version: Number(got.headers.get('x-metcd-version')),
    }).toEqual({ create: k3.createRevision, mod: k3.modRevision, version: 3 });
    // The lease and the token came along; b goes on from the backup's revision.
    expect((await c.follow(`/lease/${lease.id}`)).status).toBe(200);
    expect((await c.follow('/key/k/1', { headers: { authorization: `Bearer ${reader.token}` } })).status).toBe(200);
    expect((await c.follow('/key/after', { method: 'PUT', body: 'b' })).headers.get('x-metcd-revision')).toBe(String(header.revision + 1));

    // b is in use now: a second import is refused.
    expect(await errorOf(await put(backup))).toMatchObject({ status: 409, code: 'cluster_in_use' });
  });
});
