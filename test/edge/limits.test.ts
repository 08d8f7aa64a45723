// The platform's limits, end to end in real workerd: the largest value metcd accepts, the
// largest batch, and a snapshot of a state of many 1 MiB values are written through the public
// Worker, replicated, restarted from and installed on a new member, with every row inside the
// Durable Object row limit (the storage refuses any row above it: a refusal would stop the peer
// and show as a failure here). And ?peer= never touches an object outside the cluster.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putRaw, startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';
import { DEFAULT_KV_LIMITS } from '../../worker/kv/types.ts';
import { parsePromText, sampleValue } from '../support/prom-text.ts';

const PEERS = ['p1', 'p2', 'p3'];
const { valueBytesMax, commandBytesMax } = DEFAULT_KV_LIMITS;
/** Values of many distinct bytes, each a full 1 MiB (2-byte characters: UTF-8 is what counts). */
const bigValue = (seed: number) => String.fromCharCode(0xe0 + (seed % 16)).repeat(valueBytesMax / 2);
const MANY = 24;

let c: EdgeCluster;
beforeAll(async () => {
  // Snapshots every 8 entries, so the large state below is snapshotted, compacted and installed.
  c = await startCluster({ vars: { CLUSTER_NAME: 'limits', SNAPSHOT_EVERY_ENTRIES: '8' } });
  expect((await c.follow('/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
});
afterAll(async () => {
  await c?.close();
});

async function staleValue(peer: string, key: string): Promise<string | null> {
  const res = await c.request(`/${key}?level=stale&peer=${peer}`);
  if (res.status !== 200) {
    await res.arrayBuffer();
    return null;
  }
  return res.text();
}

async function healthy(peer: string): Promise<void> {
  const s = await c.status(peer);
  expect(s.failure, `${peer} stopped`).toBeNull();
}

describe('edge: the row limit, end to end', () => {
  it('the largest value is written, replaced (leaving a history record of it) and read on every peer; one byte more is 413', async () => {
    expect((await putRaw(c, 'big', bigValue(1))).status).toBe(204);
    expect((await putRaw(c, 'big', bigValue(2))).status).toBe(204);
    for (const p of PEERS) await waitFor(`${p} to hold the value`, async () => (await staleValue(p, 'big')) === bigValue(2));
    const old = await c.follow(`/key/big?revision=${(await c.status(await c.leader())).revision - 1}`);
    expect(old.status).toBe(200);
    expect(JSON.stringify(await old.json())).toContain(bigValue(1).slice(0, 100));
    const over = await putRaw(c, 'big', bigValue(3) + 'x');
    expect(over.status).toBe(413);
    await over.arrayBuffer();
    for (const p of PEERS) await healthy(p);
  });

  it('the largest batch: one command of two near-largest values, applied on every peer; a larger one is 413', async () => {
    const half = (commandBytesMax - 16 * 1024) / 2;
    const body = { 'batch/a': 'a'.repeat(half), 'batch/b': 'b'.repeat(half) };
    const res = await c.follow('/key', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    for (const p of PEERS) await waitFor(`${p} to hold the batch`, async () => (await staleValue(p, 'batch/b'))?.length === half);
    const over = await c.follow('/key', {
      method: 'POST',
      body: JSON.stringify({ 'batch/a': 'a'.repeat(valueBytesMax), 'batch/b': 'b'.repeat(valueBytesMax) }),
    });
    expect(over.status).toBe(413);
    await over.arrayBuffer();
    for (const p of PEERS) await healthy(p);
  });

  it('a state of many 1 MiB values is snapshotted on every peer, restarted from, and installed on a new member', async () => {
    for (let i = 0; i < MANY; i++) expect((await putRaw(c, `many/${i}`, bigValue(i))).status).toBe(204);
    const leader = await c.leader();
    const commit = (await c.status(leader)).commit;
    for (const p of PEERS) {
      await waitFor(`${p} to apply and snapshot the state`, async () => {
        const s = await c.status(p);
        // A tiered peer compacts to the point one interval back (worker/peer/snapshot-job.ts).
        return s.applied >= commit && s.snapshotIndex >= commit - 16;
      });
    }
    // A follower restarted from its storage: snapshot (many chunk rows) and log.
    const follower = PEERS.find((p) => p !== leader)!;
    await c.peer(follower).abort('limits test');
    await waitFor(`${follower} back with the state`, async () => {
      try {
        return (await staleValue(follower, `many/${MANY - 1}`)) === bigValue(MANY - 1);
      } catch {
        return false;
      }
    });
    // A new member gets the state as a snapshot the leader streams from its records, staged
    // chunk by chunk and swapped in for the records in one transaction.
    expect((await c.follow('/join', { method: 'POST', body: '{"id":"p4","learner":true}' })).status).toBe(200);
    await waitFor('p4 to install the snapshot and catch up', async () => {
      try {
        const s = await c.status('p4');
        return s.applied >= commit;
      } catch {
        return false;
      }
    });
    for (let i = 0; i < MANY; i += 5) expect(await staleValue('p4', `many/${i}`), `many/${i} on p4`).toBe(bigValue(i));
    for (const p of [...PEERS, 'p4']) await healthy(p);
    // It came as a snapshot, not as the log (compacted long before).
    const scrape = await c.request('/metrics?peer=p4');
    expect(sampleValue(parsePromText(await scrape.text()), 'metcd_snapshot_installed_total')).toBeGreaterThanOrEqual(1);
  });
});

describe('edge: ?peer= outside the cluster', () => {
  it('is refused by the Worker before any object sees a request or a call', async () => {
    for (const name of ['p8', 'p1-other', 'zz']) {
      const res = await c.request(`/status?peer=${name}`);
      expect(res.status, name).toBe(404);
      await res.arrayBuffer();
      // Inspecting creates the object if it does not exist; it must have had nothing before.
      const v = await c.inspect(name);
      expect(v.opened, name).toBe(false);
      expect(v.cost.clientRequests + v.cost.rpcCallsReceived, name).toBe(0);
      expect(v.cost.sqliteRowsWritten, name).toBe(0);
    }
  });
});
