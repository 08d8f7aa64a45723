// GET /metrics through the shared router over an in-process cluster: the Prometheus text format
// (read back by a strict parser of the format, test/support/prom-text.ts), etcd's names under
// metcd_, and counters that move when they should.

import { afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../../worker/raft/types.ts';
import { Exposition, METRICS_CONTENT_TYPE } from '../../worker/api/metrics.ts';
import { needsLeader } from '../../worker/api/router.ts';
import { Histogram } from '../../worker/peer/counters.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import { routersFor } from './routers.ts';
import { parsePromText, sampleValue } from '../support/prom-text.ts';
import type { PromFamily } from '../support/prom-text.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

async function setup(opts: Parameters<typeof TestCluster.start>[0] = {}) {
  const c = await TestCluster.start(opts);
  cluster = c;
  const router = routersFor(c);
  const call = (id: NodeId, path: string, init?: RequestInit): Promise<Response> =>
    c.drive(router(id).fetch(new Request(`${addressOf(id)}${path}`, init)));
  const scrape = async (id: NodeId): Promise<Map<string, PromFamily>> => {
    const res = await call(id, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe(METRICS_CONTENT_TYPE);
    return parsePromText(await res.text());
  };
  const value = async (id: NodeId, name: string, labels: Record<string, string> = {}): Promise<number> => {
    const v = sampleValue(await scrape(id), name, labels);
    if (v === undefined) throw new Error(`${name}${JSON.stringify(labels)} missing on ${id}`);
    return v;
  };
  return { c, call, scrape, value };
}

/** Every family GET /metrics exposes, with its type (README, Metrics). */
const FAMILIES: Record<string, PromFamily['type']> = {
  metcd_server_has_leader: 'gauge',
  metcd_server_is_leader: 'gauge',
  metcd_server_leader_changes_seen_total: 'counter',
  metcd_server_proposals_committed_total: 'gauge',
  metcd_server_proposals_applied_total: 'gauge',
  metcd_server_proposals_pending: 'gauge',
  metcd_server_proposals_failed_total: 'counter',
  metcd_server_reads_pending: 'gauge',
  metcd_server_term: 'gauge',
  metcd_server_quota_backend_bytes: 'gauge',
  metcd_server_tick_stalls_total: 'counter',
  metcd_server_failed: 'gauge',
  metcd_server_removed: 'gauge',
  metcd_disk_wal_fsync_duration_seconds: 'histogram',
  metcd_mvcc_db_total_size_in_bytes: 'gauge',
  metcd_mvcc_current_revision: 'gauge',
  metcd_mvcc_compact_revision: 'gauge',
  metcd_mvcc_keys_total: 'gauge',
  metcd_mvcc_watcher_total: 'gauge',
  metcd_mvcc_watch_queued_bytes: 'gauge',
  metcd_lease_active: 'gauge',
  metcd_snapshot_taken_total: 'counter',
  metcd_snapshot_take_duration_seconds: 'histogram',
  metcd_snapshot_installed_total: 'counter',
  metcd_snapshot_installed_staged_total: 'counter',
  metcd_snapshot_streams_opened_total: 'counter',
  metcd_snapshot_install_duration_seconds: 'histogram',
  metcd_raft_dropped_messages_total: 'counter',
  metcd_network_non_member_messages_total: 'counter',
  metcd_http_requests_total: 'counter',
  metcd_http_request_duration_seconds: 'histogram',
};

describe('GET /metrics (router, in-process cluster)', () => {
  it('every peer answers the text format with every family, each with HELP and TYPE', async () => {
    const env = await setup();
    await env.c.waitLeader();
    for (const id of ['p1', 'p2', 'p3']) {
      const families = await env.scrape(id);
      for (const [name, type] of Object.entries(FAMILIES)) {
        const f = families.get(name);
        expect(f, `${name} on ${id}`).toBeDefined();
        expect(f!.type, name).toBe(type);
        expect(f!.help, name).toMatch(/\S/);
      }
      expect(
        [...families.keys()].filter((n) => !(n in FAMILIES)),
        'undocumented families',
      ).toEqual([]);
      expect(sampleValue(families, 'metcd_server_has_leader')).toBe(1);
    }
  });

  it('a write moves committed, applied, the revision, the fsync histogram and the PUT /:key+ request series', async () => {
    const env = await setup();
    const leader = (await env.c.waitLeader()).id;
    const before = await env.scrape(leader);
    const at = (f: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}) => sampleValue(f, name, labels) ?? 0;
    const put = await env.call(leader, '/metrics-test-key', { method: 'PUT', body: 'v' });
    expect(put.status).toBe(204);
    await env.c.tick(2); // followers apply
    const after = await env.scrape(leader);
    expect(at(after, 'metcd_server_proposals_committed_total')).toBeGreaterThan(at(before, 'metcd_server_proposals_committed_total'));
    expect(at(after, 'metcd_server_proposals_applied_total')).toBeGreaterThan(at(before, 'metcd_server_proposals_applied_total'));
    expect(at(after, 'metcd_mvcc_current_revision')).toBe(at(before, 'metcd_mvcc_current_revision') + 1);
    expect(at(after, 'metcd_mvcc_keys_total')).toBe(at(before, 'metcd_mvcc_keys_total') + 1);
    expect(at(after, 'metcd_mvcc_db_total_size_in_bytes')).toBeGreaterThan(at(before, 'metcd_mvcc_db_total_size_in_bytes'));
    expect(at(after, 'metcd_disk_wal_fsync_duration_seconds_count')).toBeGreaterThan(
      at(before, 'metcd_disk_wal_fsync_duration_seconds_count'),
    );
    const series = { method: 'PUT', route: '/:key+', code: '204' };
    expect(at(before, 'metcd_http_requests_total', series)).toBe(0);
    expect(at(after, 'metcd_http_requests_total', series)).toBe(1);
    expect(at(after, 'metcd_http_request_duration_seconds_count', series)).toBe(1);
    expect(at(after, 'metcd_http_request_duration_seconds_bucket', { ...series, le: '+Inf' })).toBe(1);
    // The label is the route pattern, never the key; the scrapes themselves are counted too.
    expect(JSON.stringify([...after.get('metcd_http_requests_total')!.samples])).not.toContain('metrics-test-key');
    expect(at(after, 'metcd_http_requests_total', { method: 'GET', route: '/metrics', code: '200' })).toBe(1);
    // A follower applied it as well, and saved it.
    const follower = env.c.followers()[0]!;
    expect(await env.value(follower, 'metcd_server_proposals_applied_total')).toBe(at(after, 'metcd_server_proposals_applied_total'));
    expect(await env.value(follower, 'metcd_disk_wal_fsync_duration_seconds_count')).toBeGreaterThan(0);
  });

  it('an election bumps leader changes on every peer; has_leader and is_leader say who leads', async () => {
    const env = await setup();
    const leader = (await env.c.waitLeader()).id;
    await env.c.tick(2);
    const changes = new Map<NodeId, number>();
    for (const id of ['p1', 'p2', 'p3']) {
      changes.set(id, await env.value(id, 'metcd_server_leader_changes_seen_total'));
      expect(changes.get(id), id).toBeGreaterThanOrEqual(1);
      expect(await env.value(id, 'metcd_server_has_leader'), id).toBe(1);
      expect(await env.value(id, 'metcd_server_is_leader'), id).toBe(id === leader ? 1 : 0);
    }
    const next = env.c.followers()[0]!;
    const moved = await env.call(leader, '/transfer-leader', { method: 'POST', body: JSON.stringify({ id: next }) });
    expect(moved.status).toBe(200);
    await env.c.until(() => ['p1', 'p2', 'p3'].every((id) => env.c.peer(id).leaderId === next), 100, 'all follow the new leader');
    for (const id of ['p1', 'p2', 'p3']) {
      expect(await env.value(id, 'metcd_server_leader_changes_seen_total'), id).toBe(changes.get(id)! + 1);
      expect(await env.value(id, 'metcd_server_is_leader'), id).toBe(id === next ? 1 : 0);
    }
  });

  it('has_leader is 0 on an isolated peer once it gave up on its leader', async () => {
    const env = await setup();
    await env.c.waitLeader();
    await env.c.tick(2);
    const lone = env.c.followers()[0]!;
    expect(await env.value(lone, 'metcd_server_has_leader')).toBe(1);
    env.c.isolated.add(lone);
    await env.c.until(() => env.c.peer(lone).leaderId === '', 200, 'the isolated peer forgets its leader');
    expect(await env.value(lone, 'metcd_server_has_leader')).toBe(0);
    expect(await env.value(lone, 'metcd_server_is_leader')).toBe(0);
    // The others still have theirs.
    for (const id of ['p1', 'p2', 'p3'].filter((p) => p !== lone)) expect(await env.value(id, 'metcd_server_has_leader'), id).toBe(1);
  });

  it('a proposal lost with its leader counts as failed', async () => {
    const env = await setup();
    const leader = (await env.c.waitLeader()).id;
    expect(await env.value(leader, 'metcd_server_proposals_failed_total')).toBe(0);
    env.c.isolated.add(leader);
    const write = env.c.peer(leader).write({ op: 'put', pairs: [['lost', 'v']] });
    write.catch(() => {});
    await expect(env.c.drive(write, 400)).rejects.toThrow();
    env.c.isolated.delete(leader);
    expect(await env.value(leader, 'metcd_server_proposals_failed_total')).toBe(1);
  });

  it('snapshots taken and installed are counted, with durations', async () => {
    const env = await setup({ limits: { snapshotEveryEntries: 5 } });
    const leader = (await env.c.waitLeader()).id;
    await env.c.tick(2);
    const behind = env.c.followers()[0]!;
    env.c.isolated.add(behind);
    for (let i = 0; i < 12; i++) expect((await env.call(leader, `/s${i}`, { method: 'PUT', body: 'v' })).status).toBe(204);
    await env.c.until(() => env.c.peer(leader).status().snapshotIndex > 0, 50, 'a snapshot on the leader');
    expect(await env.value(leader, 'metcd_snapshot_taken_total')).toBeGreaterThanOrEqual(1);
    expect(await env.value(leader, 'metcd_snapshot_take_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    env.c.isolated.delete(behind);
    await env.c.until(() => env.c.peer(behind).status().applied >= env.c.peer(leader).status().applied, 200, 'the follower caught up');
    expect(await env.value(behind, 'metcd_snapshot_installed_total')).toBeGreaterThanOrEqual(1);
    expect(await env.value(behind, 'metcd_snapshot_install_duration_seconds_count')).toBeGreaterThanOrEqual(1);
  });

  it('watchers, leases and the compacted revision are gauges of the current state', async () => {
    const env = await setup();
    const leader = (await env.c.waitLeader()).id;
    const lease = await env.call(leader, '/lease', { method: 'POST', body: '{"ttl":60}' });
    expect(lease.status).toBe(200);
    expect(await env.value(leader, 'metcd_lease_active')).toBe(1);
    const watcher = env.c.peer(leader).watch({ key: 'w' });
    expect(await env.value(leader, 'metcd_mvcc_watcher_total')).toBe(1);
    watcher.close();
    expect(await env.value(leader, 'metcd_mvcc_watcher_total')).toBe(0);
    for (const k of ['a', 'a']) expect((await env.call(leader, `/${k}`, { method: 'PUT', body: 'v' })).status).toBe(204);
    const rev = await env.value(leader, 'metcd_mvcc_current_revision');
    expect((await env.call(leader, '/compact', { method: 'POST', body: JSON.stringify({ revision: rev }) })).status).toBe(200);
    expect(await env.value(leader, 'metcd_mvcc_compact_revision')).toBe(rev);
  });

  it('any peer answers from its own state: a host never holds a scrape for an election', () => {
    expect(needsLeader({ method: 'GET', url: 'http://x/metrics' })).toBe(false);
    expect(needsLeader({ method: 'GET', url: 'http://x/metrics?peer=p2' })).toBe(false);
  });

  it('a wrong method on /metrics is 405; /metrics/x is 404 (a reserved segment)', async () => {
    const env = await setup();
    const leader = (await env.c.waitLeader()).id;
    const post = await env.call(leader, '/metrics', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('Allow')).toBe('GET');
    expect((await env.call(leader, '/metrics/x')).status).toBe(404);
    const families = await env.scrape(leader);
    expect(sampleValue(families, 'metcd_http_requests_total', { method: 'POST', route: '/metrics', code: '405' })).toBe(1);
    expect(sampleValue(families, 'metcd_http_requests_total', { method: 'GET', route: '/metrics/*', code: '404' })).toBe(1);
  });
});

describe('the exposition writer', () => {
  it('escapes label values and help, writes histograms cumulatively, and refuses a family written twice', () => {
    const h = new Histogram([0.1, 1]);
    for (const v of [0.05, 0.5, 0.5, 3]) h.observe(v);
    const out = new Exposition()
      .gauge('x_gauge', 'a help with \\ and\na line feed', [[{ path: 'a"b\\c\nd' }, 1.5]])
      .counter('x_total', 'count', 0)
      .histogram('x_seconds', 'durations', [[{ op: 'save' }, h]]);
    const text = out.text();
    expect(text).toContain('# HELP x_gauge a help with \\\\ and\\na line feed\n');
    expect(text).toContain('x_gauge{path="a\\"b\\\\c\\nd"} 1.5\n');
    const families = parsePromText(text);
    expect(families.get('x_gauge')!.help).toBe('a help with \\ and\na line feed');
    expect(families.get('x_gauge')!.samples[0]!.labels['path']).toBe('a"b\\c\nd');
    expect(sampleValue(families, 'x_seconds_bucket', { le: '0.1' })).toBe(1);
    expect(sampleValue(families, 'x_seconds_bucket', { le: '1' })).toBe(3);
    expect(sampleValue(families, 'x_seconds_bucket', { le: '+Inf' })).toBe(4);
    expect(sampleValue(families, 'x_seconds_count')).toBe(4);
    expect(sampleValue(families, 'x_seconds_sum')).toBeCloseTo(4.05);
    expect(() => new Exposition().counter('y_total', 'a', 1).gauge('y_total', 'b', 2)).toThrow(/written twice/);
  });

  it('the parser refuses what Prometheus would (so the checks above mean something)', () => {
    const bad = [
      'x 1', // no final line feed
      'x{a="1"} one\n',
      'x{a="1",a="2"} 1\n',
      'x{a=1} 1\n',
      '# TYPE x counter\n# TYPE x counter\nx 1\n',
      '# TYPE x counter\nx -1\n',
      'x 1\ny 1\nx{a="b"} 2\n',
      'x 1\nx 2\n',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
      'x{a="\\q"} 1\n',
    ];
    for (const text of bad) expect(() => parsePromText(text), JSON.stringify(text)).toThrow();
  });
});
