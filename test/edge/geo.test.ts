// Geo-placement on workerd with simulated distance (TEST_REGION_RTT_MS, worker/edge/latency.ts):
// p1 in wnam, p2 in enam (40 ms away), p3 in apac (3 s away, far beyond any write). A write sent
// to the leader p1 commits once the nearest follower has it: the leader answers while the far
// follower's acknowledgement cannot have arrived yet (asserted on the leader's own progress
// record, not on how fast anything was), and no sooner than the injected round trip to the
// nearest follower. The far follower gets the entry later.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putRaw, startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';

const NEAR_RTT_MS = 40;
const FAR_RTT_MS = 3000;

let c: EdgeCluster;
beforeAll(async () => {
  c = await startCluster({
    vars: {
      CLUSTER_NAME: 'geo',
      LOCATION_HINTS: 'p1=wnam,p2=enam,p3=apac',
      TEST_REGION_RTT_MS: `enam-wnam=${NEAR_RTT_MS},apac-wnam=${FAR_RTT_MS},apac-enam=${FAR_RTT_MS}`,
    },
  });
  expect((await c.follow('/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
});
afterAll(async () => {
  await c?.close();
});

describe('edge: a write costs the round trip to the nearest majority', () => {
  it('the leader commits with its near follower while the far one has not acknowledged', async () => {
    let leader = await c.leader(['p1', 'p2']);
    if (leader !== 'p1') {
      expect((await c.follow('/transfer-leader', { method: 'POST', body: '{"id":"p1"}' })).status).toBe(200);
      leader = await c.leader(['p1', 'p2']);
    }
    expect(leader).toBe('p1');
    for (let i = 0; i < 3; i++) {
      const before = (await c.status('p1')).lastIndex;
      const t0 = performance.now();
      expect((await putRaw(c, `geo-${i}`, 'v')).status).toBe(204);
      const elapsedMs = performance.now() - t0;
      const s = await c.status('p1');
      const match = new Map(s.members.map((m) => [m.id, m.match]));
      // Committed (and answered) with the write's index above what the far follower acknowledged.
      expect(s.commit, `write ${i}`).toBeGreaterThan(before);
      expect(match.get('p3') ?? 0, `write ${i}: p3 acknowledged it already`).toBeLessThanOrEqual(before);
      expect(match.get('p2') ?? 0, `write ${i}`).toBeGreaterThan(before);
      // The answer waited for the near follower: at least the injected round trip to it.
      expect(elapsedMs, `write ${i}`).toBeGreaterThanOrEqual(NEAR_RTT_MS);
    }
    // The far follower gets everything in the end.
    const last = (await c.status('p1')).lastIndex;
    await waitFor('p3 to acknowledge the writes', async () => {
      const s = await c.status('p1');
      return (s.members.find((m) => m.id === 'p3')?.match ?? 0) >= last;
    });
  });
});
