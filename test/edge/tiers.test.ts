// The edge's tiers in real workerd: each peer's SQLite holds the key space and memory a cache of
// a few records (CACHE_BYTES, TEST_CACHE_BYTES in every edge test), so the reads below go to
// storage. /status and /metrics report the cache; writes, overwrites, deletes, ranges, a watch's
// replay from the first revision come out whole on every peer, and `diskBytes` is the database's size; a peer whose object
// restarts serves them from storage without reading them at start; the quota is a disk quota
// (QUOTA_BYTES), its 507 at the configured bytes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CACHE_BYTES, putRaw, startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';
import { parsePromText, sampleValue } from '../support/prom-text.ts';
import { sseFrames } from '../../worker/client/sse.ts';

const PEERS = ['p1', 'p2', 'p3'];
const KEYS = 120;
const QUOTA_BYTES = 4 * 1024 * 1024;
const key = (i: number) => `tier/${String(i).padStart(4, '0')}`;
const value = (i: number, round: number) => `edge value ${i} of round ${round} `.padEnd(80, '.');

let c: EdgeCluster;
beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'tiers', QUOTA_BYTES: String(QUOTA_BYTES) } });
});
afterAll(async () => {
  await c?.close();
});

async function stale(peer: string, k: string): Promise<string | null> {
  const res = await c.request(`/${k}?level=stale&peer=${peer}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  expect(res.status).toBe(200);
  return res.text();
}

describe('edge: each peer holds the key space in its SQLite', () => {
  it('writes, overwrites and deletes read back on every peer through a tiny cache', { timeout: 120_000 }, async () => {
    for (const round of [1, 2]) {
      for (let i = 0; i < KEYS; i += 40) {
        const body = Object.fromEntries(Array.from({ length: 40 }, (_, j) => [key(i + j), value(i + j, round)]));
        expect((await c.follow('/key', { method: 'POST', body: JSON.stringify(body) })).status).toBe(200);
      }
    }
    for (let i = 0; i < 20; i++) expect((await c.follow(`/${key(i)}`, { method: 'DELETE' })).status).toBe(204);
    const leader = await c.leader();
    const commit = (await c.status(leader)).commit;
    for (const p of PEERS) await waitFor(`${p} applied`, async () => (await c.status(p)).applied >= commit);
    for (const p of PEERS) {
      for (const i of [0, 19, 20, 57, KEYS - 1]) expect(await stale(p, key(i)), `${p} ${key(i)}`).toBe(i < 20 ? null : value(i, 2));
      const range = (await (await c.request(`/key?prefix=tier/&level=stale&peer=${p}&limit=1000`)).json()) as Record<string, string>;
      expect(Object.keys(range)).toHaveLength(KEYS - 20);
      for (let i = 20; i < KEYS; i++) expect(range[key(i)], `${p} range ${key(i)}`).toBe(value(i, 2));
      const s = await c.status(p);
      expect(s.cache, p).not.toBeNull();
      expect(s.cache!.capacityBytes).toBe(TEST_CACHE_BYTES);
      expect(s.cache!.bytes).toBeLessThanOrEqual(TEST_CACHE_BYTES);
      expect(s.cache!.misses, `${p} read its storage`).toBeGreaterThan(KEYS);
      const families = parsePromText(await (await c.request(`/metrics?peer=${p}`)).text());
      expect(sampleValue(families, 'metcd_cache_capacity_bytes')).toBe(TEST_CACHE_BYTES);
      expect(sampleValue(families, 'metcd_cache_misses_total')).toBeGreaterThan(KEYS);
      // Bytes on disk: the object's SQLite database, which holds the records.
      const diskBytes = (s as typeof s & { diskBytes?: number }).diskBytes;
      expect(diskBytes, `${p} diskBytes`).toBeGreaterThan(KEYS * 80);
      expect(sampleValue(families, 'metcd_disk_data_bytes')).toBeGreaterThan(KEYS * 80);
    }
  });

  it("a watch replays every change from the first revision, read from the peers' storage", async () => {
    const res = await c.follow(`/watch?prefix=tier/&fromRevision=1`);
    expect(res.status).toBe(200);
    const events: Array<{ type: string; key: string; value: string | null }> = [];
    for await (const frame of sseFrames(res.body!)) {
      if (frame.event !== 'revision') continue;
      events.push(...(JSON.parse(frame.data) as typeof events));
      if (events.length >= 2 * KEYS + 20) break;
    }
    await res.body?.cancel().catch(() => undefined);
    expect(events.filter((e) => e.type === 'put')).toHaveLength(2 * KEYS);
    expect(events.slice(-20).map((e) => `${e.type} ${e.key}`)).toEqual(Array.from({ length: 20 }, (_, i) => `delete ${key(i)}`));
    expect(events.find((e) => e.key === key(50) && e.value === value(50, 1))).toBeDefined();
  });

  it('a peer object that restarts serves the records from storage', async () => {
    const leader = await c.leader();
    const follower = PEERS.find((p) => p !== leader)!;
    await c.peer(follower).abort('tiers test');
    await waitFor(`${follower} back`, async () => {
      try {
        return (await stale(follower, key(KEYS - 1))) === value(KEYS - 1, 2);
      } catch {
        return false;
      }
    });
    const s = await c.status(follower);
    expect(s.keys).toBe(KEYS - 20);
    expect(s.cache!.entries).toBeLessThan(KEYS); // not loaded at start: read on demand
  });

  it('the quota is the QUOTA_BYTES var, a disk quota: 507 past it, reads still served', async () => {
    const big = 'q'.repeat(1024 * 1024 - 64);
    let refused = false;
    for (let i = 0; i < 8 && !refused; i++) {
      const res = await putRaw(c, `quota/${i}`, big);
      await res.arrayBuffer();
      if (res.status === 507) refused = true;
      else expect(res.status).toBe(204);
    }
    expect(refused).toBe(true);
    expect((await c.status(await c.leader())).stateBytesMax).toBe(QUOTA_BYTES);
    expect(await stale(await c.leader(), key(KEYS - 1))).toBe(value(KEYS - 1, 2));
  });
});
