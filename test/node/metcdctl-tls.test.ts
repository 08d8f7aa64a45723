// metcdctl's TLS flags against a 3-node cluster over HTTPS with client certificates
// (--client-cert-auth), certificates made at run time: --cacert alone is refused by the nodes,
// --cacert with --cert/--key works through a follower (the leader's https redirect is followed
// with the same certificate), no --cacert fails the server's verification unless
// --insecure-skip-tls-verify, and --cert without --key is a usage error.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NodeProcess } from '../support/node-process.ts';
import { makeTestCerts, type TestCerts } from '../support/certs.ts';
import { metcdctl, type Ctl } from '../support/metcdctl.ts';
import { waitFor } from '../support/wait.ts';
import { startHttpsNodes } from './https-nodes.ts';

const root = mkdtempSync(path.join(tmpdir(), 'metcdctl-tls-'));
const nodes: NodeProcess[] = [];
let certs: TestCerts;
let endpoints: string;
let withCert: Ctl;

beforeAll(async () => {
  mkdirSync(path.join(root, 'certs'));
  certs = makeTestCerts(path.join(root, 'certs'));
  const tls = ['--cert-file', certs.node.cert, '--key-file', certs.node.key, '--trusted-ca-file', certs.clientCa, '--client-cert-auth'];
  const peerTls = ['--peer-cert-file', certs.node.cert, '--peer-key-file', certs.node.key, '--peer-trusted-ca-file', certs.peerCa];
  nodes.push(
    ...(await startHttpsNodes((id, port) => [
      ...['--id', id, '--http', `127.0.0.1:${port}`, '--data-dir', path.join(root, id), '--engine', 'memory', '--tick-ms', '50'],
      ...['--cluster-token', 'tls-token', '--cluster-id', 'ctl-tls', ...tls, ...peerTls],
    ])),
  );
  endpoints = nodes.map((n) => `https://127.0.0.1:${n.port}`).join(',');
  withCert = metcdctl({
    globals: ['--endpoints', endpoints, '--cacert', certs.peerCa, '--cert', certs.client.cert, '--key', certs.client.key],
    token: '',
  });
  await waitFor('a leader (a write over TLS)', 30_000, async () =>
    (await withCert.run(['put', 'tls/ready', '1'])).code === 0 ? true : undefined,
  );
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  rmSync(root, { recursive: true, force: true });
});

describe('metcdctl over TLS', () => {
  it('writes and reads with --cacert, --cert and --key, through whichever node it reaches first', async () => {
    expect(await withCert.ok(['put', 'tls/a', 'secret'])).toBe('OK\n');
    expect(await withCert.ok(['get', 'tls/a'])).toBe('tls/a\nsecret\n');
    const members = await withCert.ok(['member', 'list']);
    expect(members.trim().split('\n')).toHaveLength(3);
    expect(members).toMatch(/https:\/\/127\.0\.0\.1:\d+/);
    expect((await withCert.ok(['endpoint', 'health', '--cluster'])).trim().split('\n')).toHaveLength(3);
  });

  it('is refused without a client certificate, and fails verification without the CA', async () => {
    const noCert = metcdctl({ globals: ['--endpoints', endpoints, '--cacert', certs.peerCa], token: '' });
    const refused = await noCert.run(['get', 'tls/a']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^Error: .*\(401 \w+\)\n$/);
    const noCa = metcdctl({
      globals: ['--endpoints', endpoints, '--cert', certs.client.cert, '--key', certs.client.key, '--command-timeout', '2s'],
      token: '',
    });
    const unverified = await noCa.run(['get', 'tls/a']);
    expect(unverified.code).toBe(1);
    expect(unverified.stderr).toMatch(/^Error: .*(certificate|CERT)/);
    expect(await noCa.ok(['get', 'tls/a', '--insecure-skip-tls-verify'])).toBe('tls/a\nsecret\n');
  });

  it('refuses --cert without --key, and a CA file that does not exist, as bad arguments', async () => {
    const half = await metcdctl({ globals: ['--endpoints', endpoints, '--cert', certs.client.cert], token: '' }).run(['get', 'x']);
    expect(half.code).toBe(128);
    expect(half.stderr).toBe('Error: --cert and --key go together\n');
    const missing = await metcdctl({ globals: ['--endpoints', endpoints, '--cacert', path.join(root, 'nope.pem')], token: '' }).run([
      'get',
      'x',
    ]);
    expect(missing.code).toBe(128);
    expect(missing.stderr).toMatch(/^Error: --cacert .*nope\.pem: ENOENT/);
  });
});
