// The CLI as a user meets it: --help, and one clear line plus a non-zero exit for every way a
// start can be wrong (bad flags, port in use, unreachable join target, someone else's data dir).

import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, freePort } from './proc-cluster.ts';
import { FLAGS, FlagError, parseFlags } from '../../node-runtime/flags.ts';
import { runCli } from '../support/node-process.ts';

const root = mkdtempSync(path.join(tmpdir(), 'metcd-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const run = runCli;

/** The last stderr line: the one a user reads. */
const lastLine = (s: string) => s.trim().split('\n').pop() ?? '';

describe('metcd CLI', () => {
  it('--help lists every flag with its default', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const [name, spec] of Object.entries(FLAGS)) {
      expect(r.stdout).toContain(`--${name}`);
      expect(r.stdout).toContain(`(default: ${spec.default})`);
    }
  });

  it.each([
    [['--id', 'n1', '--bogus'], "unknown flag '--bogus'"],
    [['--bootstrap'], '--id is required'],
    [['--id', 'n1', '--engine', 'bolt', '--bootstrap'], '--engine: "bolt" is not one of memory, sqlite, leveldb'],
    [['--id', 'n1', '--http', 'nowhere', '--bootstrap'], '--http: expected host:port'],
    [['--id', 'n1', '--bootstrap', '--join', 'http://127.0.0.1:3379'], 'use only one of --bootstrap, --join, --initial-cluster'],
    [['--id', 'n1', '--initial-cluster', 'n2=http://127.0.0.1:1'], '--initial-cluster must include this node (n1)'],
  ])('refuses %j with one line and exit 2', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(message);
  });

  it('refuses a port in use', async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const r = await run(['--id', 'n1', '--http', `127.0.0.1:${port}`, '--data-dir', path.join(root, 'port'), '--bootstrap']);
      expect(r.code).toBe(1);
      expect(lastLine(r.stderr)).toBe(`metcd: cannot listen on 127.0.0.1:${port}: the port is in use`);
    } finally {
      blocker.close();
    }
  });

  it('gives up on an unreachable join target', async () => {
    const [port, nobody] = [await freePort(), await freePort()];
    const r = await run([
      '--id',
      'n2',
      '--http',
      `127.0.0.1:${port}`,
      '--data-dir',
      path.join(root, 'join'),
      '--join',
      `http://127.0.0.1:${nobody}`,
      '--join-timeout-ms',
      '1000',
      '--log-level',
      'error',
    ]);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(`metcd: cannot join via http://127.0.0.1:${nobody} within 1000 ms: ECONNREFUSED`);
  });

  it('refuses a new data dir without a start flag, and a data dir of another engine or node', async () => {
    const dir = path.join(root, 'owned');
    const port = await freePort();
    const base = ['--http', `127.0.0.1:${port}`, '--data-dir', dir];
    const fresh = await run(['--id', 'n1', ...base]);
    expect(fresh.code).toBe(1);
    expect(lastLine(fresh.stderr)).toContain('is new: pass --bootstrap, --join <url> or --initial-cluster');

    // Create it as n1/sqlite (a node that starts, then stops on SIGTERM).
    const child = spawn(process.execPath, [CLI, '--id', 'n1', ...base, '--engine', 'sqlite', '--bootstrap'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => child.stderr!.on('data', () => out.includes('node started') && resolve()));
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);

    const engine = await run(['--id', 'n1', ...base, '--engine', 'leveldb']);
    expect(engine.code).toBe(1);
    expect(lastLine(engine.stderr)).toContain('was created with --engine sqlite, not leveldb');
    const node = await run(['--id', 'n7', ...base, '--engine', 'sqlite']);
    expect(node.code).toBe(1);
    expect(lastLine(node.stderr)).toContain('belongs to node n1, not n7');
  });
});

describe('parseFlags', () => {
  it('fills defaults from --http and the environment', () => {
    const p = parseFlags(['--id', 'n1', '--bootstrap'], { METCD_CLUSTER_TOKEN: 'env-secret' });
    expect(p.help).toBe(false);
    if (p.help) return;
    expect(p.config).toMatchObject({
      listenHost: '127.0.0.1',
      listenPort: 3379,
      advertise: 'http://127.0.0.1:3379',
      dataDir: './data/n1',
      engine: 'sqlite',
      start: { kind: 'bootstrap' },
      clusterToken: 'env-secret',
      tickMs: 100,
      mode: 'redirect',
      quotaBytes: 2 * 1024 ** 3, // sqlite holds the key space on disk: etcd's default quota
      cacheBytes: 64 * 1024 ** 2,
      offLoopReads: 'auto',
      heapTrim: true,
    });
    const t = parseFlags(['--id', 'n1', '--bootstrap', '--no-heap-trim'], {});
    expect(t.help === false && t.config.heapTrim).toBe(false);
    const m = parseFlags(['--id', 'n1', '--bootstrap', '--engine', 'memory'], {});
    expect(m.help === false && m.config.quotaBytes).toBe(512 * 1024 ** 2);
    const c = parseFlags(['--id', 'n1', '--bootstrap', '--cache-bytes', '0'], {});
    expect(c.help === false && c.config.cacheBytes).toBe(0);
    expect(() => parseFlags(['--id', 'n1', '--bootstrap', '--cache-bytes', '-1'], {})).toThrow(FlagError);
    expect(() => parseFlags(['--id', 'n1', '--bootstrap', '--cache-bytes', String(65 * 1024 ** 3)], {})).toThrow(FlagError);
    for (const mode of ['auto', 'always', 'never'] as const) {
      const o = parseFlags(['--id', 'n1', '--bootstrap', '--off-loop-reads', mode], {});
      expect(o.help === false && o.config.offLoopReads).toBe(mode);
    }
    for (const bad of ['', 'sometimes', 'ALWAYS'])
      expect(() => parseFlags(['--id', 'n1', '--bootstrap', '--off-loop-reads', bad], {}), bad).toThrow(
        /--off-loop-reads: expected one of auto, always, never/,
      );
    const q = parseFlags(['--id', 'n1', '--bootstrap', '--quota-bytes', '1000'], {});
    expect(q.help === false && q.config.quotaBytes).toBe(1000);
    expect(() => parseFlags(['--id', 'n1', '--bootstrap', '--quota-bytes', '0'], {})).toThrow(FlagError);
    const chunk = (v: string) => parseFlags(['--id', 'n1', '--bootstrap', '--snapshot-chunk-bytes', v], {});
    const d = parseFlags(['--id', 'n1', '--bootstrap'], {});
    expect(d.help === false && d.config.snapshotChunkBytes).toBe(512 * 1024);
    for (const ok of ['1024', String(4 * 1024 ** 2)])
      expect((chunk(ok) as { config: { snapshotChunkBytes: number } }).config.snapshotChunkBytes).toBe(Number(ok));
    for (const bad of ['1023', String(4 * 1024 ** 2 + 1), '0', '-5', '1e4']) expect(() => chunk(bad), bad).toThrow(FlagError);
  });

  it('takes the advertised URL from --initial-cluster and checks it against --advertise', () => {
    const p = parseFlags(['--id', 'n2', '--http', '0.0.0.0:3380', '--initial-cluster', 'n1=http://a:1,n2=http://b:2'], {
      METCD_ROOT_TOKEN: 'a-root-token-of-20ch',
      METCD_CLUSTER_TOKEN: 'c',
    });
    if (p.help) throw new Error('help');
    expect(p.config.advertise).toBe('http://b:2');
    expect(p.config.start).toEqual({ kind: 'initial-cluster', members: { n1: 'http://a:1', n2: 'http://b:2' } });
    expect(() => parseFlags(['--id', 'n2', '--advertise', 'http://c:3', '--initial-cluster', 'n1=http://a:1,n2=http://b:2'], {})).toThrow(
      FlagError,
    );
    expect(() => parseFlags(['--id', 'n1', '--initial-cluster', 'n1=http://a:1,n1=http://a:2'], {})).toThrow('listed twice');
    expect(() => parseFlags(['--id', 'n1', '--join', 'http://a:1/path'], {})).toThrow('must not have a path');
    expect(() => parseFlags(['--id', 'n1', '--heartbeat-ticks', '10'], {})).toThrow('below --election-ticks');
  });

  it('is open on loopback without a root token, and refuses an address others can reach without one unless --auth open says so', () => {
    const config = (argv: string[], env: Record<string, string> = {}) => {
      const p = parseFlags(['--id', 'n1', '--bootstrap', ...argv], env);
      if (p.help) throw new Error('help');
      return p.config;
    };
    expect(config([])).toMatchObject({ auth: 'open', rootToken: null });
    expect(config(['--http', '[::1]:3379'])).toMatchObject({ auth: 'open' });
    expect(config([], { METCD_ROOT_TOKEN: 'from-env' })).toMatchObject({ auth: 'token', rootToken: { from: 'env', value: 'from-env' } });
    expect(config(['--root-token-file', '/etc/metcd/root'])).toMatchObject({
      auth: 'token',
      rootToken: { from: 'file', path: '/etc/metcd/root' },
    });
    for (const http of ['0.0.0.0:3379', '[::]:3379', '10.0.0.5:3379', 'example.com:3379']) {
      expect(() => config(['--http', http]), http).toThrow(/reachable from other machines, and no root token is set/);
      expect(() => config(['--http', http, '--root-token-file', 'f']), http).toThrow(/peers need a --cluster-token/);
      expect(config(['--http', http, '--root-token-file', 'f', '--cluster-token', 'c']), http).toMatchObject({ auth: 'token' });
      expect(config(['--http', http, '--auth', 'open']), http).toMatchObject({ auth: 'open', rootToken: null });
    }
    expect(() => config(['--auth', 'open', '--root-token-file', 'f'])).toThrow(/drop one of them/);
    expect(() => config(['--auth', 'token'])).toThrow(/needs a root token/);
    expect(() => config(['--auth', 'maybe'])).toThrow(/expected token or open/);
  });
});

describe('starting with access control', () => {
  it('refuses, with one line and no secret, a non-loopback address without a root token, and a root token file that is missing or weak', async () => {
    const port = await freePort();
    const exposed = await run(['--id', 'n1', '--http', `0.0.0.0:${port}`, '--data-dir', path.join(root, 'exposed'), '--bootstrap']);
    expect(exposed.code).toBe(2);
    expect(lastLine(exposed.stderr)).toMatch(/reachable from other machines, and no root token is set/);
    const missing = path.join(root, 'no-such-token');
    const absent = await run([
      '--id',
      'n1',
      '--http',
      `127.0.0.1:${port}`,
      '--data-dir',
      path.join(root, 'a'),
      '--root-token-file',
      missing,
      '--bootstrap',
    ]);
    expect(absent.code).toBe(1);
    expect(lastLine(absent.stderr)).toContain(`--root-token-file ${missing}: ENOENT`);
    const weakFile = path.join(root, 'weak-token');
    writeFileSync(weakFile, 'hunter2\n');
    const weak = await run([
      '--id',
      'n1',
      '--http',
      `127.0.0.1:${port}`,
      '--data-dir',
      path.join(root, 'w'),
      '--root-token-file',
      weakFile,
      '--bootstrap',
    ]);
    expect(weak.code).toBe(1);
    expect(lastLine(weak.stderr)).toContain('at least 16 characters');
    expect(weak.stderr).not.toContain('hunter2');
  });
});
