// The TypeScript client (worker/client/) against real Node processes: one 3-node memory-engine
// cluster with a root token, so every redirect the client follows must keep its Authorization
// header. Covered: the key API and typed errors, deadlines and AbortSignal, leases and the
// keep-alive loop, locks and elections with their fencing tokens, tokens, membership and
// introspection; a write whose answer is lost on a cut connection, retried and applied once; a
// watch that is cut and resumes on another node without a gap or a duplicate; and the client
// finding the new leader after SIGKILL of the old one (last: it leaves the cluster at two nodes).

import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, MetcdError, type MetcdClient, type WatchResponse } from '../../worker/client/index.ts';
import { ProcCluster, type ProcNode } from './proc-cluster.ts';

const ROOT = 'client-test-root-token-0123456789';
const cluster = new ProcCluster({ engine: 'memory', rootToken: ROOT });
beforeAll(() => cluster.start());
afterAll(() => cluster.stopAll());

/** A client whose first endpoint is a follower, so its first write is redirected. */
async function followerFirst(): Promise<{ client: MetcdClient; leader: ProcNode }> {
  const leader = await cluster.leader({ all: true });
  const others = cluster.live().filter((n) => n !== leader);
  const endpoints = [...others, leader].map((n) => n.url);
  return { client: createClient({ endpoints, token: ROOT }), leader };
}

async function expectError(p: Promise<unknown>, status: number, code: string): Promise<MetcdError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MetcdError);
  expect({ status: (err as MetcdError).status, code: (err as MetcdError).code }).toEqual({ status, code });
  return err as MetcdError;
}

/** A TCP proxy to a node whose connections the test can cut: all at once, or each connection's
 *  first answer (the request reaches the node; its answer never reaches the client). */
class CutProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  /** How many answers to swallow (cutting their connection) from now on. */
  swallowAnswers = 0;
  cuts = 0;
  port = 0;

  private readonly targetPort: number;

  constructor(targetPort: number) {
    this.targetPort = targetPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => {
        if (this.swallowAnswers > 0) {
          this.swallowAnswers--;
          this.cuts++;
          close();
          return;
        }
        client.write(d);
      });
      for (const s of pair) {
        s.on('error', close);
        s.on('close', close);
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  cutAll(): void {
    for (const [a, b] of this.pairs) {
      this.cuts++;
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.cutAll();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

/**
 * fetch as a browser page has it: `redirect: 'manual'` answers an opaque redirect (status 0, no
 * Location), and a followed redirect to another origin is refused (no CORS: the preflight
 * fails before the request is sent).
 */
function browserLikeFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  return (async () => {
    const url = String(input);
    const res = await fetch(url, { ...init, redirect: 'manual' });
    if (res.status !== 307 && res.status !== 308) return res;
    await res.body?.cancel();
    if (init?.redirect !== 'follow') {
      const opaque = new Response(null, { status: 200 });
      Object.defineProperty(opaque, 'type', { value: 'opaqueredirect' });
      Object.defineProperty(opaque, 'status', { value: 0 });
      return opaque;
    }
    const target = new URL(res.headers.get('Location') ?? '', url);
    if (target.origin !== new URL(url).origin) throw new TypeError('Failed to fetch');
    return fetch(target.href, { ...init, redirect: 'manual' });
  })();
}

describe('client: keys, errors, deadlines', () => {
  it('never follows a redirect from https to http (its token would travel in clear)', async () => {
    const sent: string[] = [];
    const downgrading = (input: string | URL | Request): Promise<Response> => {
      sent.push(String(input));
      return Promise.resolve(new Response(null, { status: 307, headers: { Location: 'http://127.0.0.1:9/key/k' } }));
    };
    const client = createClient({ endpoints: ['https://127.0.0.1:8'], token: ROOT, fetch: downgrading, timeoutMs: 2000 });
    const err = await expectError(client.put('k', 'v'), 307, 'bad_response');
    expect(err.message).toMatch(/off TLS/);
    expect(sent).toEqual(['https://127.0.0.1:8/key/k']);
  });

  it('in a browser, never takes a hidden redirect for an answer: one to another origin is an error, and nothing is written', async () => {
    const leader = await cluster.leader({ all: true });
    const follower = cluster.live().find((n) => n !== leader)!;
    const client = createClient({ endpoints: [follower.url], token: ROOT, fetch: browserLikeFetch, timeoutMs: 3000 });
    await expectError(client.put('browser/k', 'v'), 0, 'redirect_hidden');
    const direct = createClient({ endpoints: [leader.url], token: ROOT });
    expect(await direct.get('browser/k')).toBeNull();
    // A read the follower answers itself needs no redirect.
    expect(await client.get('browser/k', { level: 'stale' })).toBeNull();
  });

  it('follows a follower to the leader with its token and tracks the leader', async () => {
    const { client, leader } = await followerFirst();
    const { revision } = await client.put('app/a', 'one');
    expect(revision).toBeGreaterThan(0);
    expect(client.leader).toBe(leader.id);
    expect(client.endpoint).toBe(leader.url);
    const kv = await client.get('app/a');
    expect(kv).toEqual({ key: 'app/a', value: 'one', createRevision: revision, modRevision: revision, version: 1 });
    expect(await client.get('app/missing')).toBeNull();
    // a key whose first segment is reserved, and one that needs escaping
    await client.put('status', 'reserved name');
    await client.put('app/sp ace/ü', 'x');
    expect((await client.get('status'))?.value).toBe('reserved name');
    expect((await client.get('app/sp ace/ü'))?.value).toBe('x');
  });

  it('ranges, pages, transactions, deletes and reads at a revision', async () => {
    const { client } = await followerFirst();
    const first = await client.put('r/1', 'a');
    await client.put('r/2', 'b');
    await client.put('r/3', 'c');
    const page = await client.range({ prefix: 'r/', limit: 2 });
    expect(page.kvs).toEqual([
      { key: 'r/1', value: 'a' },
      { key: 'r/2', value: 'b' },
    ]);
    expect(page.more).toBe(true);
    const rest = await client.range({ prefix: 'r/', start: page.nextStart! });
    expect(rest.kvs.map((kv) => kv.key)).toEqual(['r/3']);
    await client.put('r/1', 'a2');
    expect((await client.get('r/1', { revision: first.revision }))?.value).toBe('a');
    const t = await client.txn({
      compare: [{ key: 'r/1', target: 'value', result: '==', value: 'a2' }],
      success: [{ put: { key: 'r/4', value: 'd' } }, { get: { key: 'r/4' } }],
      failure: [],
    });
    expect(t.succeeded).toBe(true);
    expect((t.results[1] as { get: { kvs: Array<{ value: string }> } }).get.kvs[0]!.value).toBe('d');
    expect(await client.delete('r/4')).toMatchObject({ deleted: 1 });
    expect(await client.delete('r/', { prefix: true })).toMatchObject({ deleted: 3 });
    expect((await client.range({ prefix: 'r/' })).kvs).toEqual([]);
  });

  it('throws typed errors', async () => {
    const { client } = await followerFirst();
    const { revision } = await client.put('cas', 'v1');
    const cas = await expectError(client.put('cas', 'v2', { ifRevision: revision - 1 }), 409, 'compare_failed');
    expect(cas.details['modRevision']).toBe(revision);
    await client.put('cas', 'v2', { ifRevision: revision });
    const stranger = createClient({ endpoints: cluster.live()[0]!.url, token: 'not-a-valid-token-at-all' });
    await expectError(stranger.get('cas'), 401, 'unauthenticated');
    await expectError(client.get('\u0001x'), 400, 'bad_request');
    await expectError(client.lease.timeToLive('999999'), 404, 'lease_not_found');
    // a read below the compacted revision
    const second = await client.put('cas', 'v3');
    await client.compact(second.revision);
    const gone = await expectError(client.get('cas', { revision: revision }), 410, 'compacted');
    expect(gone.details['compactRevision']).toBe(second.revision);
  });

  it('gives up at its deadline and on its AbortSignal', async () => {
    const { client } = await followerFirst();
    const held = await client.lock('deadline', { ttl: 10 });
    await expectError(client.lock('deadline', { wait: '20s', timeoutMs: 300 }), 0, 'timeout');
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 200);
    await expectError(client.lock('deadline', { wait: '20s', signal: ctl.signal }), 0, 'aborted');
    await held.release();
    const unreachable = createClient({ endpoints: 'http://127.0.0.1:1', timeoutMs: 300 });
    const err = await expectError(unreachable.get('x'), 0, 'timeout');
    expect(err.message).toMatch(/did not answer/);
  });
});

describe('client: leases, locks, elections, tokens, cluster', () => {
  it('grants, keeps alive (loop), inspects and revokes leases', async () => {
    const { client } = await followerFirst();
    const lease = await client.lease.grant(2);
    expect(lease.ttl).toBeGreaterThanOrEqual(1);
    await client.put('leased/a', 'x', { lease: lease.id });
    expect(await client.lease.keepAlive(lease.id)).toMatchObject({ id: lease.id });
    const loop = client.lease.keepAliveLoop(lease);
    await new Promise((r) => setTimeout(r, 3500)); // past the TTL: only the loop keeps it
    const info = await client.lease.timeToLive(lease.id);
    expect(info.keys).toEqual(['leased/a']);
    loop.stop();
    expect(await loop.done).toBeUndefined();
    expect(await client.lease.revoke(lease.id)).toMatchObject({ deleted: 1 });
    expect(await client.get('leased/a')).toBeNull();
  });

  it('locks with fencing tokens that grow, and elects', async () => {
    const { client } = await followerFirst();
    const other = createClient({ endpoints: cluster.live().map((n) => n.url), token: ROOT });
    const first = await client.lock('jobs', { ttl: 5 });
    expect(first.key).toMatch(/^lock\/jobs\//);
    let secondTaken = false;
    const second = other.lock('jobs', { ttl: 5, wait: '20s' }).then((h) => {
      secondTaken = true;
      return h;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(secondTaken).toBe(false);
    await first.release();
    const s = await second;
    expect(s.revision).toBeGreaterThan(first.revision);
    await s.release();

    const leader = await client.campaign('sched', 'node-a', { ttl: 5 });
    expect(await client.electionLeader('sched')).toMatchObject({ key: leader.key, value: 'node-a', revision: leader.revision });
    await leader.proclaim('node-a v2');
    expect((await other.electionLeader('sched'))?.value).toBe('node-a v2');
    await leader.resign();
    expect(await client.electionLeader('sched')).toBeNull();
  });

  it('creates, uses, lists and revokes tokens', async () => {
    const { client } = await followerFirst();
    const made = await client.tokens.create({ name: 'app-rw', rules: [{ prefix: 'app/', access: 'readwrite' }] });
    expect(made.token).toMatch(/^metcd_/);
    const app = createClient({ endpoints: cluster.live().map((n) => n.url), token: made.token });
    await app.put('app/t', 'ok'); // redirected with the API token
    await expectError(app.put('other/t', 'no'), 403, 'permission_denied');
    expect((await client.tokens.list()).map((t) => t.name)).toContain('app-rw');
    await client.tokens.revoke(made.id);
    // a follower applies the revocation a moment later
    for (let i = 0; ; i++) {
      const err = await app.get('app/t', { level: 'stale' }).then(
        () => null,
        (e: MetcdError) => e,
      );
      if (err?.code === 'unauthenticated') break;
      if (i > 50) throw new Error('the revoked token still works');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('reads members, status and health of each endpoint', async () => {
    const { client, leader } = await followerFirst();
    const m = await client.members();
    expect(m.leader).toBe(leader.id);
    expect(m.members.map((x) => x.id).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const node of cluster.live()) {
      const s = await client.status({ endpoint: node.url });
      expect(s.id).toBe(node.id);
      expect(await client.health({ endpoint: node.url })).toEqual({ ok: true });
    }
  });
});

describe('client: connection cuts and leader loss', () => {
  it('retries a write whose answer was lost on a cut connection, and it is applied once', async () => {
    const leader = await cluster.leader({ all: true });
    const proxy = new CutProxy(leader.port);
    await proxy.start();
    try {
      const client = createClient({ endpoints: proxy.url, token: ROOT });
      await client.put('cut/warm-up', 'x'); // the session's first write (seq 1) goes through
      const before = await client.status({ endpoint: leader.url });
      proxy.swallowAnswers = 1; // the next answer never reaches the client
      const { revision } = await client.put('cut/k', 'once');
      expect(proxy.cuts).toBe(1);
      expect(revision).toBe(before.revision + 1);
      const kv = await client.get('cut/k');
      expect(kv).toMatchObject({ value: 'once', version: 1, modRevision: revision });
      expect((await client.status({ endpoint: leader.url })).revision).toBe(before.revision + 1);

      // a transaction too: its retry answers the first answer
      proxy.swallowAnswers = 1;
      const t = await client.txn({ success: [{ put: { key: 'cut/k', value: 'twice?' } }] });
      expect(proxy.cuts).toBe(2);
      expect(t.revision).toBe(revision + 1);
      expect(await client.get('cut/k')).toMatchObject({ value: 'twice?', version: 2 });
    } finally {
      await proxy.stop();
    }
  });

  it('resumes a cut watch on another node with no gap and no duplicate', async () => {
    const leader = await cluster.leader({ all: true });
    const follower = cluster.live().find((n) => n !== leader)!;
    const proxy = new CutProxy(follower.port);
    await proxy.start();
    try {
      const watcher = createClient({ endpoints: [proxy.url, ...cluster.live().map((n) => n.url)], token: ROOT });
      const writer = createClient({ endpoints: [leader.url], token: ROOT });
      const watch = watcher.watch({ prefix: 'w/' });
      const got: WatchResponse[] = [];
      const reading = (async () => {
        for await (const frame of watch) {
          got.push(frame);
          if (frame.events.some((e) => e.key === 'w/19')) break;
        }
      })();
      await new Promise((r) => setTimeout(r, 300)); // the stream is open
      for (let i = 0; i < 20; i++) {
        await writer.put(`w/${i}`, String(i));
        if (i === 9) proxy.cutAll();
      }
      await reading;
      const keys = got.flatMap((f) => f.events.map((e) => e.key));
      expect(keys).toEqual(Array.from({ length: 20 }, (_, i) => `w/${i}`));
      const revisions = got.map((f) => f.revision);
      for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBe(revisions[i - 1]! + 1);
      expect(watch.reconnects).toBeGreaterThanOrEqual(1);
      expect(proxy.cuts).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.stop();
    }
  });

  it('ends a watch whose start was compacted with a compacted error', async () => {
    const { client } = await followerFirst();
    const { revision } = await client.put('wc/a', '1');
    await client.put('wc/a', '2');
    await client.compact(revision + 1);
    const watch = client.watch({ key: 'wc/a', fromRevision: revision });
    const err = await (async () => {
      for await (const frame of watch) throw new Error(`no frame expected, got revision ${frame.revision}`);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MetcdError);
    expect((err as MetcdError).code).toBe('compacted');
    expect((err as MetcdError).details['compactRevision']).toBe(revision + 1);
  });

  it('finds the new leader after SIGKILL of the old one', async () => {
    const { client, leader } = await followerFirst();
    await client.put('failover/a', '1');
    expect(client.endpoint).toBe(leader.url);
    const watch = client.watch({ prefix: 'failover/', fromRevision: (await client.status({ endpoint: leader.url })).revision });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const f of watch) {
        for (const e of f.events) seen.push(`${e.key}=${e.value}`);
        if (seen.includes('failover/b=2')) break;
      }
    })();
    await leader.kill('SIGKILL');
    const { revision } = await client.put('failover/b', '2', { timeoutMs: 20_000 });
    const next = await cluster.leader({ not: leader.id });
    expect(client.leader).toBe(next.id);
    expect(client.endpoint).toBe(next.url);
    expect((await client.get('failover/b'))?.modRevision).toBe(revision);
    await reading;
    expect(seen).toEqual(['failover/a=1', 'failover/b=2']);
  });
});
