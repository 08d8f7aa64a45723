// What a peer object costs, counted where it is spent (worker/edge/costs.ts), in real workerd:
// a write moves rows written on every peer (its log entry is stored everywhere) and calls on the
// leader (it replicates); a restarted peer is a new instance whose reads of its own storage are
// counted; /status shows the counters as `cost` and /metrics as metcd_edge_*, the same numbers.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putRaw, startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';
import type { EdgeCosts } from '../../worker/edge/costs.ts';
import { parsePromText, sampleValue } from '../support/prom-text.ts';

const PEERS = ['p1', 'p2', 'p3'];
const WRITES = 5;

let c: EdgeCluster;
beforeAll(async () => {
  c = await startCluster({ vars: { CLUSTER_NAME: 'costs' } });
  expect((await c.follow('/warmup', { method: 'PUT', body: 'w' })).status).toBe(204);
});
afterAll(async () => {
  await c?.close();
});

async function costs(): Promise<Map<string, EdgeCosts>> {
  const out = new Map<string, EdgeCosts>();
  for (const id of PEERS) out.set(id, (await c.inspect(id)).cost);
  return out;
}

describe('edge cost counters', () => {
  it('a write moves rows written on every peer, calls on the leader and its followers, and client requests on the leader', async () => {
    const leader = await c.leader();
    const followers = PEERS.filter((p) => p !== leader);
    // Every peer has applied what came before, so nothing older is still being written.
    await waitFor('every peer to apply the warm-up', async () => {
      const views = await Promise.all(PEERS.map((p) => c.inspect(p)));
      return views.every((v) => v.status !== null && v.status.applied === views[0]!.status!.commit);
    });
    const before = await costs();
    for (let i = 0; i < WRITES; i++) expect((await putRaw(c, `cost-${i}`, `v${i}`)).status).toBe(204);
    const revision = (await c.status(leader)).revision;
    await waitFor('every peer to apply the writes', async () => {
      for (const p of PEERS) if ((await c.inspect(p)).status!.revision < revision) return false;
      return true;
    });
    const after = await costs();
    for (const p of PEERS) {
      const [b, a] = [before.get(p)!, after.get(p)!];
      expect(a.instance, `${p} restarted during the test`).toBe(b.instance);
      // Each write is at least one log row on every peer (plus its key row once applied).
      expect(a.sqliteRowsWritten - b.sqliteRowsWritten, p).toBeGreaterThanOrEqual(WRITES);
      expect(a.awakeMs, p).toBeGreaterThanOrEqual(b.awakeMs);
    }
    const [lb, la] = [before.get(leader)!, after.get(leader)!];
    // The leader replicates each write: at least one call to each follower in all.
    expect(la.rpcCallsSent - lb.rpcCallsSent).toBeGreaterThanOrEqual(followers.length);
    expect(la.clientRequests - lb.clientRequests).toBeGreaterThanOrEqual(WRITES);
    for (const f of followers) expect(after.get(f)!.rpcCallsReceived - before.get(f)!.rpcCallsReceived, f).toBeGreaterThanOrEqual(1);
  });

  it('a restarted peer is a new instance, and its reading of its own storage is counted', async () => {
    const leader = await c.leader();
    const lone = PEERS.find((p) => p !== leader)!;
    const before = (await c.inspect(lone)).cost;
    await c.peer(lone).abort('cost test');
    let after = before;
    await waitFor(`${lone} to come back as a new instance`, async () => {
      try {
        const v = await c.inspect(lone);
        after = v.cost;
        return v.opened && after.instance !== before.instance;
      } catch {
        return false; // the aborted object's stub is broken; the harness hands out a new one
      }
    });
    expect(after.startedAtMs).toBeGreaterThanOrEqual(before.startedAtMs);
    // Opening the peer read its log, hard state and KV rows back.
    expect(after.sqliteRowsRead).toBeGreaterThan(0);
  });

  it('/status shows the counters as cost, and /metrics the same numbers as metcd_edge_*', async () => {
    const leader = await c.leader();
    const res = await c.request(`/status?peer=${leader}`);
    expect(res.status).toBe(200);
    const status = (await res.json()) as { id: string; role: string; cost: EdgeCosts };
    expect(status.id).toBe(leader);
    expect(Object.keys(status.cost).sort()).toEqual(
      [
        'alarmsFired',
        'alarmsSet',
        'awakeMs',
        'clientRequests',
        'instance',
        'rpcCallsReceived',
        'rpcCallsSent',
        'sqliteRowsRead',
        'sqliteRowsWritten',
        'startedAtMs',
      ].sort(),
    );
    const scrape = await c.request(`/metrics?peer=${leader}`);
    expect(scrape.status).toBe(200);
    const families = parsePromText(await scrape.text());
    const metric = (name: string): number => {
      const v = sampleValue(families, name);
      if (v === undefined) throw new Error(`${name} missing`);
      return v;
    };
    // Scraped after /status: each counter is at least what /status showed, from the same instance.
    expect(metric('metcd_edge_instance_start_time_seconds')).toBe(status.cost.startedAtMs / 1000);
    expect(metric('metcd_edge_sqlite_rows_written_total')).toBeGreaterThanOrEqual(status.cost.sqliteRowsWritten);
    expect(metric('metcd_edge_sqlite_rows_read_total')).toBeGreaterThanOrEqual(status.cost.sqliteRowsRead);
    expect(metric('metcd_edge_rpc_calls_sent_total')).toBeGreaterThanOrEqual(status.cost.rpcCallsSent);
    expect(metric('metcd_edge_rpc_calls_received_total')).toBeGreaterThanOrEqual(status.cost.rpcCallsReceived);
    expect(metric('metcd_edge_client_requests_total')).toBe(status.cost.clientRequests + 1);
    expect(metric('metcd_edge_alarms_set_total')).toBeGreaterThanOrEqual(status.cost.alarmsSet);
    expect(metric('metcd_edge_alarms_fired_total')).toBeGreaterThanOrEqual(status.cost.alarmsFired);
    expect(metric('metcd_edge_awake_seconds_total')).toBeGreaterThanOrEqual(status.cost.awakeMs / 1000);
    expect(status.cost.clientRequests).toBeGreaterThan(0);
    expect(status.cost.sqliteRowsWritten).toBeGreaterThan(0);
  });
});
