// Leases (TTL), etcd style, in the replicated state. A lease is granted with a TTL, keys are
// attached to it by puts, and revoking it deletes every attached key in one revision. WHEN a
// lease expires is decided by the leader's lessor (worker/peer/lessor.ts), which proposes the
// revoke: the state machine never reads a clock, it only holds which leases exist, their granted
// TTL and their keys.
//
// Like the tokens and the history, leases live in the KV map itself, as records under metcd's own
// keys (tokens.ts), so every engine, snapshot and restore carries them with no storage change:
//   \u0001lease/<id, 16 digits>   →  "<ttl seconds>"   a granted lease
//                                 →  "<ttl>,<owner>"    one granted by an API token (its id),
//                                                       counted against that token's quota
//   \u0001lk/<key>                →  "<id>"            <key> is attached to lease <id>
// LeaseTable is the in-memory index over those records (rebuilt from them on restore).
//
// A lease's id is the log index of the entry that granted it: unique for the cluster's life,
// the same on every replica, with no randomness to inject (etcd picks a random 63-bit id; ours
// are below 2^53, so JSON numbers would do, but the API writes them as decimal strings, as
// etcd's JSON gateway writes int64s).

import { INTERNAL_KEY_PREFIX, TOKEN_ID_PATTERN } from './tokens.ts';
import type { RecordWrites } from './history.ts';

const LEASE_PREFIX = `${INTERNAL_KEY_PREFIX}lease/`;
const LEASE_KEY_PREFIX = `${INTERNAL_KEY_PREFIX}lk/`;
const ID_DIGITS = 16;

/** TTL bounds in seconds (etcd's maximum is 9e9 s; a month is plenty for a liveness lease). */
export const LEASE_TTL_MIN_SECONDS = 1;
export const LEASE_TTL_MAX_SECONDS = 30 * 24 * 3600;

/** Who may own a lease: an API token, by its id. */
export const LEASE_OWNER_PATTERN = TOKEN_ID_PATTERN;

export function isLeaseRecordKey(key: string): boolean {
  return key.startsWith(LEASE_PREFIX) || key.startsWith(LEASE_KEY_PREFIX);
}

export function leaseKey(id: number): string {
  return LEASE_PREFIX + String(id).padStart(ID_DIGITS, '0');
}

export function attachmentKey(key: string): string {
  return LEASE_KEY_PREFIX + key;
}

export function isLeaseId(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 1;
}

export function isLeaseTtl(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= LEASE_TTL_MIN_SECONDS && x <= LEASE_TTL_MAX_SECONDS;
}

/** A lease as reads see it. */
export interface LeaseInfo {
  id: number;
  /** The TTL it was granted, in seconds. */
  ttl: number;
  /** Its keys, sorted. */
  keys: string[];
}

/** What the peer and the API see of the leases (the applied state's). */
export interface LeaseView {
  readonly size: number;
  get(id: number): LeaseInfo | undefined;
  /** The lease `key` is attached to, or 0. */
  leaseOf(key: string): number;
  /** Every lease's id and granted TTL (the lessor's deadlines start from these). */
  ttls(): IterableIterator<[id: number, ttl: number]>;
}

interface Lease {
  ttl: number;
  keys: Set<string>;
  /** The API token that granted it ('' for the root and cluster tokens and open mode). */
  owner: string;
}

export class LeaseTable implements LeaseView {
  private readonly leases = new Map<number, Lease>();
  private readonly byKey = new Map<string, number>();
  /** Leases held per owning API token. */
  private readonly byOwner = new Map<string, number>();

  /** Rebuild from the lease records of a stored state; a malformed one means corrupt state. */
  static restore(records: Iterable<[string, string]>): LeaseTable {
    const t = new LeaseTable();
    const attachments: Array<[string, number]> = [];
    for (const [key, value] of records) {
      if (key.startsWith(LEASE_PREFIX)) {
        const id = Number(key.slice(LEASE_PREFIX.length));
        const comma = value.indexOf(',');
        const ttl = Number(comma < 0 ? value : value.slice(0, comma));
        const owner = comma < 0 ? '' : value.slice(comma + 1);
        if (!isLeaseId(id) || key !== leaseKey(id) || !isLeaseTtl(ttl) || (comma >= 0 && !LEASE_OWNER_PATTERN.test(owner))) {
          throw corrupt(key);
        }
        t.leases.set(id, { ttl, keys: new Set(), owner });
        t.count(owner, 1);
      } else {
        const n = Number(value);
        if (!isLeaseId(n) || key.length === LEASE_KEY_PREFIX.length) throw corrupt(key);
        attachments.push([key.slice(LEASE_KEY_PREFIX.length), n]);
      }
    }
    for (const [key, id] of attachments) {
      const lease = t.leases.get(id);
      if (lease === undefined) throw new Error(`KV state: key ${JSON.stringify(key)} is attached to lease ${id}, which does not exist`);
      lease.keys.add(key);
      t.byKey.set(key, id);
    }
    return t;
  }

  get size(): number {
    return this.leases.size;
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  get(id: number): LeaseInfo | undefined {
    const lease = this.leases.get(id);
    return lease === undefined ? undefined : { id, ttl: lease.ttl, keys: [...lease.keys].sort() };
  }

  /** Leases API token `owner` holds. */
  ownedBy(owner: string): number {
    return this.byOwner.get(owner) ?? 0;
  }

  leaseOf(key: string): number {
    return this.byKey.get(key) ?? 0;
  }

  *ttls(): IterableIterator<[number, number]> {
    for (const [id, lease] of this.leases) yield [id, lease.ttl];
  }

  /** How many keys lease `id` would hold once `keys` are attached to it. */
  keysAfter(id: number, keys: Iterable<string>): number {
    const lease = this.leases.get(id)!;
    let n = lease.keys.size;
    for (const key of keys) if (!lease.keys.has(key)) n++;
    return n;
  }

  /** Lease `id` granted for `ttl` seconds, by API token `owner` ('' for none). */
  grant(id: number, ttl: number, owner: string, writes: RecordWrites): void {
    if (this.leases.has(id)) throw new Error(`lease ${id} granted twice`);
    this.leases.set(id, { ttl, keys: new Set(), owner });
    this.count(owner, 1);
    writes.set(leaseKey(id), owner === '' ? String(ttl) : `${ttl},${owner}`);
  }

  private count(owner: string, delta: number): void {
    if (owner === '') return;
    const n = (this.byOwner.get(owner) ?? 0) + delta;
    if (n < 0) throw new Error(`lease owner ${owner}: count below zero`);
    if (n === 0) this.byOwner.delete(owner);
    else this.byOwner.set(owner, n);
  }

  /** `key` was put with lease `id` (0: none, which detaches it, as etcd). */
  attach(key: string, id: number, writes: RecordWrites): void {
    const old = this.byKey.get(key) ?? 0;
    if (old === id) return;
    if (old !== 0) this.detach(key, writes);
    if (id === 0) return;
    this.leases.get(id)!.keys.add(key);
    this.byKey.set(key, id);
    writes.set(attachmentKey(key), String(id));
  }

  /** `key` was deleted (or put without a lease): it leaves its lease. */
  detach(key: string, writes: RecordWrites): void {
    const id = this.byKey.get(key);
    if (id === undefined) return;
    this.byKey.delete(key);
    this.leases.get(id)!.keys.delete(key);
    writes.remove(attachmentKey(key));
  }

  /** Forget lease `id` and its attachments; returns its keys, sorted (for the caller to delete). */
  revoke(id: number, writes: RecordWrites): string[] {
    const lease = this.leases.get(id)!;
    const keys = [...lease.keys].sort();
    for (const key of keys) this.detach(key, writes);
    this.leases.delete(id);
    this.count(lease.owner, -1);
    writes.remove(leaseKey(id));
    return keys;
  }
}

function corrupt(key: string): Error {
  return new Error(`KV state: lease record ${JSON.stringify(key)} is malformed`);
}
