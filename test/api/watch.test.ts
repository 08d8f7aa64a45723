// GET /watch (Server-Sent Events) and blocking reads through the shared router, against an
// in-process 3-peer cluster with fake time: replay then live, resume with Last-Event-ID on
// another peer, compacted, progress, overflow, the watcher limit, a client going away, levels,
// a removed peer, bad input, and GET /:key?waitIndex=.

import { afterEach, describe, expect, it } from 'vitest';
import { routersFor } from './routers.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import { sseFrames, type SseFrame } from '../../worker/client/sse.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

interface Env {
  c: TestCluster;
  call(id: NodeId, path: string, init?: RequestInit): Promise<Response>;
  leader: NodeId;
  followers: NodeId[];
}

async function setup(opts: Parameters<typeof TestCluster.start>[0] = {}): Promise<Env> {
  const c = await TestCluster.start(opts);
  cluster = c;
  const api = routersFor(c);
  const call = (id: NodeId, path: string, init?: RequestInit) => c.drive(api(id).fetch(new Request(`${addressOf(id)}${path}`, init)));
  const leader = (await c.waitLeader()).id;
  await c.tick(2);
  return { c, call, leader, followers: c.followers() };
}

interface Sse {
  event: string;
  id: string | null;
  data: unknown;
}

/** An open event stream read while the cluster ticks (frames by the client's own parser). */
class Stream {
  private readonly body: ReadableStream<Uint8Array>;
  private readonly it: AsyncGenerator<SseFrame>;
  readonly frames: Sse[] = [];
  done = false;

  private readonly c: TestCluster;

  constructor(c: TestCluster, response: Response) {
    this.c = c;
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toMatch(/^text\/event-stream/);
    this.body = response.body!;
    this.it = sseFrames(this.body);
  }

  /** Read until `n` frames arrived (or the stream ended), ticking at most `maxTicks` per frame. */
  async until(n: number, maxTicks = 60): Promise<Sse[]> {
    while (this.frames.length < n && !this.done) {
      let settled = false;
      const next = this.it.next().finally(() => (settled = true));
      // Tick until this frame arrives.
      for (let t = 0; t < maxTicks && !settled; t++) await this.c.tick();
      const r = await next;
      if (r.done === true) {
        this.done = true;
        break;
      }
      this.frames.push({ ...r.value, data: JSON.parse(r.value.data) });
    }
    return this.frames;
  }

  async cancel(): Promise<void> {
    await this.it.return(undefined); // cancels the body once the parser has it
    await this.body.cancel().catch(() => {}); // and when it never read
  }
}

/** "rev:type:key=value" of every change in the revision frames. */
function changes(frames: Sse[]): string[] {
  return frames
    .filter((f) => f.event === 'revision')
    .flatMap((f) =>
      (f.data as Array<{ revision: number; type: string; key: string; value: string | null }>).map(
        (e) => `${e.revision}:${e.type}:${e.key}=${e.value ?? ''}`,
      ),
    );
}

async function put(env: Env, body: Record<string, string>): Promise<number> {
  const res = await env.call(env.leader, '/key', { method: 'POST', body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { revision: number }).revision;
}

describe('GET /watch', () => {
  it('replays from fromRevision on a follower, then follows live: one frame per revision, etcd-shaped changes', async () => {
    const env = await setup();
    await put(env, { 'app/a': '1' });
    await put(env, { 'app/a': '2', 'app/b': '1', other: 'x' });
    const replaying = await env.call(env.followers[0]!, '/watch/app/?prefix=1&fromRevision=2');
    // Where it starts, not where its queue has got to: a client cut off before its first frame resumes there.
    expect(replaying.headers.get('X-Metcd-Watch-From')).toBe('2');
    const s = new Stream(env.c, replaying);
    await put(env, { 'app/c': '1' });
    expect((await env.call(env.leader, '/key/app/a', { method: 'DELETE' })).status).toBe(200);
    const frames = await s.until(3);
    expect(frames.map((f) => [f.event, f.id])).toEqual([
      ['revision', '2'],
      ['revision', '3'],
      ['revision', '4'],
    ]);
    expect(frames[0]!.data).toEqual([
      { type: 'put', key: 'app/a', value: '2', revision: 2, createRevision: 1, modRevision: 2, version: 2, prevValue: '1' },
      { type: 'put', key: 'app/b', value: '1', revision: 2, createRevision: 2, modRevision: 2, version: 1 },
    ]);
    expect(frames[2]!.data).toEqual([
      { type: 'delete', key: 'app/a', value: null, revision: 4, createRevision: 0, modRevision: 4, version: 0, prevValue: '2' },
    ]);
    await s.cancel();
  });

  it('resumes after Last-Event-ID on another peer with exactly the missing changes (and it wins over fromRevision)', async () => {
    const env = await setup();
    const [f1, f2] = env.followers as [NodeId, NodeId];
    const s = new Stream(env.c, await env.call(f1, '/watch/k'));
    await put(env, { k: '1' });
    await put(env, { k: '2' });
    const seen = await s.until(2);
    await s.cancel();
    await put(env, { k: '3' });
    await put(env, { j: 'no' });
    await put(env, { k: '4' });
    const resumed = new Stream(env.c, await env.call(f2, '/watch/k?fromRevision=1', { headers: { 'Last-Event-ID': seen[1]!.id! } }));
    const more = await resumed.until(2);
    expect(changes([...seen, ...more])).toEqual(['1:put:k=1', '2:put:k=2', '3:put:k=3', '5:put:k=4']);
    await resumed.cancel();
  });

  it('watches a range with /watch?start=&end= and a prefix with /watch?prefix=', async () => {
    const env = await setup();
    const range = new Stream(env.c, await env.call(env.leader, '/watch?start=b&end=d'));
    const prefix = new Stream(env.c, await env.call(env.leader, '/watch?prefix=a'));
    await put(env, { a1: '1', b: '1', c: '1', d: '1' });
    expect(changes(await range.until(1))).toEqual(['1:put:b=1', '1:put:c=1']);
    expect(changes(await prefix.until(1))).toEqual(['1:put:a1=1']);
    await range.cancel();
    await prefix.cancel();
  });

  it('answers event: compacted below the compacted revision, then ends', async () => {
    const env = await setup();
    for (let i = 0; i < 4; i++) await put(env, { k: String(i) });
    expect((await env.call(env.leader, '/compact', { method: 'POST', body: '{"revision":3}' })).status).toBe(200);
    const s = new Stream(env.c, await env.call(env.leader, '/watch/k?fromRevision=1'));
    const frames = await s.until(5);
    expect(s.done).toBe(true);
    expect(frames).toEqual([{ event: 'compacted', id: null, data: expect.objectContaining({ compactRevision: 3, revision: 4 }) }]);
  });

  it('sends event: progress with the current revision when nothing matched for progressMs', async () => {
    const env = await setup();
    const s = new Stream(env.c, await env.call(env.followers[0]!, '/watch/quiet?progressMs=300'));
    await put(env, { noisy: '1' });
    const frames = await s.until(1);
    expect(frames[0]).toEqual({ event: 'progress', id: '1', data: { revision: 1 } });
    await s.cancel();
  });

  it('ends a consumer too slow for its buffer with event: overflow and the id to resume from', async () => {
    const env = await setup({ watchLimits: { watcherEventsMax: 2 } });
    const res = await env.call(env.leader, '/watch/k');
    for (let i = 1; i <= 4; i++) await put(env, { k: String(i) }); // nobody reads meanwhile
    const s = new Stream(env.c, res);
    const frames = await s.until(10);
    expect(s.done).toBe(true);
    expect(changes(frames)).toEqual(['1:put:k=1', '2:put:k=2']);
    expect(frames.at(-1)).toEqual({ event: 'overflow', id: '2', data: expect.objectContaining({ reason: 'overflow', resumeRevision: 3 }) });
  });

  it('refuses watchers past the limit with 429, and a client that goes away frees its place', async () => {
    const env = await setup({ watchLimits: { watchersMax: 2 } });
    const a = new Stream(env.c, await env.call(env.leader, '/watch/k'));
    const b = new Stream(env.c, await env.call(env.leader, '/watch/k'));
    const third = await env.call(env.leader, '/watch/k');
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe('too_many_requests');
    expect(env.c.peer(env.leader).watchStats().watchers).toBe(2);
    await a.cancel();
    expect(env.c.peer(env.leader).watchStats().watchers).toBe(1);
    const again = new Stream(env.c, await env.call(env.leader, '/watch/k'));
    await again.cancel();
    await b.cancel();
    expect(env.c.peer(env.leader).watchStats().watchers).toBe(0);
  });

  it('level=consistent is the leader’s: a follower redirects, the leader starts after a ReadIndex round', async () => {
    const env = await setup();
    await put(env, { k: '1' });
    const redirect = await env.call(env.followers[0]!, '/watch/k?level=consistent');
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get('Location')).toBe(`${addressOf(env.leader)}/watch/k?level=consistent`);
    const res = await env.call(env.leader, '/watch/k?level=consistent');
    expect(res.headers.get('X-Metcd-Watch-From')).toBe('2');
    const s = new Stream(env.c, res);
    await put(env, { k: '2' });
    expect(changes(await s.until(1))).toEqual(['2:put:k=2']);
    await s.cancel();
  });

  it('closes the watches of a peer removed from the cluster with event: closed and where to resume', async () => {
    const env = await setup();
    const gone = env.followers[0]!;
    const s = new Stream(env.c, await env.call(gone, '/watch/k'));
    await put(env, { k: '1' });
    expect((await env.call(env.leader, `/members/${gone}`, { method: 'DELETE' })).status).toBe(200);
    await env.c.tick(5);
    const frames = await s.until(5);
    expect(s.done).toBe(true);
    expect(frames.at(-1)).toEqual({ event: 'closed', id: '1', data: expect.objectContaining({ reason: 'removed', resumeRevision: 2 }) });
  });

  it('refuses bad input with 400', async () => {
    const env = await setup();
    for (const [path, headers] of [
      ['/watch/k?nope=1', {}],
      ['/watch/k?prefix=maybe', {}],
      ['/watch/k?start=a', {}],
      ['/watch', {}],
      ['/watch?prefix=a&start=b', {}],
      ['/watch/k?fromRevision=0', {}],
      ['/watch/k?progressMs=5', {}],
      ['/watch/k?progressMs=600001', {}],
      ['/watch/k?level=default', {}],
      ['/watch/k', { 'Last-Event-ID': 'abc' }],
    ] as Array<[string, Record<string, string>]>) {
      const res = await env.call(env.leader, path, { headers });
      expect(res.status, path).toBe(400);
    }
    expect((await env.call(env.leader, '/watch/k', { method: 'PUT' })).status).toBe(405);
    expect(env.c.peer(env.leader).watchStats().watchers).toBe(0);
  });
});

describe('blocking reads: GET /:key?waitIndex=N&wait=', () => {
  it('returns once the key changed above waitIndex, at once when it already has, and after wait otherwise', async () => {
    const env = await setup();
    const first = await put(env, { k: '1' });
    // Already changed above 0: at once.
    const now = await env.call(env.leader, '/k?waitIndex=0&wait=5s');
    expect(await now.text()).toBe('1');

    let answered: Response | null = null;
    const pending = env.call(env.followers[0]!, `/key/k?waitIndex=${first}&wait=10s&level=stale`).then((r) => (answered = r));
    await put(env, { other: 'x' }); // not this key: still waiting
    expect(answered).toBeNull();
    await put(env, { k: '2' });
    await pending;
    expect(await answered!.text()).toBe('{"k":"2"}');

    // Nothing changes: the wait elapses and the current value comes back.
    const start = Date.now();
    const timedOut = await env.call(env.leader, `/k?waitIndex=${first + 2}&wait=500ms`);
    expect(timedOut.status).toBe(200);
    expect(await timedOut.text()).toBe('2');
    expect(Date.now() - start).toBeLessThan(5000); // fake time: ticks, not wall clock
    for (const bad of ['/k?wait=1s', '/k?waitIndex=1&wait=forever', '/k?waitIndex=1&wait=301s', '/k?waitIndex=1&revision=1']) {
      expect((await env.call(env.leader, bad)).status, bad).toBe(400);
    }
    expect(env.c.peer(env.leader).watchStats().watchers).toBe(0);
  });
});
