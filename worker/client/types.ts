// The client's public types: options, answers and handles (index.ts has the client itself).

import type { MetcdError } from './errors.ts';

export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Base URLs of the peers (Node: each node; edge: the Worker's URL). A string may be a comma list. */
  endpoints: string | readonly string[];
  /** An API token or the root token: sent as `Authorization: Bearer …` on every request. */
  token?: string;
  /** Default deadline of each call, retries included (ms). Default 10,000. */
  timeoutMs?: number;
  /** A fetch to use instead of the global one (a test harness, a service binding). */
  fetch?: FetchFunction;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export type ReadLevel = 'default' | 'consistent' | 'stale';

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
}

export interface GetOptions extends CallOptions {
  level?: ReadLevel;
  /** The key as it was at this revision. */
  revision?: number;
}

export interface RangeOptions extends CallOptions {
  prefix?: string;
  start?: string;
  end?: string;
  limit?: number;
  level?: ReadLevel;
  revision?: number;
}

export interface RangeResult {
  kvs: Array<{ key: string; value: string }>;
  /** The range was cut at `limit`: ask again from `nextStart`. */
  more: boolean;
  nextStart: string | null;
  /** The store's revision the answer reflects. */
  revision: number;
}

export interface PutOptions extends CallOptions {
  /** Attach the key to this lease. */
  lease?: string;
  /** Compare-and-set: write only if the key's mod revision is this (0: only if absent), else 409 compare_failed. */
  ifRevision?: number;
}

export interface TxnCompare {
  key: string;
  target: 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
  result: '==' | '!=' | '<' | '>';
  value: string | number;
}

export type TxnOp =
  | { put: { key: string; value: string; lease?: string } }
  | { delete: { key: string } | { prefix: string } }
  | { get: { key: string } | { prefix: string; limit?: number } };

export interface Txn {
  compare?: TxnCompare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  results: unknown[];
}

export interface WatchOptions extends CallOptions {
  /** Watch one key; with `prefix: true`, every key under it. */
  key?: string;
  /** Watch every key under this prefix (a string), or under `key` (true). */
  prefix?: string | boolean;
  /** Watch the range [start, end) ('' end: no bound). */
  start?: string;
  end?: string;
  /** Replay from this revision, then follow. Without it: the changes after the serving peer's revision. */
  fromRevision?: number;
  /** Ask for a progress frame after this much silence (100 ms to 10 min; server default 10 s). */
  progressMs?: number;
  /** Yield progress frames too (an empty `events`). */
  progress?: boolean;
  level?: 'stale' | 'consistent';
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value: string | null;
  revision: number;
  createRevision: number;
  modRevision: number;
  version: number;
  prevValue?: string;
}

export interface WatchResponse {
  /** The revision of this frame; every revision up to it has been delivered. */
  revision: number;
  /** The matching changes of that revision (empty for a progress frame). */
  events: WatchEvent[];
}

export interface Watch extends AsyncIterable<WatchResponse> {
  /** Ends the watch (the iterator then returns). */
  close(): void;
  /** How many times the stream was reconnected. */
  readonly reconnects: number;
}

export interface Lease {
  id: string;
  ttl: number;
}

export interface LeaseInfo extends Lease {
  grantedTtl: number;
  keys: string[];
}

export interface KeepAliveHandle {
  /** Stops keeping the lease alive (it then expires after its TTL unless revoked). */
  stop(): void;
  /** Resolves when the loop stops: undefined when stopped, the error when the lease was lost. */
  readonly done: Promise<MetcdError | undefined>;
}

export interface LockOptions extends CallOptions {
  /** TTL of the lease granted for the lock (s, default 60); or use `lease`. */
  ttl?: number;
  /** The caller's own lease (then the caller keeps it alive). */
  lease?: string;
  /** How long to wait for the lock (server default 30 s, at most 5 min), e.g. '10s'. */
  wait?: string;
}

export interface Held {
  /** The holder's key (lock/<name>/<lease hex>, election/<name>/…). */
  key: string;
  lease: string;
  /** The fencing token: the key's create revision; every later holder's is larger. */
  revision: number;
  /** Resolves with an error if the lease could no longer be kept alive (the lock may be lost). */
  readonly lost: Promise<MetcdError>;
}

export interface LockHandle extends Held {
  release(opts?: CallOptions): Promise<void>;
}

export interface CampaignOptions extends CallOptions {
  ttl?: number;
  lease?: string;
  wait?: string;
}

export interface Leadership extends Held {
  proclaim(value: string, opts?: CallOptions): Promise<number>;
  resign(opts?: CallOptions): Promise<void>;
}

export interface TokenRule {
  prefix: string;
  access: 'read' | 'write' | 'readwrite';
}

export interface TokenSpec {
  name: string;
  rules?: TokenRule[];
  admin?: boolean;
  status?: boolean;
  ttl?: number;
}

export interface TokenInfo {
  id: string;
  name: string;
  rules: TokenRule[];
  admin: boolean;
  status: boolean;
  createdAt: string;
  expiresAt: string | null;
  expired: boolean;
}

export interface Member {
  id: string;
  address: string;
  voter: boolean;
  match?: number | null;
}

export interface Members {
  leader: string;
  members: Member[];
}

/** A peer's own view (`GET /status`; worker/peer/outcomes.ts has every field). */
export interface PeerStatus {
  id: string;
  role: string;
  term: number;
  leader: string;
  commit: number;
  applied: number;
  revision: number;
  compactRevision: number;
  keys: number;
  leases: number;
  stateBytes: number;
  stateBytesMax: number;
  members: Array<{ id: string; address: string; voter: boolean }>;
  [field: string]: unknown;
}

/** Per-endpoint options for the introspection calls (`endpoint` pins the peer asked). */
export interface EndpointOptions extends CallOptions {
  /** Ask this base URL, not the leader's. */
  endpoint?: string;
  /** Ask this peer by id (`?peer=`: the edge's Worker fronts every peer on one URL). */
  peer?: string;
}

/** An election's leader (`GET /election/:name`). */
export interface ElectionLeader {
  key: string;
  value: string;
  revision: number;
  lease: string;
}

export interface ObserveOptions extends CallOptions {
  /** Stop when this aborts (the iterator ends). */
  signal?: AbortSignal;
}

/** How a request may be retried. */
