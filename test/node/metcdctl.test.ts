// metcdctl, spawned through its bin launcher as a user runs it, against one real 3-node Node
// cluster with a root token: every command's output and exit code, the leader followed from a
// follower endpoint, etcdctl's `Error: …` and exit 1 on a refusal, 128 on bad arguments; the
// long-running commands (watch, lock, lease keep-alive) stopped with SIGINT as Ctrl-C does.

import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';
import { metcdctl, type Ctl } from '../support/metcdctl.ts';

const BIN = new URL('../../node-runtime/bin/metcdctl.mjs', import.meta.url).pathname;
const NODE = process.execPath;
const ROOT = 'metcdctl-test-root-token-0123456789';
const cluster = new ProcCluster({ engine: 'memory', rootToken: ROOT });
let dir: string;
let endpoints: string;
let tool: Ctl;

beforeAll(async () => {
  await cluster.start();
  dir = mkdtempSync(path.join(tmpdir(), 'metcdctl-'));
  const leader = await cluster.leader({ all: true });
  // a follower first: every write is redirected, with the token
  endpoints = [...cluster.live().filter((n) => n !== leader), leader].map((n) => n.url).join(',');
  tool = metcdctl({ globals: ['--endpoints', endpoints], token: ROOT });
});
afterAll(async () => {
  await cluster.stopAll();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const ctl = (args: string[], opts: { stdin?: string; token?: string | null } = {}) =>
  tool.run(args, {
    ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
    ...(opts.token === undefined ? {} : { token: opts.token ?? '' }),
  });
const ok = (args: string[], opts: { stdin?: string } = {}) => tool.ok(args, opts);
const startUntil = (args: string[], until: RegExp) => tool.start(args, until);

describe('metcdctl', () => {
  it('puts, gets (prefix, limit, rev, value only, json) and deletes', async () => {
    expect(await ok(['put', 'app/a', '1'])).toBe('OK\n');
    expect(await ok(['put', 'app/b'], { stdin: 'from stdin' })).toBe('OK\n');
    expect(await ok(['get', 'app/a'])).toBe('app/a\n1\n');
    expect(await ok(['get', 'app/', '--prefix'])).toBe('app/a\n1\napp/b\nfrom stdin\n');
    expect(await ok(['get', 'app/', '--prefix', '--limit', '1', '--print-value-only'])).toBe('1\n');
    expect(await ok(['get', 'app/', '--prefix', '--keys-only'])).toBe('app/a\napp/b\n');
    const json = JSON.parse(await ok(['get', 'app/a', '-w', 'json'])) as { kvs: Array<{ modRevision: number; version: number }> };
    const rev = json.kvs[0]!.modRevision;
    await ok(['put', 'app/a', '2']);
    expect(await ok(['get', 'app/a', '--rev', String(rev), '--print-value-only'])).toBe('1\n');
    expect(await ok(['get', 'app/missing'])).toBe('');
    expect(await ok(['del', 'app/a'])).toBe('1\n');
    expect(await ok(['del', 'app/', '--prefix'])).toBe('1\n');
    expect(await ok(['get', 'app/', '--prefix'])).toBe('');
  });

  it('runs a transaction from a file and from stdin', async () => {
    const body = JSON.stringify({
      compare: [{ key: 'tx/lock', target: 'createRevision', result: '==', value: 0 }],
      success: [{ put: { key: 'tx/lock', value: 'me' } }],
      failure: [{ get: { key: 'tx/lock' } }],
    });
    const file = path.join(dir, 'txn.json');
    writeFileSync(file, body);
    expect(await ok(['txn', file])).toBe('SUCCESS\n\nOK\n');
    expect(await ok(['txn'], { stdin: body })).toBe('FAILURE\n\ntx/lock\nme\n');
  });

  it('prints Error: and exits 1 on a refusal, 128 on bad arguments', async () => {
    const denied = await ctl(['get', 'x'], { token: 'wrong-token-wrong-token' });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^Error: .*\(401 unauthenticated\)\n$/);
    const missing = await ctl(['lease', 'timetolive', '424242']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^Error: .*lease_not_found/);
    const bad = await ctl(['put']);
    expect(bad.code).toBe(128);
    expect(bad.stderr).toMatch(/^Error: put command needs/);
    const unknownFlag = await ctl(['get', 'x', '--bogus']);
    expect(unknownFlag.code).toBe(128);
    const unknownCommand = await ctl(['frobnicate']);
    expect(unknownCommand.code).toBe(128);
    expect(unknownCommand.stderr).toMatch(/unknown command "frobnicate"/);
    const unreachable = spawn(NODE, [BIN, '--endpoints', 'http://127.0.0.1:1', '--command-timeout', '300ms', 'get', 'x'], {
      stdio: 'pipe',
    });
    let err = '';
    unreachable.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(unreachable, 'exit')) as [number];
    expect(code).toBe(1);
    expect(err).toMatch(/^Error: context deadline exceeded/);
  });

  it('watches a prefix from a revision and until Ctrl-C', async () => {
    const first = JSON.parse(await ok(['put', 'w/a', '1', '-w', 'json'])) as { revision: number };
    const w = await startUntil(['watch', 'w/', '--prefix', '--rev', String(first.revision)], /PUT\nw\/a\n1\n/);
    await ok(['put', 'w/b', '2']);
    await ok(['del', 'w/a']);
    await waitFor('the watch to print the delete', 10_000, async () => (w.out().includes('DELETE\nw/a\n') ? true : undefined));
    w.proc.kill('SIGINT');
    const r = await w.result;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('PUT\nw/a\n1\nPUT\nw/b\n2\nDELETE\nw/a\n');
  });

  it('grants, keeps alive, inspects and revokes a lease', async () => {
    const granted = await ok(['lease', 'grant', '30']);
    const id = /^lease (\d+) granted with TTL\(30s\)\n$/.exec(granted)?.[1];
    expect(id).toBeDefined();
    await ok(['put', 'l/k', 'v', '--lease', id!]);
    expect(await ok(['lease', 'keep-alive', id!, '--once'])).toBe(`lease ${id} keepalived with TTL(30)\n`);
    expect(await ok(['lease', 'timetolive', id!, '--keys'])).toMatch(
      new RegExp(`^lease ${id} granted with TTL\\(30s\\), remaining\\(\\d+s\\), attached keys\\(\\[l/k\\]\\)\\n$`),
    );
    expect(await ok(['lease', 'list'])).toMatch(new RegExp(`^found \\d+ leases\n(\\d+\n)*${id}\n`));
    expect(await ok(['lease', 'list', '-w', 'table'])).toMatch(new RegExp(`│ ${id} +│ 30 +│`));
    expect(await ok(['lease', 'revoke', id!])).toBe(`lease ${id} revoked\n`);
    expect(await ok(['lease', 'list'])).not.toMatch(new RegExp(`^${id}$`, 'm'));
    expect(await ok(['get', 'l/k'])).toBe('');
  });

  it('holds a lock until Ctrl-C, printing the key and the fencing token, then releases it', async () => {
    const a = await startUntil(['lock', 'jobs', '--ttl', '5'], /fencing token \d+\n/);
    const [key, token] = a.out().trim().split('\n');
    expect(key).toMatch(/^lock\/jobs\//);
    const tokenA = Number(/fencing token (\d+)/.exec(token!)![1]);
    // a second holder waits, then gets a larger token once the first is interrupted
    const b = spawn(NODE, [BIN, '--endpoints', endpoints, 'lock', 'jobs', '--ttl', '5'], { env: { ...process.env, METCDCTL_TOKEN: ROOT } });
    let bOut = '';
    b.stdout.on('data', (d: Buffer) => (bOut += d.toString()));
    await new Promise((r) => setTimeout(r, 700));
    expect(bOut).toBe('');
    a.proc.kill('SIGINT');
    expect((await a.result).code).toBe(0);
    await waitFor('the second holder', 15_000, async () => (/fencing token \d+/.test(bOut) ? true : undefined));
    expect(Number(/fencing token (\d+)/.exec(bOut)![1])).toBeGreaterThan(tokenA);
    b.kill('SIGINT');
    const [code] = (await once(b, 'exit')) as [number];
    expect(code).toBe(0);
    expect(await ok(['get', 'lock/jobs/', '--prefix'])).toBe(''); // released
  });

  it('campaigns in an election until Ctrl-C', async () => {
    const e = await startUntil(['elect', 'sched', 'node-a', '--ttl', '5'], /node-a\n/);
    expect(e.out()).toMatch(/^election\/sched\/\w+\nnode-a\n$/);
    e.proc.kill('SIGINT');
    expect((await e.result).code).toBe(0);
  });

  it('lists members and reports each endpoint status and health', async () => {
    const leader = await cluster.leader({ all: true });
    const members = await ok(['member', 'list']);
    expect(members.trim().split('\n').sort()).toEqual(
      [...cluster.nodes.values()].map((n) => `${n.id}, voter, ${n.url}, ${n.id === leader.id}`).sort(),
    );
    const status = await ok(['endpoint', 'status']);
    expect(status.trim().split('\n')).toHaveLength(3);
    expect(status).toMatch(new RegExp(`${leader.url}, ${leader.id}, leader, term \\d+, leader ${leader.id}`));
    const health = (await ok(['endpoint', 'health', '--cluster'])).trim().split('\n');
    expect(health).toHaveLength(3);
    for (const line of health) expect(line).toMatch(/^http:\/\/127\.0\.0\.1:\d+ is healthy: successfully answered \/health: took = /);
    const json = JSON.parse(await ok(['endpoint', 'status', '-w', 'json'])) as Array<{ id: string }>;
    expect(json.map((s) => s.id).sort()).toEqual(['n1', 'n2', 'n3']);
  });

  it('creates, lists and revokes tokens', async () => {
    const made = await ok(['auth', 'token', 'create', 'reader', '--rule', 'app/=read']);
    const [, id, secret] = /^Token (\S+) created\n(metcd_\S+)\n$/.exec(made) ?? [];
    expect(secret).toBeDefined();
    expect(await ok(['auth', 'token', 'list'])).toContain(`${id}, reader, [app/=read]`);
    const denied = await ctl(['put', 'app/x', '1'], { token: secret! });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/403 permission_denied/);
    expect(await ok(['auth', 'token', 'revoke', id!])).toBe(`Token ${id} revoked\n`);
  });

  it('saves a snapshot and verifies it; a corrupted file is refused', async () => {
    await ok(['put', 'snap/a', '1']);
    const file = path.join(dir, 'backup.metcd');
    expect(await ok(['snapshot', 'save', file])).toMatch(/^Snapshot saved at .*backup\.metcd \(revision \d+\)\n$/);
    const status = JSON.parse(await ok(['snapshot', 'status', file, '-w', 'json'])) as {
      revision: number;
      totalKey: number;
      clusterId: string;
    };
    expect(status.totalKey).toBeGreaterThan(0);
    expect(status.clusterId).toBe('test');
    const bytes = readFileSync(file);
    bytes[40] = bytes[40]! ^ 0xff;
    const bad = path.join(dir, 'bad.metcd');
    writeFileSync(bad, bytes);
    const r = await ctl(['snapshot', 'status', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error: checksum mismatch: the backup is corrupted/);
  });

  it('compacts, and moves the leader', async () => {
    const { revision } = JSON.parse(await ok(['put', 'c/a', '1', '-w', 'json'])) as { revision: number };
    expect(await ok(['compaction', String(revision)])).toBe(`compacted revision ${revision}\n`);
    const leader = await cluster.leader({ all: true });
    const to = cluster.live().find((n) => n !== leader)!;
    expect(await ok(['move-leader', to.id])).toBe(`Leadership transferred to ${to.id}\n`);
    expect((await cluster.leader({ all: true })).id).toBe(to.id);
  });

  it('reads etcdctl txn lines from stdin and with --interactive (no prompts when stdin is no TTY)', async () => {
    const lines = ['mod("etx/a") = "0"', '', 'put etx/a "one two"', 'get etx/a', '', 'del etx/a', ''].join('\n');
    expect(await ok(['txn'], { stdin: lines })).toBe('SUCCESS\n\nOK\n\netx/a\none two\n');
    // the key exists now: the compare fails and the failure branch deletes it
    expect(await ok(['txn', '--interactive'], { stdin: lines })).toBe('FAILURE\n\n1\n');
    const values = ['value("etx/b") = "x"', 'version("etx/b") > "3"', '', 'put etx/b y', ''].join('\n');
    expect(await ok(['txn', '-i'], { stdin: values })).toBe('FAILURE\n');
    const bad = await ctl(['txn', '-i'], { stdin: 'mod(etx/a) = 0\n' });
    expect(bad.code).toBe(128);
    expect(bad.stderr).toBe('Error: malformed comparison: mod(etx/a) = 0\n');
    const badRequest = await ctl(['txn'], { stdin: '\nfrobnicate etx/a\n' });
    expect(badRequest.code).toBe(128);
    expect(badRequest.stderr).toBe('Error: invalid txn request: frobnicate etx/a\n');
  });

  it('prompts for each txn section with --interactive on a terminal (util-linux script gives it one)', async () => {
    const command = [NODE, BIN, '--endpoints', endpoints, 'txn', '-i'].map((w) => `'${w}'`).join(' ');
    const proc = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, METCDCTL_TOKEN: ROOT }, stdio: 'pipe' });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const prompted = (text: string) => waitFor(`the prompt ${text}`, 10_000, async () => (out.includes(text) ? true : undefined));
    await prompted('compares:');
    proc.stdin.write('create("tty/k") = "0"\n\n');
    await prompted('success requests (get, put, del):');
    proc.stdin.write('put tty/k typed\n\n');
    await prompted('failure requests (get, put, del):');
    proc.stdin.write('\n');
    const [code] = (await once(proc, 'exit')) as [number];
    expect(code).toBe(0);
    expect(out.replaceAll('\r', '')).toMatch(/failure requests \(get, put, del\):\n(\n)*SUCCESS\n\nOK\n$/);
    expect(await ok(['get', 'tty/k', '--print-value-only'])).toBe('typed\n');
  });

  it('prints tables (-w table) for get, member list, endpoint status and health, token list', async () => {
    await ok(['put', 'tab/a', '1']);
    await ok(['put', 'tab/b', '2']);
    const rows = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('│') || l.startsWith('|'))
        .map((l) =>
          l
            .split(/[│|]/)
            .slice(1, -1)
            .map((c) => c.trim()),
        );
    expect(rows(await ok(['get', 'tab/', '--prefix', '-w', 'table']))).toEqual([
      ['KEY', 'VALUE'],
      ['tab/a', '1'],
      ['tab/b', '2'],
    ]);
    const one = rows(await ok(['get', 'tab/a', '-w', 'table']));
    expect(one[0]).toEqual(['KEY', 'VALUE', 'CREATE REVISION', 'MOD REVISION', 'VERSION']);
    expect(one[1]!.slice(0, 2)).toEqual(['tab/a', '1']);
    const leader = await cluster.leader({ all: true });
    const members = rows(await ok(['member', 'list', '-w', 'table']));
    expect(members[0]).toEqual(['ID', 'ROLE', 'ADDRESS', 'IS LEADER']);
    expect(members.slice(1).sort()).toEqual(
      [...cluster.nodes.values()].map((n) => [n.id, 'voter', n.url, String(n.id === leader.id)]).sort(),
    );
    const status = rows(await ok(['endpoint', 'status', '--cluster', '-w', 'table']));
    expect(status[0]!.slice(0, 3)).toEqual(['ENDPOINT', 'ID', 'ROLE']);
    expect(
      status
        .slice(1)
        .map((r) => r[1])
        .sort(),
    ).toEqual(['n1', 'n2', 'n3']);
    const health = rows(await ok(['endpoint', 'health', '-w', 'table']));
    expect(health.slice(1).map((r) => r[1])).toEqual(['true', 'true', 'true']);
    const made = await ok(['auth', 'token', 'create', 'tabled', '--rule', 'tab/=read']);
    const id = /^Token (\S+) created/.exec(made)![1]!;
    const tokens = rows(await ok(['auth', 'token', 'list', '-w', 'table']));
    expect(tokens[0]).toEqual(['ID', 'NAME', 'RULES', 'ADMIN', 'STATUS', 'EXPIRES']);
    expect(tokens).toContainEqual([id, 'tabled', 'tab/=read', 'false', 'false', 'never']);
    await ok(['auth', 'token', 'revoke', id]);
    const bad = await ctl(['get', 'tab/a', '-w', 'yaml']);
    expect(bad.code).toBe(128);
  });

  it('runs a command holding a lock, with the key and fencing token in its environment, and exits with its code', async () => {
    const r = await ctl(['lock', 'cmdjobs', 'sh', '-c', 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV $METCD_LOCK_REV"; exit 3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    const [key, rev, metcdRev] = r.stdout.trim().split(' ');
    expect(key).toMatch(/^lock\/cmdjobs\/\w+$/);
    expect(Number(rev)).toBeGreaterThan(0);
    expect(metcdRev).toBe(rev);
    expect(await ok(['get', 'lock/cmdjobs/', '--prefix'])).toBe(''); // released after the command
    // `--` works too, and a command that succeeds exits 0; one that cannot start is an error
    expect(await ok(['lock', 'cmdjobs', '--ttl', '5', '--', 'sh', '-c', 'echo held'])).toBe('held\n');
    const missing = await ctl(['lock', 'cmdjobs', 'no-such-command-metcd']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^Error: spawn no-such-command-metcd ENOENT/);
    expect(await ok(['get', 'lock/cmdjobs/', '--prefix'])).toBe('');
  });

  it('listens to an election (elect -l), printing each new leader', async () => {
    const listener = await startUntil(['elect', '-l', 'listened'], /^$/);
    const a = await startUntil(['elect', 'listened', 'node-a', '--ttl', '5'], /node-a\n/);
    await waitFor('the listener to print node-a', 10_000, async () => (/node-a\n/.test(listener.out()) ? true : undefined));
    a.proc.kill('SIGINT');
    expect((await a.result).code).toBe(0);
    const b = await startUntil(['elect', 'listened', 'node-b', '--ttl', '5'], /node-b\n/);
    await waitFor('the listener to print node-b', 10_000, async () => (/node-b\n/.test(listener.out()) ? true : undefined));
    b.proc.kill('SIGINT');
    expect((await b.result).code).toBe(0);
    listener.proc.kill('SIGINT');
    const r = await listener.result;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^election\/listened\/\w+\nnode-a\nelection\/listened\/\w+\nnode-b\n$/);
    const noProposal = await ctl(['elect', 'listened']);
    expect(noProposal.code).toBe(128);
    expect(noProposal.stderr).toBe('Error: no proposal argument but -l not set\n');
  });

  it('gives up at --command-timeout on a peer that never answers, and on a snapshot that stalls', async () => {
    // Accepts connections and reads requests but never answers (/snapshot: headers, then nothing).
    const silent: Server = createServer((req, res) => {
      if (req.url?.startsWith('/snapshot') === true) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Metcd-Revision': '1' });
        res.write('METCD');
      }
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      for (const args of [
        ['get', 'x'],
        ['member', 'list'],
        ['snapshot', 'save', path.join(dir, 'stalled.metcd')],
      ]) {
        const r = await tool.run(['--endpoints', url, '--command-timeout', '400ms', ...args]);
        expect({ args, code: r.code }).toEqual({ args, code: 1 });
        expect(r.stderr).toMatch(/^Error: context deadline exceeded/);
      }
      expect(() => readFileSync(path.join(dir, 'stalled.metcd.part'))).toThrow(); // no partial file left
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
