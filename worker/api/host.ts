// What a host (edge Durable Object, Node server) gives the router, and the per-request context
// the routes work with.

import type { NodeId } from '../raft/types.ts';
import type { Peer } from '../peer/peer.ts';
import type { ApiRequest } from './exchange.ts';
import type { Authorize } from './authorize.ts';
import type { Grant } from './access.ts';
import type { RequestMetrics } from './metrics.ts';
import type { BackupHeader } from '../backup/format.ts';
import type { UiAssetName } from './ui-route.ts';

export interface ApiHost {
  /** The peer this request is served by. */
  peer: Peer;
  /** Where a client should go to reach `leader` (edge: same URL with ?peer=<id>; node: the
   *  leader's advertised URL + path + query). Used for 307 Location. */
  leaderUrl(request: { readonly url: string }, leader: NodeId, leaderAddress: string): string;
  /** Forward mode (proxy): send the request to the leader and return its answer. */
  forward?: (request: Request, leader: NodeId, leaderAddress: string) => Promise<Response>;
  mode: 'redirect' | 'proxy';
  /** The address to record for a joining member whose /join body names none (edge: the
   *  peer's object name). Without it, /join must carry "address". */
  memberAddress?: (id: NodeId) => string;
  limits?: Partial<ApiLimits>;
  /** Decides whether each request may run (authorize.ts); default: allowEverything. */
  authorize?: Authorize;
  /** Wall-clock milliseconds since the epoch (token creation and expiry); default Date.now.
   *  Give the authorizer the same clock. */
  now?: () => number;
  /** Loads a backup into this new cluster (PUT /snapshot, restore-route.ts); absent where a
   *  restore is offline (Node: metcd --restore). */
  restore?: BackupRestorer;
  /** The dashboard's file `name` (ui-route.ts), null when this host has none (not built). The
   *  name is always one of UI_ASSETS, never a path from the request. Without it, /ui is 404. */
  uiAsset?: (name: UiAssetName) => Promise<Uint8Array | null>;
  /** What hosting this peer costs, as the host counts it (edge: worker/edge/costs.ts): shown
   *  as `cost` in GET /status and as metcd_edge_* in GET /metrics. Without it, neither shows. */
  costs?: () => HostCosts;
  /** Bytes the peer's storage holds on disk (Node: every file of its engine's data directory;
   *  the edge: the object's SQLite database): shown as `diskBytes` in GET /status and
   *  metcd_disk_data_bytes in GET /metrics. */
  diskBytes?: () => number;
  /** The process's memory (Node: process.memoryUsage()): shown as `memory` in GET /status and
   *  as process_resident_memory_bytes and nodejs_* in GET /metrics. A Durable Object cannot
   *  see its isolate's memory, so the edge has none. */
  processMemory?: () => ProcessMemory;
  /** Unexpected failures (bugs) are logged here before the 500 answer. */
  log?: (level: 'debug' | 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown>) => void;
}

/** A process's memory, as Node's process.memoryUsage() reports it. */
export interface ProcessMemory {
  /** Resident set size: what the operating system holds for the process. */
  rssBytes: number;
  /** The JavaScript heap: in use, and reserved. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory outside the heap held by JavaScript objects (buffers, the engines' bindings). */
  externalBytes: number;
  /** Collections run to give back the heap a burst left reserved once the process went quiet
   *  (Node: node-runtime/heap-trim.ts), and the reserved bytes they gave back in all. */
  heapTrims?: number;
  heapTrimReleasedBytes?: number;
}

/** What a host does to load a checked backup into its cluster (the edge: worker/edge/import.ts). */
export interface BackupRestorer {
  /** The largest backup file accepted (413 past it). */
  bytesMax: number;
  /** Seeds every peer with `backup` (already checked whole) and restarts them; throws ApiError
   *  409 cluster_in_use when the cluster has applied a client command. Answers what to report. */
  run(backup: Uint8Array, header: BackupHeader): Promise<Record<string, unknown>>;
}

/** The counters of one host instance, in the units the platform bills (see costs.ts on the edge). */
export interface HostCosts {
  /** A random id of this instance: it changes when the object restarts (eviction, hibernation, abort). */
  instance: string;
  /** When this instance started (ms since the epoch). */
  startedAtMs: number;
  /** RPC calls this instance made to other objects (Raft batches, a genesis lookup, a forward). */
  rpcCallsSent: number;
  /** RPC calls other objects (and the Worker) made to this one, the operator's inspect excepted. */
  rpcCallsReceived: number;
  /** Client requests the Worker forwarded here. */
  clientRequests: number;
  /** Rows SQLite read and wrote for this instance's statements (the cursor's own counts). */
  sqliteRowsRead: number;
  sqliteRowsWritten: number;
  /** Alarms set, and alarms that fired (each a billed request). */
  alarmsSet: number;
  alarmsFired: number;
  /** Milliseconds this instance has been in memory, from its start to now: an upper bound on
   *  billed duration (an idle object that may hibernate is not billed). */
  awakeMs: number;
}

export interface ApiLimits {
  /** Body of the small JSON routes (/join, /transfer-leader). */
  jsonBodyBytesMax: number;
  /** Most keys one GET /key range answers (and the default `limit`). */
  rangeKeysMax: number;
  /** A range answer stops adding pairs once its keys and values pass this many bytes. */
  rangeBytesMax: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  jsonBodyBytesMax: 64 * 1024,
  rangeKeysMax: 1000,
  rangeBytesMax: 4 * 1024 * 1024,
};

export interface ApiContext {
  host: ApiHost;
  peer: Peer;
  request: ApiRequest;
  url: URL;
  /** The request method as routed (HEAD is answered as GET). */
  method: string;
  /** The host's hook, or allowEverything (router.ts calls it once, before the route runs). */
  authorize: Authorize;
  /** What the authorizer granted this request (anonymous until it has run): handlers check
   *  the keys only a body or query names against it (access.ts). */
  grant: Grant;
  limits: ApiLimits;
  /** The body once read (kept so a forward can resend it). */
  body: Uint8Array | null;
  /** The byte limit of this route's body (a forward reads at most this much). */
  bodyBytesMax: number;
  /** The route pattern the request resolved to (metrics label), UNROUTED until it resolved. */
  pattern: string;
  /** The router's request counts and latencies (GET /metrics renders them). */
  requests: RequestMetrics;
}
