// GET /metrics: a peer's metrics in the Prometheus text exposition format (version 0.0.4), the
// same on both runtimes. Names follow etcd's, with a metcd_ prefix, where the meaning is the
// same (README, Metrics), so etcd's dashboards and alerts port by a rename.
//
// One writer (Exposition) renders every family, each once (a second family of the same name is
// a bug and throws). What is counted lives where it happens: the peer's events and durations in
// the peer (worker/peer/counters.ts, Peer.counters), its current values in Peer.status(), the
// requests in the router (RequestMetrics, timed per resolved route pattern, never per key).

import { Histogram } from '../peer/counters.ts';
import type { Peer } from '../peer/peer.ts';
import type { ApiReply } from './exchange.ts';
import type { HostCosts, ProcessMemory } from './host.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Readonly<Record<string, string>>;
type MetricType = 'counter' | 'gauge' | 'histogram';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A sample value as the format writes it (Go's ParseFloat reads all of these). */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** A label value: backslash, double quote and line feed escaped. */
function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed escaped. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra !== undefined) pairs.push(extra);
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** The Prometheus text format, written one metric family at a time. */
export class Exposition {
  private readonly out: string[] = [];
  private readonly families = new Set<string>();

  private family(name: string, type: MetricType, help: string): void {
    if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`);
    if (this.families.has(name)) throw new Error(`metric family ${name} written twice`);
    this.families.add(name);
    this.out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  private sample(name: string, labels: Labels, value: number, extra?: [string, string]): void {
    for (const label of Object.keys(labels)) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`bad label name ${label} on ${name}`);
    }
    this.out.push(`${name}${labelText(labels, extra)} ${formatValue(value)}`);
  }

  /** A counter family: one sample per label set (a plain number: one sample without labels). */
  counter(name: string, help: string, samples: number | ReadonlyArray<readonly [Labels, number]>): this {
    return this.simple(name, 'counter', help, samples);
  }

  gauge(name: string, help: string, samples: number | ReadonlyArray<readonly [Labels, number]>): this {
    return this.simple(name, 'gauge', help, samples);
  }

  private simple(name: string, type: MetricType, help: string, samples: number | ReadonlyArray<readonly [Labels, number]>): this {
    this.family(name, type, help);
    if (typeof samples === 'number') this.sample(name, {}, samples);
    else for (const [labels, value] of samples) this.sample(name, labels, value);
    return this;
  }

  /** A histogram family: _bucket per bound (cumulative) and +Inf, _sum, _count, per label set. */
  histogram(name: string, help: string, samples: Histogram | ReadonlyArray<readonly [Labels, Histogram]>): this {
    this.family(name, 'histogram', help);
    const all: ReadonlyArray<readonly [Labels, Histogram]> = samples instanceof Histogram ? [[{}, samples]] : samples;
    for (const [labels, h] of all) {
      if ('le' in labels) throw new Error(`label le is the histogram's own (${name})`);
      const cumulative = h.cumulative();
      h.bounds.forEach((bound, i) => this.sample(`${name}_bucket`, labels, cumulative[i]!, ['le', formatValue(bound)]));
      this.sample(`${name}_bucket`, labels, h.count, ['le', '+Inf']);
      this.sample(`${name}_sum`, labels, h.sum);
      this.sample(`${name}_count`, labels, h.count);
    }
    return this;
  }

  text(): string {
    return this.out.length === 0 ? '' : `${this.out.join('\n')}\n`;
  }
}

/** Upper bounds, in seconds, of the request latency histograms: 0.5 ms to 10 s. */
export const REQUEST_SECONDS_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Methods counted by name; anything else a client sends is counted as "other" (bounded labels). */
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS']);

/** The label for a request that never reached a route (refused before one was resolved). */
export const UNROUTED = '(none)';

interface RequestSeries {
  labels: Labels;
  count: number;
  seconds: Histogram;
}

/**
 * Requests a router answered, by method, resolved route pattern (e.g. "/:key+", never the key
 * itself) and status code, and how long each took to answer (a watch: until its stream began).
 * The patterns come from the route table, so the label sets are bounded.
 */
export class RequestMetrics {
  private readonly series = new Map<string, RequestSeries>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : 'other';
    const key = `${m} ${status} ${route}`;
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: { method: m, route, code: String(status) }, count: 0, seconds: new Histogram(REQUEST_SECONDS_BUCKETS) };
      this.series.set(key, s);
    }
    s.count++;
    s.seconds.observe(seconds);
  }

  write(out: Exposition): void {
    const all = [...this.series.values()].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
    out.counter(
      'metcd_http_requests_total',
      'Requests answered by this peer, by method, route pattern and status code.',
      all.map((s) => [s.labels, s.count] as const),
    );
    out.histogram(
      'metcd_http_request_duration_seconds',
      'Time to answer a request (a watch: until its stream began), by method, route pattern and status code.',
      all.map((s) => [s.labels, s.seconds] as const),
    );
  }
}

function keyOf(s: RequestSeries): string {
  return `${s.labels['route']} ${s.labels['method']} ${s.labels['code']}`;
}

/** What hosting the peer costs, as its host counts it (the edge's Durable Object; README, Metrics).
 *  Counters of one instance: they start again from 0 when the object restarts. */
function writeHostCosts(out: Exposition, c: HostCosts): void {
  out
    .counter('metcd_edge_rpc_calls_sent_total', 'RPC calls this peer object made to other objects.', c.rpcCallsSent)
    .counter('metcd_edge_rpc_calls_received_total', 'RPC calls this peer object received (each a billed request).', c.rpcCallsReceived)
    .counter('metcd_edge_client_requests_total', 'Client requests the Worker forwarded to this peer object.', c.clientRequests)
    .counter('metcd_edge_sqlite_rows_read_total', "Rows SQLite read for this peer object's statements.", c.sqliteRowsRead)
    .counter('metcd_edge_sqlite_rows_written_total', "Rows SQLite wrote for this peer object's statements.", c.sqliteRowsWritten)
    .counter('metcd_edge_alarms_set_total', 'Durable Object alarms this peer object set.', c.alarmsSet)
    .counter('metcd_edge_alarms_fired_total', 'Durable Object alarms that woke this peer object (each a billed request).', c.alarmsFired)
    .counter(
      'metcd_edge_awake_seconds_total',
      'Seconds this peer object instance has been in memory (an upper bound on billed duration).',
      c.awakeMs / 1000,
    )
    .gauge('metcd_edge_instance_start_time_seconds', 'When this peer object instance started (Unix seconds).', c.startedAtMs / 1000);
}

/** Everything a peer exposes, rendered once per scrape (with its host's costs when it counts them). */
export function renderMetrics(peer: Peer, requests: RequestMetrics, host: HostGauges = {}): string {
  const { costs, diskBytes, memory } = host;
  const st = peer.status();
  const c = peer.counters;
  const out = new Exposition();
  // server (etcd_server_*)
  out
    .gauge('metcd_server_has_leader', 'Whether a leader is known to this peer (1) or not (0).', st.leader === '' ? 0 : 1)
    .gauge('metcd_server_is_leader', 'Whether this peer is the leader (1) or not (0).', st.role === 'leader' ? 1 : 0)
    .counter('metcd_server_leader_changes_seen_total', 'Times this peer saw a new leader, since it started.', c.leaderChanges)
    .gauge('metcd_server_proposals_committed_total', 'The commit index this peer knows (as etcd, a gauge).', st.commit)
    .gauge('metcd_server_proposals_applied_total', 'The log index applied here (as etcd, a gauge).', st.applied)
    .gauge('metcd_server_proposals_pending', 'Proposals waiting to be applied on this peer.', st.pendingProposals)
    .counter(
      'metcd_server_proposals_failed_total',
      'Proposals this peer took that failed: refused, lost to a leader change, timed out or stopped.',
      c.proposalsFailed,
    )
    .gauge('metcd_server_reads_pending', 'Linearizable reads waiting here for a ReadIndex round or apply.', st.pendingReads)
    .gauge('metcd_server_term', 'The Raft term this peer is in.', st.term)
    .gauge('metcd_server_quota_backend_bytes', 'The state size quota: puts are refused (no-space) past it.', st.stateBytesMax)
    .counter('metcd_server_tick_stalls_total', 'Ticks that came more than two tick lengths apart.', st.tickStalls)
    .gauge('metcd_server_failed', 'Whether this peer stopped serving after a storage failure (1) or not (0).', st.failure === null ? 0 : 1)
    .gauge('metcd_server_removed', 'Whether this peer was removed from the cluster (1) or not (0).', st.removed === null ? 0 : 1);
  // disk (etcd_disk_*)
  out.histogram(
    'metcd_disk_wal_fsync_duration_seconds',
    "Time of the peer's durable writes (storage save: log, hard state and apply results; fsync on Node).",
    c.saveSeconds,
  );
  // state (etcd_mvcc_*, etcd_debugging_mvcc_*)
  const watch = peer.watchStats();
  out
    .gauge('metcd_mvcc_db_total_size_in_bytes', 'Keys, values and history held, in bytes (what the quota counts).', st.stateBytes)
    .gauge('metcd_mvcc_current_revision', 'The KV revision applied here.', st.revision)
    .gauge('metcd_mvcc_compact_revision', 'Reads below this revision are refused (history compacted).', st.compactRevision)
    .gauge('metcd_mvcc_keys_total', 'Keys held.', st.keys)
    .gauge('metcd_mvcc_watcher_total', 'Watches and blocking reads registered on this peer.', st.watchers)
    .gauge('metcd_mvcc_watch_queued_bytes', 'Bytes of events queued for the watchers of this peer.', watch.bytes)
    .gauge('metcd_lease_active', 'Leases held.', st.leases);
  // the hot-record cache of a tiered engine (absent when the key space is all in memory)
  const cache = st.cache;
  if (cache !== null) {
    out
      .counter('metcd_cache_hits_total', 'Record reads answered from memory (the cache or unsaved changes).', cache.hits)
      .counter('metcd_cache_misses_total', 'Record reads that went to the storage engine.', cache.misses)
      .counter('metcd_cache_misses_off_loop_total', 'Of those, reads fetched off the event loop before the read ran.', cache.missesOffLoop)
      .counter('metcd_cache_evictions_total', 'Records the cache pushed out to make room.', cache.evictions)
      .gauge('metcd_cache_entries', 'Records held in the cache.', cache.entries)
      .gauge('metcd_cache_bytes', 'Estimated memory of the records held in the cache.', cache.bytes)
      .gauge('metcd_cache_capacity_bytes', 'The cache budget (--cache-bytes).', cache.capacityBytes)
      .gauge('metcd_cache_pending_changes', 'Applied changes held in memory until their save is durable.', cache.pending);
  }
  // snapshots
  out
    .counter('metcd_snapshot_taken_total', 'Snapshots of the applied state taken on this peer.', c.snapshotsTaken)
    .histogram('metcd_snapshot_take_duration_seconds', 'Time to take a snapshot, from its first slice to its last.', c.snapshotTakeSeconds)
    .counter('metcd_snapshot_installed_total', 'Snapshots installed here from a leader.', c.snapshotsInstalled)
    .counter(
      'metcd_snapshot_installed_staged_total',
      'Of those, snapshots staged on disk a chunk at a time as they arrived.',
      c.snapshotsInstalledStaged,
    )
    .counter(
      'metcd_snapshot_streams_opened_total',
      'Snapshot transfers to followers streamed from a view of the applied state.',
      c.snapshotStreamsOpened,
    )
    .histogram('metcd_snapshot_install_duration_seconds', 'Time of the durable write that installed a snapshot.', c.snapshotInstallSeconds);
  // messages dropped
  out.counter(
    'metcd_raft_dropped_messages_total',
    'Raft messages the core dropped, by reason (malformed, stale term, unknown sender...).',
    Object.entries(st.dropped)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([reason, n]) => [{ reason }, n] as const),
  );
  const nm = st.nonMemberMessages;
  out.counter('metcd_network_non_member_messages_total', 'Raft messages from senders that are not members, before the core.', [
    [{ sender: 'removed', outcome: 'dropped' }, nm.droppedRemoved],
    [{ sender: 'unknown', outcome: 'dropped' }, nm.droppedUnknown],
    [{ sender: 'unknown', outcome: 'admitted' }, nm.admittedUnknownLeader],
  ]);
  requests.write(out);
  if (costs !== undefined) writeHostCosts(out, costs);
  if (diskBytes !== undefined)
    out.gauge(
      'metcd_disk_data_bytes',
      "Bytes the peer's storage holds on disk (Node: its data directory; edge: its SQLite database).",
      diskBytes,
    );
  if (memory !== undefined) {
    out
      .gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', memory.rssBytes)
      .gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', memory.heapUsedBytes)
      .gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', memory.heapTotalBytes)
      .gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', memory.externalBytes);
    if (memory.heapTrims !== undefined) {
      out
        .counter('metcd_heap_trims_total', 'Collections run to give back the heap a burst left reserved, once the node was quiet.', [
          [{}, memory.heapTrims],
        ])
        .counter('metcd_heap_trim_released_bytes_total', 'Reserved heap those collections gave back, in bytes.', [
          [{}, memory.heapTrimReleasedBytes ?? 0],
        ]);
    }
  }
  return out.text();
}

/** What the host measures itself, rendered with the peer's metrics when it has them. */
export interface HostGauges {
  costs?: HostCosts;
  diskBytes?: number;
  memory?: ProcessMemory;
}

/** GET /metrics (need: status). Any peer answers from its own state, leader or not. */
export function metricsReply(peer: Peer, requests: RequestMetrics, host: HostGauges): ApiReply {
  return { status: 200, headers: { 'Content-Type': METRICS_CONTENT_TYPE }, body: renderMetrics(peer, requests, host) };
}
