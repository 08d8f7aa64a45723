// The TLS flags: how they fit together and with the advertised URL (parseFlags, no process), and
// the one line a user reads when a file cannot be used at start (the CLI).

import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FlagError, parseFlags } from '../../node-runtime/flags.ts';
import { parseTlsFlags } from '../../node-runtime/tls-flags.ts';
import { makeTestCerts } from '../support/certs.ts';
import { runCli } from '../support/node-process.ts';

const root = mkdtempSync(path.join(tmpdir(), 'metcd-tls-flags-'));
mkdirSync(path.join(root, 'certs'));
const certs = makeTestCerts(path.join(root, 'certs'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const serving = ['--cert-file', certs.node.cert, '--key-file', certs.node.key];
const config = (args: string[]) => {
  const p = parseFlags(['--id', 'n1', ...args], {});
  if (p.help) throw new Error('help');
  return p.config;
};

describe('TLS flags', () => {
  it('serve HTTPS and advertise https:// by default when given a certificate', () => {
    const c = config(['--bootstrap', ...serving, '--trusted-ca-file', certs.clientCa, '--client-cert-auth']);
    expect(c.advertise).toBe('https://127.0.0.1:3379');
    expect(c.tls).toMatchObject({
      certFile: certs.node.cert,
      keyFile: certs.node.key,
      trustedCaFile: certs.clientCa,
      clientCertAuth: true,
    });
    expect(c.tls.peerClientCertAuth).toBe(false);
    expect(config(['--bootstrap']).advertise).toBe('http://127.0.0.1:3379');
    expect(config(['--bootstrap']).tls.certFile).toBe('');
  });

  it('accept https:// members, join targets and peer flags on a plain-HTTP node', () => {
    const c = config(['--join', 'https://127.0.0.1:3379', '--peer-trusted-ca-file', certs.peerCa]);
    expect(c.start).toEqual({ kind: 'join', target: 'https://127.0.0.1:3379' });
    expect(c.tls.peerTrustedCaFile).toBe(certs.peerCa);
    const s = config([...serving, '--initial-cluster', 'n1=https://127.0.0.1:1,n2=https://127.0.0.1:2']);
    expect(s.advertise).toBe('https://127.0.0.1:1');
    expect(() => config(['--join', 'ftp://127.0.0.1:3379'])).toThrow('must be an http:// or https:// URL');
  });

  it.each([
    [
      ['--cert-file', '/nonexistent/cert.pem', '--key-file', certs.node.key],
      '--cert-file: cannot read "/nonexistent/cert.pem": no such file',
    ],
    [['--cert-file', certs.node.cert, '--key-file', root], `--key-file: cannot read ${JSON.stringify(root)}: it is a directory`],
    [['--trusted-ca-file', ''], '--trusted-ca-file: expected a file path'],
    [['--key-file', certs.node.key], '--key-file needs --cert-file'],
    [['--cert-file', certs.node.cert], '--cert-file needs --key-file'],
    [['--peer-cert-file', certs.node.cert], '--peer-cert-file needs --peer-key-file'],
    [['--peer-key-file', certs.node.key], '--peer-key-file needs --peer-cert-file'],
    [[...serving, '--client-cert-auth'], '--client-cert-auth needs --trusted-ca-file'],
    [[...serving, '--peer-client-cert-auth'], '--peer-client-cert-auth needs --peer-trusted-ca-file'],
    [['--trusted-ca-file', certs.clientCa, '--client-cert-auth'], '--trusted-ca-file needs --cert-file and --key-file'],
    [['--peer-trusted-ca-file', certs.peerCa, '--peer-client-cert-auth'], '--peer-client-cert-auth needs --cert-file and --key-file'],
    [['--advertise', 'https://127.0.0.1:3379'], 'is https:// but it serves plain HTTP'],
    [[...serving, '--advertise', 'http://127.0.0.1:3379'], 'is http:// but it serves HTTPS'],
    [[...serving, '--initial-cluster', 'n1=http://127.0.0.1:1,n2=https://127.0.0.1:2'], 'is http:// but it serves HTTPS'],
  ])('refuse %j', (args, message) => {
    const start = args.includes('--initial-cluster') ? [] : ['--bootstrap'];
    let err: unknown;
    try {
      config([...start, ...args]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlagError);
    expect((err as Error).message).toContain(message);
  });

  it('say why a file cannot be read (permission denied cannot be staged as root)', () => {
    const fail = (m: string): never => {
      throw new FlagError(m);
    };
    expect(() => parseTlsFlags({ 'cert-file': '/etc/key.pem' }, fail, () => 'permission denied')).toThrow(
      '--cert-file: cannot read "/etc/key.pem": permission denied',
    );
  });
});

const run = runCli;

describe('metcd CLI with TLS files', () => {
  const base = (dir: string) => [
    ...['--id', 'n1', '--http', '127.0.0.1:0', '--data-dir', path.join(root, dir), '--bootstrap'],
    ...['--cluster-token', 'secret', '--log-level', 'error'],
  ];

  it('refuses a flag mistake with one line and exit 2', async () => {
    const r = await run([...base('flag'), ...serving, '--client-cert-auth']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('metcd: --client-cert-auth needs --trusted-ca-file (the CA client certificates chain to)\n');
  });

  it.each([
    [
      ['--cert-file', certs.node.cert, '--key-file', certs.client.key],
      `--cert-file ${certs.node.cert} with --key-file ${certs.client.key}: key values mismatch`,
    ],
    [
      [...serving, '--trusted-ca-file', certs.node.key, '--client-cert-auth'],
      `--trusted-ca-file ${certs.node.key}: holds no PEM certificate`,
    ],
  ])('refuses unusable files %j at start with one line naming them, not their contents', async (args, message) => {
    const r = await run([...base('files'), ...args]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`metcd: ${message}\n`);
    expect(r.stderr).not.toContain('-----BEGIN');
  });
});
