// metcd's TypeScript client (`metcd/client`): the API of README.md over fetch, for browsers,
// Workers and Node alike (only fetch, AbortSignal, TextDecoder and ReadableStream: no Node API).
//
// `MetcdClient` is the one object callers hold; each group of calls lives in its own file:
// transport.ts (endpoints, leader tracking, redirects, retries with exactly-once sessions,
// deadlines), kv.ts (keys, transactions, compaction), watch.ts (watch iterators that resume),
// leases.ts (leases and the keep-alive loop), turns.ts (locks and elections), cluster.ts
// (members, status, health, tokens, backups). Every failure is a MetcdError (errors.ts).

import { Transport } from './transport.ts';
import { getKey, range, putKey, deleteKey, txn, compact } from './kv.ts';
import { watch } from './watch.ts';
import { leaseGrant, leaseKeepAlive, leaseList, leaseRevoke, leaseTimeToLive, keepAliveLoop } from './leases.ts';
import { lock, campaign, electionLeader, observe } from './turns.ts';
import * as cluster from './cluster.ts';
import type {
  ClientOptions,
  CallOptions,
  KeyValue,
  GetOptions,
  RangeOptions,
  RangeResult,
  PutOptions,
  Txn,
  TxnResult,
  WatchOptions,
  Watch,
  Lease,
  LeaseInfo,
  KeepAliveHandle,
  LockOptions,
  LockHandle,
  CampaignOptions,
  Leadership,
  Members,
  PeerStatus,
  EndpointOptions,
  ElectionLeader,
  ObserveOptions,
} from './types.ts';

export { MetcdError } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export type * from './types.ts';

export class MetcdClient {
  private readonly t: Transport;

  readonly lease = {
    grant: (ttl: number, opts?: CallOptions): Promise<Lease> => leaseGrant(this.t, ttl, opts),
    keepAlive: (id: string, opts?: CallOptions): Promise<Lease> => leaseKeepAlive(this.t, id, opts),
    revoke: (id: string, opts?: CallOptions): Promise<{ deleted: number; revision: number }> => leaseRevoke(this.t, id, opts),
    timeToLive: (id: string, opts?: CallOptions): Promise<LeaseInfo> => leaseTimeToLive(this.t, id, opts),
    /** One page of leases in id order (`more`: pass the last id as `after` for the next). */
    list: (opts?: CallOptions & { limit?: number; after?: string }) => leaseList(this.t, opts),
    /** Keeps a lease alive every ttl/3 until stopped or lost (404: it expired or was revoked). */
    keepAliveLoop: (lease: Lease): KeepAliveHandle => keepAliveLoop(this.t, lease),
  };

  readonly tokens: ReturnType<typeof cluster.tokenApi>;

  constructor(options: ClientOptions) {
    this.t = new Transport(options);
    this.tokens = cluster.tokenApi(this.t);
  }

  /** The base URLs given (trimmed). */
  get endpoints(): readonly string[] {
    return this.t.endpoints;
  }

  /** The leader last named by a peer ('' while unknown). */
  get leader(): string {
    return this.t.leader;
  }

  /** The base URL requests go to first (the leader's, once known). */
  get endpoint(): string {
    return this.t.endpoint;
  }

  // ---- keys (kv.ts) ----

  /** The key, or null when it does not exist (at `revision`, when given). */
  get(key: string, opts: GetOptions = {}): Promise<KeyValue | null> {
    return getKey(this.t, key, opts);
  }

  /** One page of a sorted range (a prefix, or [start, end)). */
  range(opts: RangeOptions = {}): Promise<RangeResult> {
    return range(this.t, opts);
  }

  /** Writes the key (exactly once, however often it is retried); answers the new revision. */
  put(key: string, value: string, opts: PutOptions = {}): Promise<{ revision: number }> {
    return putKey(this.t, key, value, opts);
  }

  /** Deletes the key (or, with `prefix`, every key under it, in one revision). */
  delete(key: string, opts: CallOptions & { prefix?: boolean } = {}): Promise<{ deleted: number; revision: number }> {
    return deleteKey(this.t, key, opts);
  }

  /** An etcd transaction in one revision (README, Transactions), exactly once. */
  txn(t: Txn, opts?: CallOptions): Promise<TxnResult> {
    return txn(this.t, t, opts);
  }

  /** Discards the history below `revision` (admin). */
  compact(revision: number, opts?: CallOptions): Promise<{ revision: number; compactRevision: number }> {
    return compact(this.t, revision, opts);
  }

  // ---- watch (watch.ts) ----

  /** Every change of a key, a prefix or a range, one frame per revision, as an async iterator
   *  that resumes after any break without skipping or repeating (watch.ts). */
  watch(opts: WatchOptions): Watch {
    return watch(this.t, opts);
  }

  // ---- locks and elections (turns.ts) ----

  /** Takes the lock `name` (blocking up to `wait`), keeps its lease alive, and answers the
   *  holder's key and fencing token. release() deletes the key and revokes a lease it granted. */
  lock(name: string, opts: LockOptions = {}): Promise<LockHandle> {
    return lock(this.t, name, opts);
  }

  /** Campaigns in election `name` with `value` until elected (blocking up to `wait`); answers the
   *  leader's key and fencing token, with proclaim() and resign(). */
  campaign(name: string, value: string, opts: CampaignOptions = {}): Promise<Leadership> {
    return campaign(this.t, name, value, opts);
  }

  /** The election's leader now, or null when there is none. */
  electionLeader(name: string, opts?: CallOptions): Promise<ElectionLeader | null> {
    return electionLeader(this.t, name, opts);
  }

  /** The election's leader now and at every change (null: none), as an async iterator that
   *  reconnects after a break; ends when `signal` aborts. */
  observe(name: string, opts: ObserveOptions = {}): AsyncGenerator<ElectionLeader | null> {
    return observe(this.t, name, opts);
  }

  // ---- cluster (cluster.ts) ----

  members(opts?: CallOptions): Promise<Members> {
    return cluster.members(this.t, opts);
  }

  /** Adds a member (`POST /join`); on Node `address` is the new node's URL. */
  addMember(member: { id: string; address?: string; learner?: boolean }, opts?: CallOptions): Promise<Members> {
    return cluster.addMember(this.t, member, opts);
  }

  removeMember(id: string, opts?: CallOptions): Promise<Members> {
    return cluster.removeMember(this.t, id, opts);
  }

  promoteMember(id: string, opts?: CallOptions): Promise<Members> {
    return cluster.promoteMember(this.t, id, opts);
  }

  /** Hands leadership to `id`; answers the new leader. */
  moveLeader(id: string, opts?: CallOptions): Promise<{ leader: string }> {
    return cluster.moveLeader(this.t, id, opts);
  }

  /** A peer's own status: `endpoint`'s, else the first that answers. */
  status(opts: EndpointOptions = {}): Promise<PeerStatus> {
    return cluster.status(this.t, opts);
  }

  /** Whether a peer is healthy (a leader known and caught up): `{ok, reason?}`, never throws on 503. */
  health(opts: EndpointOptions = {}): Promise<{ ok: boolean; reason?: string }> {
    return cluster.health(this.t, opts);
  }

  /** A backup of the whole state (admin), as a stream; `revision` is the backup's. */
  snapshot(opts: EndpointOptions = {}): Promise<{ revision: number; body: ReadableStream<Uint8Array> }> {
    return cluster.snapshot(this.t, opts);
  }
}

/** A client for `endpoints` (see ClientOptions). */
export function createClient(options: ClientOptions): MetcdClient {
  return new MetcdClient(options);
}
