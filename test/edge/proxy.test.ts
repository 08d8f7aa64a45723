// FORWARD_MODE=proxy: a follower forwards writes and non-stale reads to the
// leader over the peers' stubs and relays the answer, so clients never see a 307.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

let c: EdgeCluster;
let follower: string;

beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'proxied', FORWARD_MODE: 'proxy' } });
  expect((await c.follow('/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
  const leader = await c.leader();
  follower = ['p1', 'p2', 'p3'].find((id) => id !== leader)!;
});

afterAll(async () => {
  await c?.close();
});

describe('proxy mode', () => {
  it('a write sent to a follower is forwarded to the leader and answered directly', async () => {
    const put = await c.request(`/proxied-key?peer=${follower}`, { method: 'PUT', body: 'via follower' });
    expect(put.status).toBe(204);
    const post = await c.request(`/key?peer=${follower}`, { method: 'POST', body: '{"json-key":"also"}' });
    expect(post.status).toBe(200);
    expect(((await post.json()) as { revision: number }).revision).toBeGreaterThan(0);
  });

  it('default and consistent reads on a follower are answered by the leader through it', async () => {
    for (const level of ['default', 'consistent']) {
      const res = await c.request(`/proxied-key?level=${level}&peer=${follower}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('via follower');
    }
  });

  it('membership changes are forwarded too', async () => {
    const res = await c.request(`/join?peer=${follower}`, { method: 'POST', body: '{"id":"p4","learner":true}' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { members: Array<{ id: string; voter: boolean }> };
    expect(body.members.find((m) => m.id === 'p4')?.voter).toBe(false);
  });
});
