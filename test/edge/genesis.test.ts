// The default cluster's first start, and what a later change of CLUSTER_SIZE does (nothing to
// membership): bootstrap peers take the genesis membership recorded by p1, not their own vars.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

let c: EdgeCluster;

beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'genesis' } });
});

afterAll(async () => {
  await c?.close();
});

async function memberIds(peer: string): Promise<string[]> {
  return (await c.status(peer)).members.map((m) => m.id).sort();
}

describe('bootstrap', () => {
  it('the first request, to any peer, starts the default cluster with no setup call', async () => {
    // Even a request naming p3 first: p3 takes the genesis from p1, which starts it.
    const res = await c.follow('/first?peer=p3', { method: 'PUT', body: 'x' });
    expect(res.status).toBe(204);
    for (const id of ['p1', 'p2', 'p3']) expect(await memberIds(id)).toEqual(['p1', 'p2', 'p3']);
  });

  it('raising CLUSTER_SIZE later adds no member: new bootstrap ids wait for /join', async () => {
    await c.reconfigure({ CLUSTER_SIZE: '5' });
    // The reload restarts the peers, which elect a leader again (an election timeout or two,
    // longer on a loaded machine than a peer holds a leaderless request): wait for it.
    await c.leader();
    expect(await (await c.follow('/first?level=consistent')).text()).toBe('x');
    // p5 is now in the vars' bootstrap set, but the cluster's genesis (from p1) has 3 voters.
    const p5 = await c.status('p5');
    expect(p5.members).toEqual([]);
    expect(p5.role).toBe('follower');
    for (const id of ['p1', 'p2', 'p3']) expect(await memberIds(id)).toEqual(['p1', 'p2', 'p3']);
    expect((await c.follow('/second', { method: 'PUT', body: 'y' })).status).toBe(204);
    // Joining it is the way to grow the cluster.
    const joined = await c.follow('/join', { method: 'POST', body: '{"id":"p5"}' });
    expect(joined.status).toBe(200);
    expect((await c.follow('/third', { method: 'PUT', body: 'z' })).status).toBe(204);
  });

  it('a bad var is a clear 500 naming it, not a half-working cluster', async () => {
    await c.reconfigure({ FORWARD_MODE: 'bounce' });
    const res = await c.request('/first');
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('internal');
    expect(body.error.message).toMatch(/FORWARD_MODE "bounce"/);
  });
});
