// Which certificate opens which route on the one HTTPS listener (cert-auth.ts), in one process:
// with --client-cert-auth alone, client routes take a client-CA certificate or a member's
// peer-CA certificate, and /raft/* is left to the cluster token. A certificate issued by an
// intermediate counts when the intermediate is in a CA file, or when the trust is unambiguous.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Peer } from '../../worker/peer/peer.ts';
import { issuedBy } from '../../node-runtime/cert-auth.ts';
import { createFront } from '../../node-runtime/front.ts';
import { startHttpServer, type RunningServer } from '../../node-runtime/http-server.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { loadTls } from '../../node-runtime/tls-files.ts';
import { makeTestCerts, type KeyPair, type TestCerts } from '../support/certs.ts';
import { tlsRequest, type TlsAnswer } from '../support/tls-request.ts';

const root = mkdtempSync(path.join(tmpdir(), 'metcd-cert-auth-'));
const servers: RunningServer[] = [];
let certs: TestCerts;

beforeAll(() => {
  certs = makeTestCerts(root);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  rmSync(root, { recursive: true, force: true });
});

/** A front door over HTTPS with --client-cert-auth and these CA files ('' = not given). */
async function serve(trustedCaFile: string, peerTrustedCaFile: string): Promise<RunningServer> {
  const tls = loadTls({
    certFile: certs.node.cert,
    keyFile: certs.node.key,
    trustedCaFile,
    clientCertAuth: true,
    peerCertFile: '',
    peerKeyFile: '',
    peerTrustedCaFile,
    peerClientCertAuth: false,
  });
  const front = createFront({
    selfId: 'n1',
    clusterId: 'c1',
    token: 'tok',
    peer: () => ({ receive: () => undefined, revision: 1, leaderId: 'n1' }) as unknown as Peer,
    log: silentLogger,
    raftBodyBytesMax: 1024,
    router: { handle: async () => ({ status: 200, headers: {}, body: 'routed' }) },
    certAuth: tls.certAuth,
  });
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: front,
    bodyBytesMax: 4096,
    log: silentLogger,
    tls: tls.server,
  });
  servers.push(server);
  return server;
}

const get = (server: RunningServer, target: string, client: KeyPair | undefined) =>
  tlsRequest(`https://127.0.0.1:${server.port}${target}`, { ca: certs.peerCa, ...(client ? { client } : {}) });

const refusal = (res: TlsAnswer) => ({ status: res.status, error: (JSON.parse(res.body) as { error: unknown }).error });

describe('client certificates per route', () => {
  it('client routes take the client CA and a peer certificate; /raft/* is left to the token', async () => {
    const server = await serve(certs.clientCa, certs.peerCa);
    for (const client of [certs.client, certs.node]) {
      const res = await get(server, '/key/a', client);
      expect({ cert: client.cert, status: res.status, body: res.body }).toEqual({ cert: client.cert, status: 200, body: 'routed' });
    }
    expect(refusal(await get(server, '/key/a', undefined))).toEqual({
      status: 401,
      error: { code: 'unauthenticated', message: expect.stringContaining('no client certificate') },
    });
    // Past the certificate check, at the route: GET is not POST.
    expect((await get(server, '/raft/messages', undefined)).status).toBe(405);
  });

  it('a certificate issued by an intermediate: refused while two different CA files leave it ambiguous', async () => {
    const ambiguous = await serve(certs.clientCa, certs.peerCa);
    expect(refusal(await get(ambiguous, '/key/a', certs.chainedClient))).toEqual({
      status: 401,
      error: { code: 'unauthenticated', message: expect.stringContaining('intermediate CA is in neither') },
    });
    const bundled = await serve(certs.clientCaBundle, certs.peerCa);
    expect((await get(bundled, '/key/a', certs.chainedClient)).status).toBe(200);
    const onlyClientCa = await serve(certs.clientCa, '');
    expect((await get(onlyClientCa, '/key/a', certs.chainedClient)).status).toBe(200);
  });

  it('issuedBy tells the issuing CA apart', () => {
    const pem = (file: string) => new X509Certificate(readFileSync(file));
    expect(issuedBy(pem(certs.client.cert), [pem(certs.peerCa), pem(certs.clientCa)])).toBe(true);
    expect(issuedBy(pem(certs.client.cert), [pem(certs.peerCa)])).toBe(false);
    expect(issuedBy(pem(certs.node.cert), [pem(certs.peerCa)])).toBe(true);
    expect(issuedBy(pem(certs.selfSigned.cert), [pem(certs.clientCa)])).toBe(false);
  });
});
