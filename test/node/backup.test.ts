// Backup and restore on real Node processes: GET /snapshot from a 3-node cluster while a writer
// keeps writing, `metcd --restore FILE --initial-cluster …` into a new 3-node cluster, and every
// record (client keys with revision, createRevision, modRevision and version; tokens, leases,
// history, sessions) identical; a token made before the backup works after it; a corrupted or
// truncated file and a data dir that holds state are refused with one line.

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProcCluster, freePort, type ProcNode } from './proc-cluster.ts';
import { readBackup } from '../../worker/backup/format.ts';
import { runCli } from '../support/node-process.ts';

const ROOT = 'backup-root-token-0123456789abcdef';
const auth = { authorization: `Bearer ${ROOT}` };
const dir = mkdtempSync(path.join(tmpdir(), 'metcd-backup-'));
const file = path.join(dir, 'backup.metcd');
const source = new ProcCluster({ engine: 'sqlite', rootToken: ROOT, clusterId: 'source' });
const restored = new ProcCluster({ engine: 'sqlite', rootToken: ROOT, clusterId: 'restored', extraArgs: ['--restore', file] });
afterAll(async () => {
  await source.stopAll();
  await restored.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ok(res: Response, what: string): Promise<Response> {
  if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

/** GET /snapshot from `node` into memory, `pauseMs` between chunks (a slow client). */
async function save(node: ProcNode, pauseMs = 0): Promise<{ bytes: Uint8Array; revision: number; chunks: number }> {
  const res = await ok(await fetch(`${node.url}/snapshot`, { headers: auth }), 'GET /snapshot');
  expect(res.headers.get('content-type')).toBe('application/octet-stream');
  const revision = Number(res.headers.get('x-metcd-revision'));
  const parts: Uint8Array[] = [];
  const reader = res.body!.getReader();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(r.value);
    if (pauseMs > 0) await sleep(pauseMs);
  }
  return { bytes: new Uint8Array(Buffer.concat(parts)), revision, chunks: parts.length };
}

const run = runCli;

const lastLine = (s: string) => s.trim().split('\n').pop() ?? '';

describe('Node: backup and restore', () => {
  let token = '';
  let revision = 0;

  it('saves a consistent backup while a writer keeps writing', { timeout: 90_000 }, async () => {
    await source.start();
    const leader = await source.leader({ all: true });
    for (let i = 0; i < 6000; i += 500) {
      const pairs: Record<string, string> = {};
      for (let j = i; j < i + 500; j++) pairs[`k/${String(j).padStart(5, '0')}`] = `value ${j}`;
      await ok(await fetch(`${leader.url}/key`, { method: 'POST', body: JSON.stringify(pairs), headers: auth }), 'POST /key');
    }
    await ok(await fetch(`${leader.url}/k/00001`, { method: 'PUT', body: 'second', headers: auth }), 'PUT');
    await ok(await fetch(`${leader.url}/leased?ttl=3600`, { method: 'PUT', body: 'l', headers: auth }), 'PUT lease');
    const made = await ok(
      await fetch(`${leader.url}/auth/tokens`, {
        method: 'POST',
        body: JSON.stringify({ name: 'reader', rules: [{ prefix: 'k/', access: 'read' }] }),
        headers: auth,
      }),
      'POST /auth/tokens',
    );
    token = ((await made.json()) as { token: string }).token;

    // The writer: overwrites keys, deletes some, adds new ones, as fast as the leader answers.
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const method = i % 3 === 2 ? 'DELETE' : 'PUT';
        const key = i % 3 === 1 ? `new/${i}` : `k/${String((i * 37) % 6000).padStart(5, '0')}`;
        const res = await fetch(`${leader.url}/${key}`, { method, headers: auth, ...(method === 'PUT' ? { body: `w${i}` } : {}) });
        await res.arrayBuffer();
        if (res.status === 204) writes++;
      }
    })();
    await sleep(100);
    const before = writes;
    const saved = await save(leader, 30);
    const during = writes - before;
    writing = false;
    await writer;
    expect(saved.chunks).toBeGreaterThan(1);
    expect(during).toBeGreaterThan(0); // writes went on while the backup streamed
    writeFileSync(file, saved.bytes);

    const { header, state } = readBackup(saved.bytes);
    revision = header.revision;
    expect(header.revision).toBe(saved.revision);
    expect(header.clusterId).toBe('source');
    expect((await leader.status()).applied).toBeGreaterThan(header.appliedIndex);
    // Every client key is what a read at the stated revision answers.
    const atRevision = new Map<string, string>();
    let start = '';
    for (;;) {
      const q = new URLSearchParams({ revision: String(revision), limit: '1000', ...(start ? { start } : {}) });
      const res = await ok(await fetch(`${leader.url}/key?${q}`, { headers: auth }), 'GET /key?revision');
      for (const [k, v] of Object.entries((await res.json()) as Record<string, string>)) atRevision.set(k, v);
      const next = res.headers.get('x-metcd-next-start');
      if (res.headers.get('x-metcd-more') !== 'true' || next === null) break;
      start = decodeURIComponent(next);
    }
    const clientRecords = state.records.filter(([k]) => !k.startsWith('\u0001'));
    expect(new Map(clientRecords.map(([k, r]) => [k, r.value]))).toEqual(atRevision);
    expect(state.records.length).toBeGreaterThan(clientRecords.length); // tokens, lease, history
  });

  it('restores it into a new cluster: every record and revision identical', { timeout: 90_000 }, async () => {
    const { header, state } = readBackup(new Uint8Array(readFileSync(file)));
    await restored.start();
    const leader = await restored.leader({ all: true });
    for (const node of restored.live()) {
      const res = await ok(await fetch(`${node.url}/status`, { headers: auth }), 'GET /status');
      expect(Number(res.headers.get('x-metcd-revision'))).toBe(revision);
    }
    const again = readBackup((await save(leader)).bytes);
    expect(again.header.revision).toBe(header.revision);
    expect(again.header.clusterId).toBe('restored');
    expect(again.state.records).toEqual(state.records);
    expect(again.state.sessions).toEqual(state.sessions);

    // One key's metadata through the API, on every node.
    const [key, record] = state.records.find(([k]) => k === 'k/00001')!;
    for (const node of restored.live()) {
      const res = await ok(await fetch(`${node.url}/${key}?level=stale`, { headers: auth }), `GET ${key}`);
      expect(await res.text()).toBe(record.value);
      expect(Number(res.headers.get('x-metcd-create-revision'))).toBe(record.createRevision);
      expect(Number(res.headers.get('x-metcd-mod-revision'))).toBe(record.modRevision);
      expect(Number(res.headers.get('x-metcd-version'))).toBe(record.version);
    }
    // The token made before the backup came with it; writes go on from the restored revision.
    const asReader = await fetch(`${leader.url}/k/00002`, { headers: { authorization: `Bearer ${token}` } });
    expect(asReader.status).toBe(200);
    expect((await fetch(`${leader.url}/other`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
    const put = await ok(await fetch(`${leader.url}/after-restore`, { method: 'PUT', body: 'x', headers: auth }), 'PUT');
    expect(Number(put.headers.get('x-metcd-revision'))).toBe(revision + 1);
  });

  it('refuses a corrupted or truncated file, and a data dir that holds state, with one line', { timeout: 60_000 }, async () => {
    const bytes = readFileSync(file);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(path.join(dir, 'flipped.metcd'), flipped);
    writeFileSync(path.join(dir, 'truncated.metcd'), bytes.subarray(0, bytes.length - 1000));
    writeFileSync(path.join(dir, 'not-a-backup.metcd'), '{"hello":"world"}');
    const fresh = async (name: string) => {
      const port = await freePort();
      return [
        '--id',
        'n1',
        '--http',
        `127.0.0.1:${port}`,
        '--data-dir',
        path.join(dir, `fresh-${name}`),
        '--cluster-token',
        't',
        '--bootstrap',
      ];
    };
    for (const [name, want] of [
      ['flipped.metcd', /^metcd: --restore .*flipped\.metcd: checksum mismatch: the backup is corrupted \(SHA-256 /],
      ['truncated.metcd', /^metcd: --restore .*truncated\.metcd: truncated backup: no trailer at the end of its \d+ bytes/],
      ['not-a-backup.metcd', /^metcd: --restore .*not-a-backup\.metcd: not a metcd backup \(bad magic/],
      ['missing.metcd', /^metcd: --restore .*missing\.metcd: cannot read it \(ENOENT\)$/],
    ] as const) {
      const r = await run([...(await fresh(name)), '--restore', path.join(dir, name)]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(lastLine(r.stderr)).toMatch(want);
    }
    // A member of the restored cluster, stopped: its data dir holds state.
    const n1 = restored.node('n1');
    await n1.kill('SIGKILL');
    const r = await run([...restored.commonArgs('n1', n1.port), '--bootstrap']);
    expect(r.code, r.stderr).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/^metcd: --restore: data dir .* already holds state; restore only into a new, empty data dir$/);
    // Without a start flag --restore is refused as a flag error.
    const flag = await run(['--id', 'n9', '--restore', file]);
    expect(flag.code).toBe(2);
    expect(lastLine(flag.stderr)).toContain('--restore FILE seeds a new cluster: give it with --bootstrap or --initial-cluster');
  });
});
