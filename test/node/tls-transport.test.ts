// Raft messages to an https:// member, in one process: the transport presents the peer
// certificate and verifies the member's against the peer CA. Without that CA (the system's
// CAs only) or without a certificate where one is required, nothing is delivered, and the log
// says which.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Message } from '../../worker/raft/types.ts';
import type { Peer } from '../../worker/peer/peer.ts';
import { createFront } from '../../node-runtime/front.ts';
import { startHttpServer, type RunningServer } from '../../node-runtime/http-server.ts';
import { HttpTransport } from '../../node-runtime/transport.ts';
import { createLogger, silentLogger } from '../../node-runtime/log.ts';
import { loadTls } from '../../node-runtime/tls-files.ts';
import type { PeerTlsOptions } from '../../node-runtime/peer-agents.ts';
import type { TlsFlags } from '../../node-runtime/tls-flags.ts';
import { makeTestCerts, type TestCerts } from '../support/certs.ts';

const hb = (i: number): Message => ({ type: 'heartbeat', from: 'n1', to: 'n2', term: i, commit: 0 });
const root = mkdtempSync(path.join(tmpdir(), 'metcd-tls-transport-'));
let certs: TestCerts;
let server: RunningServer;
const received: Message[] = [];
const cleanups: Array<() => void> = [];

/** Every TLS flag off; each case turns on what it needs. */
function noFlags(): TlsFlags {
  return {
    certFile: '',
    keyFile: '',
    trustedCaFile: '',
    clientCertAuth: false,
    peerCertFile: '',
    peerKeyFile: '',
    peerTrustedCaFile: '',
    peerClientCertAuth: false,
  };
}

beforeAll(async () => {
  certs = makeTestCerts(root);
  const tls = loadTls({
    ...noFlags(),
    certFile: certs.node.cert,
    keyFile: certs.node.key,
    peerTrustedCaFile: certs.peerCa,
    peerClientCertAuth: true,
  });
  const peer = { receive: (m: Message[]) => received.push(...m), revision: 1, leaderId: 'n1' } as unknown as Peer;
  const front = createFront({
    selfId: 'n2',
    clusterId: 'c1',
    token: 'tok',
    peer: () => peer,
    log: silentLogger,
    raftBodyBytesMax: 1024 * 1024,
    router: { handle: async () => ({ status: 200, headers: {}, body: 'routed' }) },
    certAuth: tls.certAuth,
  });
  server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    handler: front,
    bodyBytesMax: 1024 * 1024,
    log: silentLogger,
    tls: tls.server,
  });
});

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  received.length = 0;
});

afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

function transport(tls: PeerTlsOptions, lines: string[], token = 'tok'): HttpTransport {
  const t = new HttpTransport({
    selfId: 'n1',
    advertise: 'https://127.0.0.1:1',
    clusterId: 'c1',
    token,
    addressOf: () => `https://127.0.0.1:${server.port}`,
    log: createLogger({ level: 'debug', node: 'n1', write: (line) => lines.push(line) }),
    tls,
  });
  cleanups.push(() => t.close());
  return t;
}

describe('transport to an https:// member', () => {
  it('delivers with the peer certificate, the member verified against the peer CA', async () => {
    const t = transport(
      loadTls({ ...noFlags(), peerCertFile: certs.node.cert, peerKeyFile: certs.node.key, peerTrustedCaFile: certs.peerCa }).peer,
      [],
    );
    for (let i = 1; i <= 20; i++) t.send([hb(i)]);
    await expect.poll(() => received.length, { timeout: 5000 }).toBe(20);
  });

  it("delivers nothing when it cannot verify the member's certificate (the system CAs do not know it)", async () => {
    const lines: string[] = [];
    const t = transport(loadTls({ ...noFlags(), peerCertFile: certs.node.cert, peerKeyFile: certs.node.key }).peer, lines);
    t.send([hb(1)]);
    await expect.poll(() => t.counters['dropped.send-failed'] ?? 0, { timeout: 5000 }).toBeGreaterThan(0);
    expect(received).toEqual([]);
    expect(lines.join('\n')).toMatch(/cannot deliver to peer.*(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
  });

  it('delivers nothing without a certificate to a member that requires one, and says so', async () => {
    const lines: string[] = [];
    const t = transport(loadTls({ ...noFlags(), peerTrustedCaFile: certs.peerCa }).peer, lines);
    t.send([hb(1)]);
    await expect.poll(() => t.counters['dropped.send-failed'] ?? 0, { timeout: 5000 }).toBeGreaterThan(0);
    expect(received).toEqual([]);
    expect(lines.join('\n')).toContain('peer refused our certificate (401)');
  });

  it('tells a wrong cluster token apart from a refused certificate', async () => {
    const lines: string[] = [];
    const flags = { ...noFlags(), peerCertFile: certs.node.cert, peerKeyFile: certs.node.key, peerTrustedCaFile: certs.peerCa };
    const t = transport(loadTls(flags).peer, lines, 'wrong');
    t.send([hb(1)]);
    await expect.poll(() => t.counters['dropped.send-failed'] ?? 0, { timeout: 5000 }).toBeGreaterThan(0);
    expect(lines.join('\n')).toContain('peer rejected our cluster token (401)');
    expect(lines.join('\n')).not.toContain('certificate');
  });
});
