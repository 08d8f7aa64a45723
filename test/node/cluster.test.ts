// A 3-node cluster of real metcd processes per engine, driven through its HTTP API and hurt
// with SIGKILL, SIGSTOP and damaged files. The steps share one cluster per engine and run in
// order (a script, like the README's curl sessions); every process is killed in afterAll.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ENGINE_NAMES, type EngineName } from '../../node-runtime/storage/engine.ts';
import { ProcCluster, ProcNode, putKey, readPrefix } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';
import { rawRequest } from '../support/raw-http.ts';

/** The engine's newest write-ahead log file in a node's data dir. */
function engineLog(engine: EngineName, dataDir: string): string {
  const dir = path.join(dataDir, engine);
  const names = readdirSync(dir);
  const pick = (re: RegExp) => {
    const found = names.filter((n) => re.test(n)).sort();
    if (found.length === 0) throw new Error(`no log in ${dir}: ${names.join(', ')}`);
    return path.join(dir, found[found.length - 1]!);
  };
  return engine === 'memory' ? pick(/^wal-\d+\.log$/) : engine === 'sqlite' ? pick(/^metcd\.db-wal$/) : pick(/^\d+\.log$/);
}

/** Writes `prefix-<i>` keys through the cluster until stopped; returns the acknowledged ones. */
function writeLoad(cluster: ProcCluster, prefix: string): { stop(): Promise<Set<string>>; acked: Set<string> } {
  const acked = new Set<string>();
  let running = true;
  const worker = async (w: number) => {
    for (let i = 0; running; i++) {
      const key = `${prefix}-${w}-${i}`;
      try {
        await putKey(cluster, key, `v-${key}`, 10_000);
        acked.add(key);
      } catch {
        // not acknowledged: the test only checks what was acknowledged
      }
    }
  };
  const workers = [0, 1, 2, 3].map(worker);
  return {
    acked,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      return acked;
    },
  };
}

async function expectAllOn(nodes: ProcNode[], prefix: string, keys: Set<string>, cluster: ProcCluster): Promise<void> {
  const leader = await cluster.leader();
  for (const node of nodes) {
    await cluster.caughtUp(node, leader);
    const have = await readPrefix(node, prefix);
    const missing = [...keys].filter((k) => have.get(k) !== `v-${k}`);
    expect(missing, `${node.id} misses acknowledged writes`).toEqual([]);
  }
}

describe.each(ENGINE_NAMES)('3-node cluster on %s', (engine: EngineName) => {
  const cluster = new ProcCluster({ engine, snapshotEntries: 50 });

  beforeAll(async () => {
    await cluster.start();
  });
  afterAll(async () => {
    await cluster.stopAll();
  });
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.error(`node outputs: ${cluster.dumpOutputs(`${engine}-${ctx.task.name}`)}`);
  });

  it('answers the README curl flows on every node (curl -L)', async () => {
    await cluster.withStableLeader(async (leader) => {
      const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => cluster.node(id));
      // metcd style: curl -L http://127.0.0.1:3379/hello -XPUT -d world; curl -L …/hello → world
      const put = await fetch(`${n2!.url}/hello`, { method: 'PUT', body: 'world' });
      expect(put.status).toBe(204);
      for (const n of [n1!, n2!, n3!]) {
        const res = await fetch(`${n.url}/hello`);
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('world');
        expect(Number(res.headers.get('X-Metcd-Revision'))).toBeGreaterThan(0);
      }
      // hraftd style: POST /key {"foo":"bar"}; GET /key/foo?level=consistent -L
      const post = await fetch(`${n3!.url}/key`, { method: 'POST', body: '{"foo":"bar"}' });
      expect(post.status).toBe(200);
      for (const n of [n1!, n2!, n3!]) {
        const res = await fetch(`${n.url}/key/foo?level=consistent`);
        expect(await res.json()).toEqual({ foo: 'bar' });
      }
      const del = await fetch(`${leader.url}/key/foo`, { method: 'DELETE' });
      expect(await del.json()).toMatchObject({ deleted: 1 });
      expect((await fetch(`${leader.url}/key/foo`)).status).toBe(404);
    });
  });

  it('redirects follower writes and default/consistent reads to the leader; stale reads stay', async () => {
    let run = 0;
    await cluster.withStableLeader(async (leader) => {
      const follower = cluster.live().find((n) => n.id !== leader.id)!;
      const key = `k1-${++run}`;
      const put = await fetch(`${follower.url}/${key}?ifRevision=0`, { method: 'PUT', body: 'v1', redirect: 'manual' });
      expect(put.status).toBe(307);
      expect(put.headers.get('Location')).toBe(`${leader.url}/${key}?ifRevision=0`);
      expect(put.headers.get('X-Metcd-Leader')).toBe(leader.id);
      const written = await fetch(put.headers.get('Location')!, { method: 'PUT', body: 'v1' });
      expect(written.status).toBe(204);
      // The same X-Metcd-* headers as the edge: the leader on every answer, not only redirects.
      expect(written.headers.get('X-Metcd-Leader')).toBe(leader.id);
      expect(written.headers.get('X-Metcd-Revision')).toMatch(/^\d+$/);
      for (const level of ['default', 'consistent']) {
        const res = await fetch(`${follower.url}/${key}?level=${level}`, { redirect: 'manual' });
        expect(res.status).toBe(307);
        expect(res.headers.get('Location')).toBe(`${leader.url}/${key}?level=${level}`);
      }
      // A path that a URL parser could read as another host (//evil.example/x) still sends the
      // client to the leader: Location is the leader's address plus the path, never a new host.
      const sneaky = await rawRequest(follower.url, 'PUT', '/.//evil.example/x', 'v');
      expect(sneaky.status).toBe(307);
      expect(sneaky.location).toBe(`${leader.url}//evil.example/x`);
      await cluster.caughtUp(follower, leader);
      const stale = await fetch(`${follower.url}/${key}?level=stale`, { redirect: 'manual' });
      expect(stale.status).toBe(200);
      expect(await stale.text()).toBe('v1');
      expect(stale.headers.get('X-Metcd-Leader')).toBe(leader.id);
      expect(stale.headers.get('X-Metcd-Applied-Index')).toMatch(/^\d+$/);
      expect(stale.headers.get('X-Metcd-Commit-Index')).toMatch(/^\d+$/);
      expect(stale.headers.get('X-Metcd-Last-Contact-Ms')).toMatch(/^\d+$/); // whole ms, as on the edge
      const status = await fetch(`${follower.url}/status`);
      expect(status.headers.get('X-Metcd-Leader')).toBe(leader.id);
      expect(Number.isInteger(((await status.json()) as { lastLeaderContactMs: unknown }).lastLeaderContactMs)).toBe(true);
    });
  });

  it('rejects peer traffic and membership changes without the cluster token', async () => {
    const leader = await cluster.leader();
    const raft = await fetch(`${leader.url}/raft/messages`, {
      method: 'POST',
      body: new Uint8Array([1, 0]),
      headers: { authorization: 'Bearer wrong', 'X-Metcd-Cluster': 'test' },
    });
    expect(raft.status).toBe(401);
    const join = await fetch(`${leader.url}/join`, { method: 'POST', body: '{"id":"evil","address":"http://127.0.0.1:1"}' });
    expect(join.status).toBe(401);
    const remove = await fetch(`${leader.url}/members/n2`, { method: 'DELETE', headers: { authorization: 'Bearer wrong' } });
    expect(remove.status).toBe(401);
    // The front door's refusals carry the headers every peer answer carries.
    for (const refused of [raft, join, remove]) {
      expect(refused.headers.get('X-Metcd-Revision')).toMatch(/^\d+$/);
      expect(refused.headers.get('X-Metcd-Leader')).toBe(leader.id);
    }
    // Every spelling of a guarded path, sent as is (curl --path-as-is): the router resolves them
    // all to the guarded route, so none changes membership or leadership without the token.
    const follower = cluster.live().find((n) => n.id !== leader.id)!;
    for (const [method, target, body] of [
      ['POST', '/transfer-leader/', `{"id":"${follower.id}"}`],
      ['POST', '/x/../transfer-leader/', `{"id":"${follower.id}"}`],
      ['POST', '/join//', '{"id":"evil","learner":true,"address":"http://127.0.0.1:1"}'],
      ['POST', '/join/.', '{"id":"evil","learner":true,"address":"http://127.0.0.1:1"}'],
      ['DELETE', `/members/${follower.id}/`, ''],
      ['POST', `/members/${follower.id}/promote/`, ''],
    ] as const) {
      const res = await rawRequest(leader.url, method, target, body);
      expect(res.status, `${method} ${target}`).toBe(401);
      expect(res.body).toContain('unauthenticated');
    }
    expect((await leader.status()).role).toBe('leader');
    // A node started with the wrong token is refused and exits with one clear line.
    const intruder = await cluster.join('n9', leader, ['--cluster-token', 'not-the-token', '--join-timeout-ms', '5000']);
    const exit = await intruder.exit!;
    expect(exit.code).toBe(1);
    expect(intruder.output).toContain('rejected the cluster token');
    const members = (await leader.status()).members.map((m) => m.id).sort();
    expect(members).toEqual(['n1', 'n2', 'n3']);
    cluster.nodes.delete('n9');
  });

  it('kill -9 the leader under write load: a new leader, no acknowledged write lost', async () => {
    const old = await cluster.leader();
    const load = writeLoad(cluster, 'crash');
    await waitFor('some writes', 10_000, async () => (load.acked.size >= 40 ? true : undefined));
    await old.kill('SIGKILL');
    const next = await cluster.leader({ not: old.id });
    expect(next.id).not.toBe(old.id);
    const at = load.acked.size;
    await waitFor('writes after the failover', 15_000, async () => (load.acked.size >= at + 40 ? true : undefined));
    const acked = await load.stop();
    await expectAllOn(cluster.live(), 'crash-', acked, cluster);
    // Restarted, the killed node catches up on everything (by log or by snapshot).
    old.start();
    await expectAllOn([old], 'crash-', acked, cluster);
  });

  it('a follower far behind catches up by snapshot after a restart', async () => {
    const leader = await cluster.leader();
    const follower = cluster.live().find((n) => n.id !== leader.id)!;
    await follower.kill('SIGKILL');
    const keys = new Set<string>();
    for (let i = 0; i < 130; i++) {
      await putKey(cluster, `far-${i}`, `v-far-${i}`);
      keys.add(`far-${i}`);
    }
    const snap = (await leader.status()).snapshotIndex;
    expect(snap).toBeGreaterThan(0);
    follower.output = '';
    follower.start();
    await expectAllOn([follower], 'far-', keys, cluster);
    expect(follower.output).toContain('peer.snapshot.installed');
    expect((await follower.status()).snapshotIndex).toBeGreaterThanOrEqual(snap);
  });

  it('SIGSTOP the leader: the others elect a new one; resumed, it serves no stale default read', async () => {
    const old = await cluster.leader();
    await putKey(cluster, 'paused', 'before');
    // Cut its traffic too, so after SIGCONT nothing from the new leader reaches it first: only
    // its own clock can tell it that its lease ran out while it was stopped.
    const others = cluster
      .live()
      .filter((n) => n.id !== old.id)
      .map((n) => n.id);
    await old.setFaults({ dropFrom: others, dropTo: others });
    old.signal('SIGSTOP');
    try {
      const next = await cluster.leader({ not: old.id });
      const res = await fetch(`${next.url}/paused`, { method: 'PUT', body: 'after' });
      expect(res.status).toBe(204);
    } finally {
      old.signal('SIGCONT');
    }
    // Straight after resuming, before it has heard from anyone: never the old value.
    const read = await fetch(`${old.url}/paused`, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
    const body = await read.text();
    expect(read.status === 200 ? body : read.status).not.toBe('before');
    expect([200, 307, 503]).toContain(read.status);
    if (read.status === 200) expect(body).toBe('after');
    await old.setFaults({});
    await waitFor(`${old.id} to step down`, 10_000, async () => ((await old.status()).role === 'follower' ? true : undefined));
    const stale = await waitFor('the resumed node to apply the new value', 10_000, async () => {
      const r = await fetch(`${old.url}/paused?level=stale`);
      const text = await r.text();
      return text === 'after' ? text : undefined;
    });
    expect(stale).toBe('after');
  });

  it('repairs a torn tail record at start and catches up', async () => {
    const leader = await cluster.leader();
    const follower = cluster.live().find((n) => n.id !== leader.id)!;
    await putKey(cluster, 'torn', 'x');
    await cluster.caughtUp(follower, leader);
    await follower.kill('SIGKILL');
    const file = engineLog(engine, follower.dataDir);
    appendFileSync(file, Buffer.from('a torn write: half a record, then the power went out'.repeat(3)));
    follower.output = '';
    follower.start();
    await cluster.caughtUp(follower, leader);
    expect(follower.output).toContain('torn tail truncated');
    expect(await (await fetch(`${follower.url}/torn?level=stale`)).text()).toBe('x');
  });

  it('replaces a failed node: remove it, join a new one with an empty data dir', async () => {
    const leader = await cluster.leader();
    const failed = cluster.live().find((n) => n.id !== leader.id)!;
    await failed.kill('SIGKILL');
    const auth = { authorization: 'Bearer test-token' };
    // To the leader itself (fetch, like curl, drops Authorization across a redirect); again if
    // leadership moved meanwhile; 404 on a retry means the first attempt went through.
    let attempts = 0;
    const removed = await waitFor(`removal of ${failed.id}`, 15_000, async () => {
      attempts++;
      const current = await cluster.leader();
      const res = await fetch(`${current.url}/members/${failed.id}`, { method: 'DELETE', headers: auth, redirect: 'manual' });
      await res.arrayBuffer();
      return res.status === 200 || (res.status === 404 && attempts > 1) ? res.status : undefined;
    });
    expect(removed === 200 || attempts > 1).toBe(true); // the membership check below decides
    const follower = cluster.live().find((n) => n.id !== leader.id)!;
    const fresh = await cluster.join('n4', follower); // joins through a follower: 307 to the leader
    await waitFor('n4 to be a voter', 20_000, async () => {
      const s = await leader.status();
      return s.members.some((m) => m.id === 'n4' && m.voter) ? true : undefined;
    });
    const members = (await leader.status()).members.map((m) => m.id).sort();
    expect(members).toEqual(['n1', 'n2', 'n3', 'n4'].filter((id) => id !== failed.id).sort());
    await cluster.caughtUp(fresh, leader);
    expect(await (await fetch(`${fresh.url}/hello?level=stale`)).text()).toBe('world');
    cluster.nodes.delete(failed.id);
  });

  it('a removed node says so and exits non-zero, and again when restarted on its data dir (with or without --join)', async () => {
    const auth = { authorization: 'Bearer test-token' };
    let gone: ProcNode | undefined;
    await waitFor('a removal', 15_000, async () => {
      const leader = await cluster.leader();
      gone ??= cluster.live().find((n) => n.id !== leader.id)!;
      const res = await fetch(`${leader.url}/members/${gone.id}`, { method: 'DELETE', headers: auth, redirect: 'manual' });
      await res.arrayBuffer();
      return res.status === 200 || res.status === 404 ? true : undefined; // 404: an earlier attempt went through
    });
    const said = `${gone!.id} was removed from cluster test`;
    const exited = (node: ProcNode, what: string) =>
      waitFor(`${node.id} to exit (${what})`, 20_000, async () => (node.alive ? undefined : node.exit!));
    const first = await exited(gone!, 'removed while running');
    expect(first.code).toBe(1);
    expect(gone!.output).toContain(said);
    // On its data dir: as it was started, and as a new user would retry, with --join.
    const joinUrl = (await cluster.leader()).url;
    const rejoin = new ProcNode(gone!.id, gone!.port, gone!.dataDir, [...cluster.commonArgs(gone!.id, gone!.port), '--join', joinUrl]);
    for (const node of [gone!, rejoin]) {
      node.output = '';
      node.start();
      const again = await exited(node, 'restarted on its data dir');
      expect(again.code, node.output).toBe(1);
      expect(node.output).toContain(said);
    }
    cluster.nodes.delete(gone!.id);
    // Back to three voters for the steps that follow.
    const leader = await cluster.leader();
    const fresh = await cluster.join('n5', leader);
    await waitFor('n5 to be a voter', 20_000, async () =>
      (await leader.status()).members.some((m) => m.id === 'n5' && m.voter) ? true : undefined,
    );
    await cluster.caughtUp(fresh, leader);
  });

  it('SIGTERM on the leader hands leadership over and exits 0', async () => {
    const leader = await cluster.leader();
    leader.signal('SIGTERM');
    const exit = await leader.exit!;
    expect(exit.code).toBe(0);
    expect(leader.output).toContain('leadership transferred');
    const next = await cluster.leader({ not: leader.id, timeoutMs: 5000 });
    expect(next.id).not.toBe(leader.id);
    leader.start(); // back as a follower, from its data dir
    await cluster.caughtUp(leader, next);
  });

  it('kill -9 of all nodes at once loses no acknowledged write', async () => {
    await cluster.leader();
    const load = writeLoad(cluster, 'all');
    await waitFor('some writes', 10_000, async () => (load.acked.size >= 60 ? true : undefined));
    const nodes = cluster.live();
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    for (const n of nodes) n.start();
    // The writers keep retrying through the restart; what they got acknowledged before and
    // after must all be there.
    const before = load.acked.size;
    await waitFor('writes after the restart', 20_000, async () => (load.acked.size >= before + 20 ? true : undefined));
    const acked = await load.stop();
    await expectAllOn(nodes, 'all-', acked, cluster);
  });
});

describe('3-node cluster in proxy mode', () => {
  const cluster = new ProcCluster({ engine: 'memory', extraArgs: ['--mode', 'proxy'] });
  beforeAll(async () => {
    await cluster.start();
  });
  afterAll(async () => {
    await cluster.stopAll();
  });

  it('forwards follower writes and reads to the leader instead of redirecting (proxy mode)', async () => {
    await cluster.withStableLeader(async (leader) => {
      const follower = cluster.live().find((n) => n.id !== leader.id)!;
      const put = await fetch(`${follower.url}/proxied`, { method: 'PUT', body: 'yes', redirect: 'manual' });
      expect(put.status).toBe(204);
      const post = await fetch(`${follower.url}/key`, { method: 'POST', body: '{"a":"1","b":"2"}', redirect: 'manual' });
      expect(await post.json()).toMatchObject({ revision: expect.any(Number) });
      const read = await fetch(`${follower.url}/key/proxied?level=consistent`, { redirect: 'manual' });
      expect(read.status).toBe(200);
      expect(await read.json()).toEqual({ proxied: 'yes' });
      expect(read.headers.get('connection')).toBe('keep-alive'); // ours, not a relayed hop-by-hop header
    });
  });
});
