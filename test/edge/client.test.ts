// The TypeScript client (worker/client/) against the edge: real workerd through the Worker, the
// client's `fetch` option given the harness's server.fetch. Followers' redirects stay on the
// Worker's host (?peer=), and a watch served by a follower resumes on another peer after the
// stream breaks, without a gap or a duplicate.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, MetcdError, type FetchFunction, type WatchResponse } from '../../worker/client/index.ts';
import { startCluster, type EdgeCluster } from './harness.ts';

let c: EdgeCluster;
let harnessFetch: FetchFunction;
const EDGE = 'http://metcd.edge.test';

beforeAll(async () => {
  c = await startCluster();
  await c.leader();
  type DispatchInit = Parameters<typeof c.server.fetch>[1];
  harnessFetch = async (input, init) => (await c.server.fetch(input, init as DispatchInit)) as unknown as Response;
});

afterAll(async () => {
  await c?.close();
});

describe('client on the edge', () => {
  it('writes, reads, ranges and transacts through the Worker, following redirects itself', async () => {
    const client = createClient({ endpoints: EDGE, fetch: harnessFetch });
    // a follower named with ?peer redirects to the leader on the same host
    const leader = await c.leader();
    const follower = ['p1', 'p2', 'p3'].find((id) => id !== leader)!;
    const viaFollower = createClient({ endpoints: `${EDGE}`, fetch: (url, init) => harnessFetch(withPeer(url, follower), init) });
    const { revision } = await viaFollower.put('edge/a', '1');
    expect(viaFollower.leader).toBe(leader);
    expect(await client.get('edge/a')).toMatchObject({ value: '1', modRevision: revision, version: 1 });
    await client.put('edge/b', '2');
    expect((await client.range({ prefix: 'edge/' })).kvs.map((kv) => kv.key)).toEqual(['edge/a', 'edge/b']);
    const t = await client.txn({
      compare: [{ key: 'edge/a', target: 'version', result: '==', value: 1 }],
      success: [{ put: { key: 'edge/a', value: '1b' } }],
    });
    expect(t.succeeded).toBe(true);
    const err = await client.put('edge/a', 'x', { ifRevision: revision }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetcdError);
    expect((err as MetcdError).code).toBe('compare_failed');
    expect(await client.delete('edge/', { prefix: true })).toMatchObject({ deleted: 2 });
  });

  it('takes a lock and a lease, and reads members and status', async () => {
    const client = createClient({ endpoints: EDGE, fetch: harnessFetch });
    const lock = await client.lock('edge-jobs', { ttl: 10 });
    expect(lock.revision).toBeGreaterThan(0);
    await lock.release();
    const lease = await client.lease.grant(10);
    expect((await client.lease.timeToLive(lease.id)).grantedTtl).toBe(10);
    await client.lease.revoke(lease.id);
    expect((await client.members()).members).toHaveLength(3);
    expect((await client.status()).leader).toBe(await c.leader());
  });

  it('resumes a watch on another peer after its stream breaks, with no gap and no duplicate', async () => {
    const leader = await c.leader();
    const [f1, f2] = ['p1', 'p2', 'p3'].filter((id) => id !== leader) as [string, string];
    // The watch's requests go to f1 until the test cuts its stream, then to f2.
    let target = f1;
    let cut: (() => void) | undefined;
    const watcher = createClient({
      endpoints: EDGE,
      fetch: async (url, init) => {
        const ctl = new AbortController();
        const outer = init.signal;
        outer?.addEventListener('abort', () => ctl.abort(outer.reason), { once: true });
        const res = await harnessFetch(withPeer(url, target), { ...init, signal: ctl.signal });
        cut = () => {
          target = f2;
          ctl.abort(new Error('cut by the test'));
        };
        return res;
      },
    });
    const writer = createClient({ endpoints: EDGE, fetch: harnessFetch });
    const watch = watcher.watch({ prefix: 'ew/' });
    const got: WatchResponse[] = [];
    const reading = (async () => {
      for await (const f of watch) {
        got.push(f);
        if (f.events.some((e) => e.key === 'ew/9')) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 10; i++) {
      await writer.put(`ew/${i}`, String(i));
      if (i === 4) cut!();
    }
    await reading;
    expect(got.flatMap((f) => f.events.map((e) => e.key))).toEqual(Array.from({ length: 10 }, (_, i) => `ew/${i}`));
    expect(watch.reconnects).toBeGreaterThanOrEqual(1);
  });
});

/** The same request addressed to one peer (the Worker's ?peer=). */
function withPeer(url: string, peer: string): string {
  const u = new URL(url);
  if (!u.searchParams.has('peer')) u.searchParams.set('peer', peer);
  return u.href;
}
