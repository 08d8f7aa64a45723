// GET /metrics on the edge, in real workerd: every peer scraped through the Worker with
// ?peer=, behind the deployment's access control (a bearer token with the status right), the
// answer read by a strict parser of the Prometheus text format, and the counters moving with
// writes and an isolated peer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putRaw, startCluster, waitFor } from './harness.ts';
import type { EdgeCluster } from './harness.ts';
import { parsePromText, requiredSample } from '../support/prom-text.ts';
import type { PromFamily } from '../support/prom-text.ts';

const ROOT = 'edge-root-token-metrics-0123456789';
const PEERS = ['p1', 'p2', 'p3'];

let c: EdgeCluster;
let scrapeToken = '';
beforeAll(async () => {
  c = await startCluster({ vars: { METCD_AUTH: '', METCD_ROOT_TOKEN: ROOT }, headers: { authorization: `Bearer ${ROOT}` } });
  await c.leader();
});
afterAll(async () => {
  await c?.close();
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });

async function scrape(peer: string): Promise<Map<string, PromFamily>> {
  const res = await c.request(`/metrics?peer=${peer}`, { headers: as(scrapeToken) });
  expect(res.status, `/metrics?peer=${peer}`).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePromText(await res.text());
}

const value = requiredSample;

describe('edge: GET /metrics?peer=', () => {
  it('answers a token with the status right on every peer; a stranger 401, a key-only token 403', async () => {
    const make = async (body: object): Promise<string> => {
      const res = await c.follow('/auth/tokens', { method: 'POST', body: JSON.stringify(body) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { token: string }).token;
    };
    scrapeToken = await make({ name: 'prometheus', status: true });
    const reader = await make({ name: 'reader', rules: [{ prefix: 'app/', access: 'read' }] });
    for (const peer of PEERS) {
      await waitFor(`${peer} to know the scrape token`, async () => {
        const res = await c.request(`/metrics?peer=${peer}`, { headers: as(scrapeToken) });
        await res.arrayBuffer();
        return res.status === 200;
      });
      const families = await scrape(peer);
      expect(value(families, 'metcd_server_has_leader'), peer).toBe(1);
      const stranger = await c.server.fetch(`/metrics?peer=${peer}`, { headers: new Headers() } as Parameters<
        EdgeCluster['server']['fetch']
      >[1]);
      expect(stranger.status, peer).toBe(401);
      await stranger.arrayBuffer();
      const denied = await c.request(`/metrics?peer=${peer}`, { headers: as(reader) });
      expect(denied.status, peer).toBe(403);
      await denied.arrayBuffer();
    }
  });

  it('writes move applied, the revision and the save histogram on every peer, and the leader counts PUT /:key+', async () => {
    const leader = await c.leader();
    const before = new Map<string, Map<string, PromFamily>>();
    for (const peer of PEERS) before.set(peer, await scrape(peer));
    expect(PEERS.reduce((n, peer) => n + value(before.get(peer)!, 'metcd_server_is_leader'), 0)).toBe(1);
    for (let i = 0; i < 3; i++) expect((await putRaw(c, `metrics-edge-${i}`, 'v')).status).toBe(204);
    for (const peer of PEERS) {
      const b = before.get(peer)!;
      await waitFor(`${peer} to apply the writes`, async () => {
        const a = await scrape(peer);
        return value(a, 'metcd_mvcc_current_revision') >= value(b, 'metcd_mvcc_current_revision') + 3;
      });
      const a = await scrape(peer);
      expect(value(a, 'metcd_server_proposals_applied_total'), peer).toBeGreaterThan(value(b, 'metcd_server_proposals_applied_total'));
      expect(value(a, 'metcd_disk_wal_fsync_duration_seconds_count'), peer).toBeGreaterThan(
        value(b, 'metcd_disk_wal_fsync_duration_seconds_count'),
      );
      expect(value(a, 'metcd_server_leader_changes_seen_total'), peer).toBeGreaterThanOrEqual(1);
    }
    const series = { method: 'PUT', route: '/:key+', code: '204' };
    expect(value(await scrape(leader), 'metcd_http_requests_total', series)).toBeGreaterThanOrEqual(3);
  });

  it('an isolated peer reports has_leader 0; reconnected, 1 again', async () => {
    const leader = await c.leader();
    const lone = PEERS.find((p) => p !== leader)!;
    await c.peer(lone).isolate(true);
    try {
      await waitFor(`${lone} to report no leader`, async () => value(await scrape(lone), 'metcd_server_has_leader') === 0);
    } finally {
      await c.peer(lone).isolate(false);
    }
    await waitFor(`${lone} to have a leader again`, async () => value(await scrape(lone), 'metcd_server_has_leader') === 1);
  });
});
