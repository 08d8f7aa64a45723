// GET /metrics on a real 3-node cluster: every node scraped over HTTP as Prometheus would
// (a bearer token with the status right; a stranger and a token without it refused), the
// answer read by a strict parser of the text format, and the counters moving with real writes,
// real fsyncs and a partition.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, followLeader } from './proc-cluster.ts';
import type { ProcNode } from './proc-cluster.ts';
import { waitFor } from '../support/wait.ts';
import { parsePromText, requiredSample } from '../support/prom-text.ts';
import type { PromFamily } from '../support/prom-text.ts';

const ROOT = 'node-root-token-metrics-0123456789';
const cluster = new ProcCluster({ engine: 'memory', rootToken: ROOT });
beforeAll(() => cluster.start());
afterAll(() => cluster.stopAll());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
let scrapeToken = '';

async function scrape(node: ProcNode, token = scrapeToken): Promise<Map<string, PromFamily>> {
  const res = await fetch(`${node.url}/metrics`, { headers: bearer(token), signal: AbortSignal.timeout(3000) });
  expect(res.status, `${node.id} /metrics`).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePromText(await res.text());
}

const value = requiredSample;

describe('Node: GET /metrics', () => {
  it('needs the status right: a stranger gets 401, a key-only token 403, a status token and root 200', async () => {
    const leader = await cluster.leader({ all: true });
    const make = async (body: object): Promise<string> => {
      const res = await followLeader(leader, '/auth/tokens', { method: 'POST', headers: bearer(ROOT), body: JSON.stringify(body) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { token: string }).token;
    };
    scrapeToken = await make({ name: 'prometheus', status: true });
    const reader = await make({ name: 'reader', rules: [{ prefix: 'app/', access: 'read' }] });
    for (const node of cluster.live()) {
      await waitFor(`${node.id} to know the scrape token`, 10_000, async () =>
        (await fetch(`${node.url}/metrics`, { headers: bearer(scrapeToken) })).status === 200 ? true : undefined,
      );
      expect((await fetch(`${node.url}/metrics`)).status, node.id).toBe(401);
      expect((await fetch(`${node.url}/metrics`, { headers: bearer(reader) })).status, node.id).toBe(403);
      expect((await fetch(`${node.url}/metrics`, { headers: bearer(ROOT) })).status, node.id).toBe(200);
    }
  });

  it('every node: one leader among them, has_leader 1; writes move applied, revision and real fsync times everywhere', async () => {
    await cluster.withStableLeader(async (leader) => {
      const before = new Map<string, Map<string, PromFamily>>();
      for (const node of cluster.live()) before.set(node.id, await scrape(node));
      expect(cluster.live().reduce((n, node) => n + value(before.get(node.id)!, 'metcd_server_is_leader'), 0)).toBe(1);
      for (let i = 0; i < 5; i++) {
        const res = await followLeader(leader, `/metrics-node-${i}`, { method: 'PUT', body: 'v', headers: bearer(ROOT) });
        expect(res.status).toBe(204);
      }
      for (const node of cluster.live()) await cluster.caughtUp(node, leader);
      for (const node of cluster.live()) {
        const b = before.get(node.id)!;
        const a = await scrape(node);
        expect(value(a, 'metcd_server_has_leader'), node.id).toBe(1);
        expect(value(a, 'metcd_server_is_leader'), node.id).toBe(node.id === leader.id ? 1 : 0);
        expect(value(a, 'metcd_server_leader_changes_seen_total'), node.id).toBeGreaterThanOrEqual(1);
        expect(
          value(a, 'metcd_server_proposals_applied_total') - value(b, 'metcd_server_proposals_applied_total'),
          node.id,
        ).toBeGreaterThanOrEqual(5);
        expect(value(a, 'metcd_server_proposals_committed_total'), node.id).toBeGreaterThanOrEqual(
          value(a, 'metcd_server_proposals_applied_total'),
        );
        expect(value(a, 'metcd_mvcc_current_revision') - value(b, 'metcd_mvcc_current_revision'), node.id).toBeGreaterThanOrEqual(5);
        const saves = value(a, 'metcd_disk_wal_fsync_duration_seconds_count') - value(b, 'metcd_disk_wal_fsync_duration_seconds_count');
        expect(saves, `${node.id} saves`).toBeGreaterThanOrEqual(1);
        // fsync takes time: measured with performance.now() on Node, never all zeros.
        expect(value(a, 'metcd_disk_wal_fsync_duration_seconds_sum'), node.id).toBeGreaterThan(0);
        expect(value(a, 'metcd_server_proposals_failed_total'), node.id).toBe(0);
      }
      const a = await scrape(leader);
      expect(value(a, 'metcd_http_requests_total', { method: 'PUT', route: '/:key+', code: '204' })).toBeGreaterThanOrEqual(5);
      expect(value(a, 'metcd_http_request_duration_seconds_sum', { method: 'PUT', route: '/:key+', code: '204' })).toBeGreaterThan(0);
    });
  });

  it('a partitioned node reports has_leader 0 while the others keep theirs; healed, a leader again', async () => {
    const leader = await cluster.leader({ all: true });
    const lone = cluster.live().find((n) => n.id !== leader.id)!;
    const others = cluster.live().filter((n) => n.id !== lone.id);
    await lone.setFaults({ dropFrom: others.map((n) => n.id), dropTo: others.map((n) => n.id) });
    try {
      await waitFor(`${lone.id} to report no leader`, 15_000, async () =>
        value(await scrape(lone), 'metcd_server_has_leader') === 0 ? true : undefined,
      );
      for (const node of others) expect(value(await scrape(node), 'metcd_server_has_leader'), node.id).toBe(1);
    } finally {
      await lone.setFaults({});
    }
    await waitFor(`${lone.id} to have a leader again`, 15_000, async () =>
      value(await scrape(lone), 'metcd_server_has_leader') === 1 ? true : undefined,
    );
  });
});
