// The public contract of the KV state machine: the commands that travel through the Raft log
// and the answers they produce. The state machine is pure: it applies committed commands in
// log order and never reads a clock.

/** Identifies a client's command for exactly-once application (at-least-once in, exactly-once out: worker/README.md). */
export interface ClientStamp {
  /** Client id, 1..64 printable ASCII chars. */
  client: string;
  /** Per-client sequence number, a positive safe integer; retries reuse it. */
  seq: number;
}

/** A condition on one key, checked before a write (compare-and-set). */
export type Compare =
  /** The key's mod revision equals `modRevision` (0 = the key does not exist). */
  { key: string; modRevision: number };

/** What a token may do with the keys under a prefix. */
export type TokenAccess = 'read' | 'write' | 'readwrite';

export interface TokenRule {
  /** Keys starting with this ('' = every key). */
  prefix: string;
  access: TokenAccess;
}

/** An API token as the replicated state holds it: its secret only as a SHA-256 digest. */
export interface TokenRecord {
  /** 16 lowercase hex digits, chosen by the peer that proposed it. */
  id: string;
  /** A label for people (1..128 printable ASCII), not unique. */
  name: string;
  /** SHA-256 of the secret, 64 lowercase hex digits. */
  hash: string;
  rules: TokenRule[];
  /** Membership, leadership, tokens: the cluster's administration. */
  admin: boolean;
  /** GET /status and /members. */
  status: boolean;
  /** Milliseconds since the epoch, or null for no expiry (checked by each peer's clock). */
  expiresAt: number | null;
  /** Milliseconds since the epoch, by the proposing peer's clock (informational). */
  createdAt: number;
}

export type KvCommand =
  /** Write one or many pairs in one revision. */
  /** `lease`: attach the keys to that lease; without it (or 0) a put detaches them (etcd). */
  | { op: 'put'; pairs: Array<[key: string, value: string]>; compare?: Compare; stamp?: ClientStamp; lease?: number }
  /** Delete keys (missing keys are not an error; `deleted` says how many existed). */
  | { op: 'delete'; keys: string[]; compare?: Compare; stamp?: ClientStamp }
  /** Create an API token (answered as a put; an id that exists is `invalid`). */
  | { op: 'token-put'; token: TokenRecord; compare?: undefined; stamp?: undefined }
  /** Revoke an API token (answered as a delete: `deleted` is 0 when there was none). */
  | { op: 'token-delete'; id: string; compare?: undefined; stamp?: undefined }
  /** Discard the history below `revision` (history.ts); at or below the compacted one: a no-op. */
  | { op: 'compact'; revision: number; compare?: undefined; stamp?: undefined }
  /** etcd's Txn: if every compare holds, the success ops, else the failure ops, in one revision (txn.ts). */
  | { op: 'txn'; compare: TxnCompare[]; success: TxnOp[]; failure: TxnOp[]; stamp?: ClientStamp }
  /** Grant a lease of `ttl` seconds (leases.ts); its id is this entry's log index. */
  | { op: 'lease-grant'; ttl: number; owner?: string; compare?: undefined; stamp?: undefined }
  /** Revoke a lease: its keys are deleted in one revision (answered as a delete). */
  | { op: 'lease-revoke'; id: number; compare?: undefined; stamp?: undefined };

/** A condition of a transaction, on one key (etcd's Compare). A missing key has version,
 *  createRevision and modRevision 0, and no value (a value compare on it is false). */
export interface TxnCompare {
  key: string;
  target: 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
  result: '==' | '!=' | '<' | '>';
  /** A string for `value`, a non-negative integer for the others. */
  value: string | number;
}

/** One operation of a transaction (etcd's RequestOp). */
export type TxnOp =
  | { put: { key: string; value: string; lease?: number } }
  | { delete: { key: string } | { prefix: string } }
  | { get: { key: string } | { prefix: string; limit?: number } };

/** What one operation of a transaction answered. */
export type TxnOpResult =
  | { put: { revision: number } }
  | { delete: { deleted: number } }
  | { get: { kvs: Array<[key: string, record: KeyRecord]>; more: boolean } };

/** etcd-style per-key metadata. */
export interface KeyRecord {
  value: string;
  /** Revision of the write that created the key (since its last deletion). */
  createRevision: number;
  /** Revision of the last write to the key. */
  modRevision: number;
  /** Number of writes since creation (1 after the first put). */
  version: number;
}

export type KvResult =
  | { ok: true; op: 'put'; revision: number }
  | { ok: true; op: 'delete'; revision: number; deleted: number }
  /** Never stamped, so never kept in a session. */
  | { ok: true; op: 'compact'; revision: number; compacted: number }
  /** `revision`: the store's revision after it (its writes' revision when it wrote). */
  | { ok: true; op: 'txn'; revision: number; succeeded: boolean; results: TxnOpResult[] }
  /** Never stamped either. `id` is the lease's id, `ttl` its granted TTL in seconds. */
  | { ok: true; op: 'lease-grant'; revision: number; id: number; ttl: number }
  /** The compare failed; nothing was written. `actual` is the key's mod revision (0 = absent). */
  | { ok: false; code: 'compare-failed'; revision: number; actual: number }
  /** The command was rejected by the state machine (e.g. a stale sequence number). */
  | { ok: false; code: 'session-expired' | 'invalid' | 'lease-not-found'; revision: number; message: string };

/** Limits on what a command may carry. Checked before proposing AND when applying. */
export interface KvLimits {
  keyBytesMax: number;
  valueBytesMax: number;
  pairsPerCommandMax: number;
  commandBytesMax: number;
  sessionsMax: number;
  /** A session unused for this many applied log entries expires. */
  sessionIdleEntriesMax: number;
  /** API tokens the cluster holds at most. */
  tokensMax: number;
  /** Compares, and operations per branch, of one transaction (etcd's --max-txn-ops). */
  txnOpsMax: number;
  /** Revisions of history kept: once the revision is this far plus an eighth past the compacted
   *  one, the state machine compacts to this many revisions back (as etcd's revision-based
   *  --auto-compaction-retention, but decided in apply, so every replica compacts alike). */
  historyRetention: number;
  /** Leases held at most, keys attached to one lease at most, and leases one API token holds
   *  at most. */
  leasesMax: number;
  leaseKeysMax: number;
  leasesPerOwnerMax: number;
}

/**
 * The largest row a host's storage keeps in one piece: SQLite-backed Durable Objects refuse a
 * string, BLOB or table row above 2 MB (read as 2,000,000 bytes, the smaller reading). Every
 * size limit of what is stored as one row is derived from it, never set beside it: a key's
 * record (key, value, revisions), a history record (the replaced value under a longer key), a
 * session's kept answer (sessionResultBytesMax). Log entries and snapshots are split into chunk
 * rows by the edge storage, which refuses any row above this before its transaction begins.
 */
export const STORAGE_ROW_BYTES_MAX = 2_000_000;

/** Room a row keeps for everything beside its key and value: the history key's prefix and
 *  revision digits, a history value's "p<create>,<version>," prefix, integer columns, SQLite's
 *  record header. Generous: the largest of these is under 100 bytes. */
export const ROW_FRAMING_BYTES_MAX = 1024;

const KEY_BYTES_MAX = 4 * 1024;
/** Values are the largest power of two that fits one row beside a largest key: 1 MiB. */
const VALUE_BYTES_MAX = 2 ** Math.floor(Math.log2(STORAGE_ROW_BYTES_MAX - KEY_BYTES_MAX - ROW_FRAMING_BYTES_MAX));

/** A stamped command's answer is kept in its client's session row (sessions.ts) only up to
 *  this many bytes (as JSON): a bigger one (a transaction's reads) is replaced by a note. */
export const SESSION_RESULT_BYTES_MAX = STORAGE_ROW_BYTES_MAX - KEY_BYTES_MAX - ROW_FRAMING_BYTES_MAX;

export const DEFAULT_KV_LIMITS: KvLimits = {
  keyBytesMax: KEY_BYTES_MAX,
  valueBytesMax: VALUE_BYTES_MAX,
  pairsPerCommandMax: 1024,
  // A command carries a largest value with its key and framing, and more: chunked in the log,
  // a command is not bound to one row.
  commandBytesMax: 2 * VALUE_BYTES_MAX,
  sessionsMax: 10_000,
  sessionIdleEntriesMax: 1_000_000,
  tokensMax: 1000,
  txnOpsMax: 128,
  historyRetention: 10_000,
  leasesMax: 10_000,
  leaseKeysMax: 10_000,
  // a tenth of the cluster's: no one token can take every lease from the others
  leasesPerOwnerMax: 1_000,
};

/** One client's session: the last sequence number applied and the answer it got. */
export interface SessionRecord {
  seq: number;
  result: KvResult;
  /** Log index of the last command applied for this client (drives expiry, not wall time). */
  lastIndex: number;
}

/** What the state machine counts over its records, kept with them by a store on disk so a
 *  restart need not read every record to know them (record-store.ts). */
export interface RecordSummary {
  /** Records held, metcd's own keys included. */
  records: number;
  /** Of those, records under metcd's own keys (tokens, history, leases). */
  internalRecords: number;
  /** Σ pairBytes(key, value) over every record (the space quota's measure). */
  bytes: number;
}

/**
 * What applying a batch of commands changed, for the host to persist in the same transaction
 * as the applied index (see worker/peer/ports.ts). Taken with KvStateMachine.takeChanges().
 */
export interface KvChanges {
  revision: number;
  upserts: Array<[key: string, record: KeyRecord]>;
  deletes: string[];
  /** The modRevision each changed key's record had before these changes, for the keys that had
   *  one: what the host's storage holds for them now. A store with an index by modRevision
   *  drops those entries without reading the records (the state machine always sets it;
   *  without it such a store reads them). */
  replaced?: Array<[key: string, modRevision: number]>;
  sessionUpserts: Array<[client: string, session: SessionRecord]>;
  sessionDeletes: string[];
  /** The counts over every record after these changes (the state machine always sets them): a
   *  store on disk keeps them with the records, so a restart knows them without reading every
   *  record. Without them it must count again on its next open. */
  summary?: RecordSummary;
}

/** The whole state, as stored by a host or carried by a snapshot. */
export interface KvState {
  revision: number;
  records: Array<[key: string, record: KeyRecord]>;
  sessions: Array<[client: string, session: SessionRecord]>;
}
