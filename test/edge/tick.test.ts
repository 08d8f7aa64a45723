// A deployment with a non-default tick (TICK_MS=20): the peer times its lease guard with the
// object's tick, so a pause of a few ticks — far below the default tick's threshold of 200 ms —
// is noticed and the lease distrusted (worker/peer/lease-guard.ts).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

const TICK_MS = 20;
/** Five ticks: above the guard's two-tick bound at TICK_MS, well under two default ticks. */
const HOLD_MS = 5 * TICK_MS;

let c: EdgeCluster;

beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'tick', TICK_MS: String(TICK_MS) } });
  expect((await c.follow('/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
});

afterAll(async () => {
  await c?.close();
});

describe('TICK_MS on the edge', () => {
  it("the peer is opened with the object's tick, and notices a pause of a few ticks", async () => {
    const id = await c.leader();
    const before = (await c.inspect(id)).status!;
    expect(before.tickMs).toBe(TICK_MS);
    await c.peer(id).holdTicks(HOLD_MS);
    await waitFor('the held peer to notice the late tick', async () => (await c.inspect(id)).status!.tickStalls > before.tickStalls);
  });
});
