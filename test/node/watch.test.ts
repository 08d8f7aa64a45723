// Watch on real processes: an SSE stream from a follower keeps delivering while the leader is
// SIGKILLed and a new one takes over; the client then drops the connection (its watcher is
// freed on that node) and resumes on another node with Last-Event-ID, getting exactly the
// changes it missed: every acknowledged write once, in revision order.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, putKey } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';
import { sseFrames } from '../../worker/client/sse.ts';

interface Frame {
  event: string;
  id: string | null;
  data: unknown;
}

/** An SSE client over fetch (the client's own parser): frames as they come, until abort(). */
function listen(url: string, headers: Record<string, string> = {}): { frames: Frame[]; abort(): void; status: Promise<number> } {
  const frames: Frame[] = [];
  const controller = new AbortController();
  const status = fetch(url, { headers, signal: controller.signal }).then((res) => {
    if (res.status !== 200 || res.body === null) return res.status;
    void (async () => {
      for await (const f of sseFrames(res.body!, controller.signal)) frames.push({ ...f, data: JSON.parse(f.data) });
    })().catch(() => {}); // aborted
    return res.status;
  });
  return { frames, abort: () => controller.abort(), status };
}

function unique(keys: string[]): string[] {
  return [...new Set(keys)];
}

/** The keys of the put changes, in the order received. */
function keysOf(frames: Frame[]): string[] {
  return frames.filter((f) => f.event === 'revision').flatMap((f) => (f.data as Array<{ key: string; type: string }>).map((e) => e.key));
}

describe('watch on a Node cluster', () => {
  const cluster = new ProcCluster({ engine: 'memory' });

  beforeAll(async () => {
    await cluster.start();
  });
  afterAll(async () => {
    await cluster.stopAll();
  });

  it('streams from a follower through a leader SIGKILL, frees the watcher on disconnect, resumes on another node with Last-Event-ID', async () => {
    const leader = await cluster.leader({ all: true });
    const [f1, f2] = cluster.live().filter((n) => n.id !== leader.id);
    const first = listen(`${f1!.url}/watch/w/?prefix=1&progressMs=200`);
    expect(await first.status).toBe(200);
    await waitFor(
      'the watcher on the follower',
      5000,
      async () => ((await f1!.status()) as unknown as { watchers: number }).watchers === 1 || undefined,
    );

    const written: string[] = [];
    const write = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const key = `w/${String(written.length).padStart(3, '0')}`;
        await putKey(cluster, key, 'v', 20_000);
        written.push(key);
      }
    };
    await write(5);
    await leader.kill('SIGKILL');
    await write(5); // through the new leader, once elected
    await waitFor('the follower stream to show every write', 20_000, async () =>
      keysOf(first.frames).length >= written.length ? true : undefined,
    );
    // A PUT retried across the failover may apply twice (two changes of one key): keys in order.
    expect(unique(keysOf(first.frames))).toEqual(written);

    // The client goes away: its watcher is freed on that node.
    first.abort();
    await waitFor(
      'the watcher to be freed',
      5000,
      async () => ((await f1!.status()) as unknown as { watchers: number }).watchers === 0 || undefined,
    );
    const lastId = [...first.frames].reverse().find((f) => f.id !== null)!.id!;
    await write(5); // while nobody watches

    const resumed = listen(`${f2!.url}/watch/w/?prefix=1`, { 'Last-Event-ID': lastId });
    expect(await resumed.status).toBe(200);
    await write(2);
    await waitFor('the resumed stream to catch up', 20_000, async () => {
      const all = [
        ...keysOf(first.frames.filter((f) => f.event === 'revision' && Number(f.id) <= Number(lastId))),
        ...keysOf(resumed.frames),
      ];
      return unique(all).length >= written.length ? all : undefined;
    });
    const all = [
      ...keysOf(first.frames.filter((f) => f.event === 'revision' && Number(f.id) <= Number(lastId))),
      ...keysOf(resumed.frames),
    ];
    expect(unique(all)).toEqual(written);
    // No revision twice and none out of order across the two streams (no duplicate at the seam).
    const ids = [...first.frames.filter((f) => f.event === 'revision' && Number(f.id) <= Number(lastId)), ...resumed.frames]
      .filter((f) => f.event === 'revision')
      .map((f) => Number(f.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]!);
    resumed.abort();
  });
});
