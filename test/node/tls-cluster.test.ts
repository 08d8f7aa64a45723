// A 3-node cluster over HTTPS with mutual TLS, as real processes on loopback, with certificates
// made at run time (test/support/certs.ts): every node runs with --client-cert-auth and
// --peer-client-cert-auth, in proxy mode so that forwarding to the leader is a peer call too.
// One cluster serves every case; a fourth node joins over TLS at the end.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NodeProcess } from '../support/node-process.ts';
import { makeTestCerts, type KeyPair, type TestCerts } from '../support/certs.ts';
import { tlsRequest, type TlsAnswer } from '../support/tls-request.ts';
import { rawRequest } from '../support/raw-http.ts';
import { waitFor } from '../support/wait.ts';
import { freePort, type NodeStatus } from './proc-cluster.ts';
import { startHttpsNodes } from './https-nodes.ts';

const TOKEN = 'test-token';
const root = mkdtempSync(path.join(tmpdir(), 'metcd-tls-'));
const nodes: NodeProcess[] = [];
let certs: TestCerts;

const urlOf = (n: NodeProcess) => `https://127.0.0.1:${n.port}`;

/** A request as a client with the client CA's certificate (curl --cacert peer-ca.pem --cert client.pem). */
function asClient(n: NodeProcess, target: string, call: { method?: string; body?: string; client?: KeyPair | null } = {}) {
  const client = call.client === null ? undefined : (call.client ?? certs.client);
  return tlsRequest(`${urlOf(n)}${target}`, {
    ca: certs.peerCa,
    ...(client ? { client } : {}),
    ...(call.method ? { method: call.method } : {}),
    ...(call.body !== undefined ? { body: call.body } : {}),
  });
}

async function status(n: NodeProcess): Promise<NodeStatus> {
  const res = await asClient(n, '/status');
  if (res.status !== 200) throw new Error(`${n.id} /status: HTTP ${res.status} ${res.body}`);
  return JSON.parse(res.body) as NodeStatus;
}

/** The leader every live node agrees on. */
function leader(): Promise<NodeProcess> {
  return waitFor('a leader known to every node', 20_000, async () => {
    const all = await Promise.all(nodes.filter((n) => n.alive).map((n) => status(n)));
    const l = all.find((s) => s.role === 'leader');
    if (l === undefined || !all.every((s) => s.leader === l.id && s.term === l.term)) return undefined;
    return nodes.find((n) => n.id === l.id);
  });
}

function tlsArgs(): string[] {
  return [
    '--cert-file',
    certs.node.cert,
    '--key-file',
    certs.node.key,
    '--trusted-ca-file',
    certs.clientCa,
    '--client-cert-auth',
    '--peer-cert-file',
    certs.node.cert,
    '--peer-key-file',
    certs.node.key,
    '--peer-trusted-ca-file',
    certs.peerCa,
    '--peer-client-cert-auth',
  ];
}

function nodeArgs(id: string, port: number): string[] {
  return [
    '--id',
    id,
    '--http',
    `127.0.0.1:${port}`,
    '--data-dir',
    path.join(root, id),
    '--engine',
    'memory',
    '--cluster-token',
    TOKEN,
    '--cluster-id',
    'tls',
    '--tick-ms',
    '50',
    '--mode',
    'proxy',
    '--log-level',
    'debug',
    ...tlsArgs(),
  ];
}

const errorCode = (res: TlsAnswer) => (JSON.parse(res.body) as { error: { code: string; message: string } }).error.code;

beforeAll(async () => {
  mkdirSync(path.join(root, 'certs'));
  certs = makeTestCerts(path.join(root, 'certs'));
  nodes.push(...(await startHttpsNodes(nodeArgs)));
  await leader();
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  rmSync(root, { recursive: true, force: true });
});

describe('3 nodes over HTTPS with mutual TLS', () => {
  it('elects a leader over mTLS and serves a PUT then a GET, through the leader and through a follower (proxy)', async () => {
    const l = await leader();
    expect((await status(l)).members.map((m) => m.address.slice(0, 8))).toEqual(['https://', 'https://', 'https://']);
    const put = await asClient(l, '/tls-key', { method: 'PUT', body: 'one' });
    expect(put.status).toBe(204);
    const get = await asClient(l, '/key/tls-key?level=consistent');
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body)).toEqual({ 'tls-key': 'one' });

    // A follower forwards to the leader with its peer certificate, which the leader's
    // --client-cert-auth accepts (issued by its peer CA). Retried across a leader change.
    await waitFor('a write and a read through a follower', 10_000, async () => {
      const follower = nodes.find((n) => n.alive && n.id !== l.id)!;
      const fput = await asClient(follower, '/tls-key', { method: 'PUT', body: 'two' });
      if (fput.status !== 204) return undefined;
      const fget = await asClient(follower, '/key/tls-key?level=consistent');
      expect(fget.status).toBe(200);
      expect(JSON.parse(fget.body)).toEqual({ 'tls-key': 'two' });
      return true;
    });
  });

  it('a client that does not trust the node certificate cannot connect (the server is verified)', async () => {
    const n = nodes[0]!;
    await expect(tlsRequest(`${urlOf(n)}/status`, { ca: certs.clientCa, client: certs.client })).rejects.toMatchObject({
      // The node sends its CA along (the listener's `ca`), which this client does not trust either.
      code: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/),
    });
  });

  it('answers plain HTTP on the HTTPS port with a 400 saying to use https://, and keeps serving', async () => {
    const n = nodes[0]!;
    const plain = await rawRequest(`http://127.0.0.1:${n.port}`, 'GET', '/status');
    expect(plain.status).toBe(400);
    expect(JSON.parse(plain.body)).toMatchObject({ error: { code: 'bad_request', message: expect.stringContaining('https://') } });
    const put = await rawRequest(`http://127.0.0.1:${n.port}`, 'PUT', '/plain', 'x'.repeat(100_000));
    expect(put.status).toBe(400);
    expect((await asClient(n, '/status')).status).toBe(200);
  });

  it('--client-cert-auth: no certificate, another CA or a self-signed one is 401 unauthenticated; the client CA is served', async () => {
    const n = nodes[1]!;
    const refusals: Array<[KeyPair | null, string]> = [
      [null, 'no client certificate'],
      [certs.otherCaClient, 'not trusted'],
      [certs.selfSigned, 'not trusted'],
    ];
    for (const [client, why] of refusals) {
      const get = await asClient(n, '/key/tls-key?level=stale', { client });
      expect(get.status).toBe(401);
      expect(errorCode(get)).toBe('unauthenticated');
      expect(get.body).toContain(why);
      expect(get.headers['x-metcd-leader']).toBeUndefined(); // a stranger learns nothing
      const put = await asClient(n, '/tls-key', { method: 'PUT', body: 'stranger', client });
      expect(put.status).toBe(401);
      expect(errorCode(put)).toBe('unauthenticated');
    }
    const good = await asClient(n, '/key/tls-key?level=stale');
    expect(good.status).toBe(200);
    expect(JSON.parse(good.body)).not.toEqual({ 'tls-key': 'stranger' });
  });

  it('--peer-client-cert-auth: /raft/messages without a peer-CA certificate is 401; the cluster keeps working', async () => {
    const n = nodes[2]!;
    const raft = (client: KeyPair | null, token: string) =>
      tlsRequest(`${urlOf(n)}/raft/messages`, {
        ca: certs.peerCa,
        method: 'POST',
        body: 'x',
        headers: { authorization: `Bearer ${token}`, 'X-Metcd-Cluster': 'tls', 'content-type': 'application/octet-stream' },
        ...(client ? { client } : {}),
      });
    for (const client of [null, certs.client]) {
      const res = await raft(client, TOKEN);
      expect(res.status).toBe(401);
      expect(errorCode(res)).toBe('unauthenticated');
      expect(res.body).toContain('peer CA');
      expect(res.headers['www-authenticate']).toBeUndefined();
    }
    // A member's certificate gets past this check to the next one (the token, which asks for a
    // Bearer token where the certificate refusal does not).
    const wrongToken = await raft(certs.node, 'wrong');
    expect(wrongToken.status).toBe(401);
    expect(wrongToken.body).toContain('cluster token');
    expect(wrongToken.headers['www-authenticate']).toBe('Bearer realm="metcd"');

    // Real peers still replicate: a write reaches every node's own state.
    await waitFor('a write after the refusals', 10_000, async () =>
      (await asClient(nodes[0]!, '/after-raft', { method: 'PUT', body: 'ok' })).status === 204 ? true : undefined,
    );
    for (const m of nodes) {
      await waitFor(`${m.id} to apply the write`, 10_000, async () => {
        const res = await asClient(m, '/key/after-raft?level=stale');
        return res.status === 200 && JSON.parse(res.body)['after-raft'] === 'ok' ? true : undefined;
      });
    }
  });

  it('a new node joins over TLS (--join https://…, presenting its peer certificate) and catches up', async () => {
    const l = await leader();
    await waitFor('a write before the join', 10_000, async () =>
      (await asClient(l, '/before-join', { method: 'PUT', body: 'yes' })).status === 204 ? true : undefined,
    );
    const port = await freePort();
    const n4 = new NodeProcess('n4', port, [...nodeArgs('n4', port), '--join', urlOf(l)]);
    nodes.push(n4);
    n4.start();
    await waitFor('n4 to join and apply the earlier write', 15_000, async () => {
      const res = await asClient(n4, '/key/before-join?level=stale');
      return res.status === 200 && JSON.parse(res.body)['before-join'] === 'yes' ? true : undefined;
    });
    const members = (await status(l)).members;
    expect(members.find((m) => m.id === 'n4')?.address).toBe(urlOf(n4));
  });
});
