// Watch on the edge, in real workerd through the Worker: the peer object's streaming response
// reaches the client event by event (not buffered until it ends), a follower serves it (stale
// by default), Last-Event-ID resumes on another peer with exactly the missing changes, and a
// client that goes away frees its watcher in the object.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putRaw, startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';
import { sseFrames } from '../../worker/client/sse.ts';

let c: EdgeCluster;
let leader: string;
let followers: string[];

beforeAll(async () => {
  c = await startCluster();
  expect((await c.follow('/hello', { method: 'PUT', body: 'world' })).status).toBe(204);
  leader = await c.leader();
  followers = ['p1', 'p2', 'p3'].filter((id) => id !== leader);
});

afterAll(async () => {
  await c?.close();
});

interface Frame {
  event: string;
  id: string | null;
  data: unknown;
}

/** Reads SSE frames from a response as they come (the client's own parser), until cancel(). */
function frames(res: Response): { got: Frame[]; cancel(): Promise<void> } {
  const got: Frame[] = [];
  const stop = new AbortController();
  const done = (async () => {
    for await (const f of sseFrames(res.body!, stop.signal)) got.push({ ...f, data: JSON.parse(f.data) });
  })().catch(() => {});
  return {
    got,
    cancel: async () => {
      stop.abort();
      await done;
    },
  };
}

const keys = (fs: Frame[]) => fs.filter((f) => f.event === 'revision').flatMap((f) => (f.data as Array<{ key: string }>).map((e) => e.key));

describe('GET /watch on the edge', () => {
  it('streams change by change from a follower through the Worker, resumes on another peer, frees the watcher on cancel', async () => {
    const follower = followers[0]!;
    const res = await c.request(`/watch/app/?prefix=1&peer=${follower}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/event-stream/);
    const stream = frames(res);
    await waitFor('the watcher in the follower object', async () => (await c.status(follower)).watchers === 1);

    // One write, one event, while the response is still open: it streams.
    expect((await putRaw(c, 'app/a', '1')).status).toBe(204);
    await waitFor('the first event', () => keys(stream.got).length === 1);
    expect(stream.got[0]!.data).toEqual([expect.objectContaining({ type: 'put', key: 'app/a', value: '1', version: 1 })]);
    expect((await putRaw(c, 'other', 'x')).status).toBe(204);
    expect((await putRaw(c, 'app/b', '1')).status).toBe(204);
    await waitFor('the second event', () => keys(stream.got).length === 2);
    expect(keys(stream.got)).toEqual(['app/a', 'app/b']);

    await stream.cancel();
    await waitFor('the watcher to be freed', async () => (await c.status(follower)).watchers === 0);
    const lastId = stream.got.at(-1)!.id!;
    expect((await putRaw(c, 'app/c', '1')).status).toBe(204);
    expect((await putRaw(c, 'app/a', '2')).status).toBe(204);

    const resumed = frames(await c.request(`/watch/app/?prefix=1&peer=${followers[1]!}`, { headers: { 'Last-Event-ID': lastId } }));
    await waitFor('the missing changes', () => keys(resumed.got).length >= 2);
    expect(keys(resumed.got)).toEqual(['app/c', 'app/a']);
    expect(resumed.got[1]!.data).toEqual([expect.objectContaining({ key: 'app/a', value: '2', prevValue: '1', version: 2 })]);
    await resumed.cancel();
  });
});
