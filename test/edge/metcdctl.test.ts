// metcdctl, spawned as a user runs it, against the edge: real workerd behind the Worker's URL
// (one endpoint fronts every peer). Keys, etcdctl txn lines, tables, endpoint status and health
// of every member with --cluster (through ?peer=, as the edge's members have no URL), a command
// run holding a lock, an election listened to, and a snapshot saved and verified.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type EdgeCluster } from './harness.ts';
import { metcdctl, type Ctl } from '../support/metcdctl.ts';
import { waitFor } from '../support/wait.ts';

let c: EdgeCluster;
let ctl: Ctl;
let url: string;
const dir = mkdtempSync(path.join(tmpdir(), 'metcdctl-edge-'));

beforeAll(async () => {
  c = await startCluster();
  await c.leader();
  url = (await c.server.listen()).url.origin;
  ctl = metcdctl({ globals: ['--endpoints', url], token: '' });
});

afterAll(async () => {
  await c?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('metcdctl against the edge', () => {
  it('puts, gets, transacts and prints tables through the Worker', async () => {
    expect(await ctl.ok(['put', 'edge/a', '1'])).toBe('OK\n');
    expect(await ctl.ok(['get', 'edge/a'])).toBe('edge/a\n1\n');
    const lines = ['value("edge/a") = "1"', '', 'put edge/a 2', 'get edge/a', '', 'del edge/a', ''].join('\n');
    expect(await ctl.ok(['txn', '-i'], { stdin: lines })).toBe('SUCCESS\n\nOK\n\nedge/a\n2\n');
    expect(await ctl.ok(['get', 'edge/', '--prefix', '-w', 'table'])).toMatch(/│ KEY\s+│ VALUE │[\s\S]*│ edge\/a │ 2\s+│/);
    const leader = await c.leader();
    const members = await ctl.ok(['member', 'list']);
    expect(members.trim().split('\n').sort()).toEqual(
      ['p1', 'p2', 'p3'].map((id) => expect.stringMatching(new RegExp(`^${id}, voter, .*, ${id === leader}$`))),
    );
  });

  it('reports the status and health of every member with --cluster', async () => {
    const status = (await ctl.ok(['endpoint', 'status', '--cluster'])).trim().split('\n');
    expect(status.map((l) => l.split(', ')[1]).sort()).toEqual(['p1', 'p2', 'p3']);
    for (const line of status) expect(line).toMatch(new RegExp(`^${url}/?\\?peer=(p\\d), \\1, (leader|follower), term \\d+`));
    const health = (await ctl.ok(['endpoint', 'health', '--cluster'])).trim().split('\n');
    expect(health).toHaveLength(3);
    for (const line of health) expect(line).toMatch(/\?peer=p\d is healthy: successfully answered \/health/);
    // without --cluster: the one endpoint given
    expect((await ctl.ok(['endpoint', 'status'])).trim().split('\n')).toHaveLength(1);
  });

  it('runs a command holding a lock, and listens to an election', async () => {
    const r = await ctl.run(['lock', 'edge-jobs', 'sh', '-c', 'echo "$ETCD_LOCK_KEY"; exit 7']);
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/^lock\/edge-jobs\/\w+\n$/);
    expect(await ctl.ok(['get', 'lock/edge-jobs/', '--prefix'])).toBe('');
    const listener = await ctl.start(['elect', '-l', 'edge-sched'], /^$/);
    const a = await ctl.start(['elect', 'edge-sched', 'edge-a', '--ttl', '5'], /edge-a\n/);
    await waitFor('the listener to print edge-a', 15_000, async () => (/edge-a\n/.test(listener.out()) ? true : undefined));
    a.proc.kill('SIGINT');
    expect((await a.result).code).toBe(0);
    listener.proc.kill('SIGINT');
    const heard = await listener.result;
    expect(heard.code).toBe(0);
    expect(heard.stdout).toMatch(/^election\/edge-sched\/\w+\nedge-a\n$/);
  });

  it('saves a snapshot and verifies it', async () => {
    await ctl.ok(['put', 'edge/snap', 'x']);
    const file = path.join(dir, 'edge.metcd');
    expect(await ctl.ok(['snapshot', 'save', file])).toMatch(/^Snapshot saved at .*edge\.metcd \(revision \d+\)\n$/);
    const status = JSON.parse(await ctl.ok(['snapshot', 'status', file, '-w', 'json'])) as { totalKey: number; clusterId: string };
    expect(status.totalKey).toBeGreaterThan(0);
  });
});
