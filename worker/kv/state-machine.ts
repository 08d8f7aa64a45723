// The KV state machine: applies committed commands in log order, etcd style. Pure and
// deterministic: the same commands at the same indexes give the same answers and the same
// state on every replica. It never throws for a command (a bad entry that reached the log is
// answered `invalid`), only for host bugs (a non-increasing index, a corrupt stored state).
//
// Revisions. One global revision, +1 per command that writes: a put of many pairs is one
// revision; a delete that removed at least one key is one revision; a delete that removed
// nothing, a failed compare, an invalid command and a duplicate do not bump it (as etcd, where
// a transaction without writes leaves the revision alone). Per key: createRevision (revision
// of the put that created it since its last deletion), modRevision (last put), version
// (puts since creation). Deleting a key forgets all three; re-creating starts over.
//
// Records are immutable: every write stores a new KeyRecord, so the records handed out by
// get(), range(), snapshot() and takeChanges() never change under the caller. Do not mutate them.

import type {
  ClientStamp,
  KeyRecord,
  KvChanges,
  KvCommand,
  KvLimits,
  KvResult,
  KvState,
  RecordSummary,
  TokenRecord,
  TxnCompare,
  TxnOp,
} from './types.ts';
import { runTxn, type TxnStore } from './txn.ts';
import { DEFAULT_KV_LIMITS, SESSION_RESULT_BYTES_MAX } from './types.ts';
import { SessionTable } from './sessions.ts';
import { INTERNAL_KEY_PREFIX, TokenTable, cleanToken, decodeToken, encodeToken, isInternalKey, isTokenKey, tokenKey } from './tokens.ts';
import { COMPACTED_KEY, KeyHistory, decodePast, encodePast, historyKey, isHistoryKey } from './history.ts';
import type { CurrentChanges, RecordWrites, KeyEvent, PastVersion } from './history.ts';
import type { TokenView } from './tokens.ts';
import { LeaseTable, isLeaseRecordKey } from './leases.ts';
import type { LeaseView } from './leases.ts';
import { StateView } from './state-view.ts';
import { MemoryRecords } from './memory-records.ts';
import type { DiskRecords, RecordStore } from './record-store.ts';
import { checkLimits, commandProblem, stampProblem } from './validate.ts';
import { utf8Length } from './utf8.ts';

/** The first key after every key under INTERNAL_KEY_PREFIX (U+0001). */
const INTERNAL_KEYS_END = '\u0002';

/** Bytes a key and its value count towards the state's size (UTF-8; a lone surrogate is
 *  written as the 3-byte U+FFFD, so count 3 per code unit then). */
export function pairBytes(key: string, value: string): number {
  return stringBytes(key) + stringBytes(value);
}

function stringBytes(s: string): number {
  const n = utf8Length(s);
  return n >= 0 ? n : 3 * s.length;
}

/** Why a revision cannot be read: its history was compacted, or it has not happened yet. */
export interface RevisionProblem {
  problem: 'compacted' | 'future';
  compacted: number;
  /** The current revision. */
  revision: number;
}

export function isRevisionProblem(x: unknown): x is RevisionProblem {
  return typeof x === 'object' && x !== null && 'problem' in x;
}

export interface RangeOptions {
  /** Only keys starting with this. */
  prefix?: string;
  /** Inclusive lower bound. */
  start?: string;
  /** Exclusive upper bound; undefined or '' for none. */
  end?: string;
  /** At most this many records. */
  limit: number;
}

/** A state machine's records in a tiered store (tiered-records.ts), as a tiered engine opens them. */
export interface KvTier {
  /** The store, which also serves its records by modRevision (TieredRecords.changedSince): a
   *  watch's replay reads the current records' changes from it, so none is indexed in memory. */
  store: RecordStore & Pick<DiskRecords, 'changedSince'>;
  summary: RecordSummary;
}

function* clientModRevisions(records: ReadonlyMap<string, KeyRecord>): Iterable<[string, number]> {
  for (const [key, record] of records) if (!isInternalKey(key)) yield [key, record.modRevision];
}

export class KvStateMachine {
  private readonly limits: KvLimits;
  /** Every record, metcd's own included: in memory or behind a cache (record-store.ts). */
  private records!: RecordStore;
  private readonly sessions: SessionTable;
  /** API tokens: an index over the records under their internal keys (tokens.ts). */
  private readonly tokenTable = new TokenTable();
  /** Records under metcd's own keys (tokens, history), which no client read sees. */
  private internalKeys = 0;
  /** Leases: an index over the records under their internal keys (leases.ts). */
  private readonly leaseTable: LeaseTable;
  /** Past versions of keys, by revision (history.ts). */
  private history: KeyHistory;
  /** How the history writes and removes its records (as internal records of this map). */
  private readonly historyWrites: RecordWrites;
  /** The revision a command being applied writes at (for the history's records). */
  private writingRevision = 0;
  private currentRevision: number;
  /** Σ pairBytes over the records: what a host's space quota is checked against. */
  private bytes = 0;
  /** Highest index applied (from the sessions when restored): apply indexes must grow. */
  private lastIndex: number;
  /** The keys changed since the last takeChanges, each with the modRevision its record had
   *  before the first of those changes (0: none), which is what the host's storage holds for it
   *  (KvChanges.replaced). */
  private readonly dirtyKeys = new Map<string, number>();
  private changesBatch = 0;

  /**
   * The state machine over `state` (none: empty). With `tier`, the records live in a tiered
   * store (tiered-records.ts) and `state` carries only the revision and sessions: the start
   * reads metcd's own records (tokens, leases, history: the indexes apply needs) and the keys
   * changed within the history's window, never every record.
   */
  constructor(limits: KvLimits = DEFAULT_KV_LIMITS, state?: KvState, tier?: KvTier) {
    checkLimits(limits);
    this.limits = limits;
    this.currentRevision = state?.revision ?? 0;
    const internal: Array<[string, KeyRecord]> = [];
    let restoreHistory: (past: Array<[string, PastVersion]>, compacted: number) => KeyHistory;
    // The history keeps its versions' revisions; it reads the versions back from the records.
    const stored = (storedKey: string): KeyRecord | undefined => this.records.get(storedKey);
    if (tier === undefined) {
      const records = this.loadRecords(state?.records ?? [], internal);
      restoreHistory = (past, compacted) => KeyHistory.restore(past, clientModRevisions(records), compacted, stored);
    } else {
      if (state !== undefined && state.records.length > 0) throw new Error('KV state: a tiered state machine takes no records in memory');
      this.records = tier.store;
      this.bytes = tier.summary.bytes;
      this.internalKeys = tier.summary.internalRecords;
      tier.store.walkFrom(INTERNAL_KEY_PREFIX, (key, record) => {
        if (key >= INTERNAL_KEYS_END) return false;
        this.checkRecord(key, record);
        internal.push([key, record]);
        return true;
      });
      if (internal.length !== this.internalKeys) {
        throw new Error(`KV state: ${internal.length} internal records stored, the summary counts ${this.internalKeys}`);
      }
      // The current records' changes stay in the store: a replay reads them from there.
      const clientChanges: CurrentChanges = (from, visit) =>
        tier.store.changedSince(from, (key, modRevision) => isInternalKey(key) || visit(key, modRevision));
      restoreHistory = (past, compacted) => KeyHistory.restoreOverStore(past, clientChanges, compacted, stored);
    }
    const past: Array<[string, PastVersion]> = [];
    let compacted = 0;
    const leaseRecords: Array<[string, string]> = [];
    for (const [key, r] of internal) {
      if (isTokenKey(key)) this.tokenTable.add(decodeToken(key, r.value));
      else if (isHistoryKey(key)) past.push(decodePast(key, r.value));
      else if (key === COMPACTED_KEY) compacted = Number(r.value);
      else if (isLeaseRecordKey(key)) leaseRecords.push([key, r.value]);
    }
    this.sessions = new SessionTable(limits, state?.sessions ?? []);
    this.lastIndex = this.sessions.maxLastIndex();
    this.history = restoreHistory(past, compacted);
    this.leaseTable = LeaseTable.restore(leaseRecords);
    this.historyWrites = {
      set: (key, value) => this.setRecord(key, value, this.writingRevision),
      remove: (key) => void this.deleteRecord(key),
    };
  }

  /** The records of a whole state into a memory store (counting them); metcd's own go to `internal`. */
  private loadRecords(stateRecords: KvState['records'], internal: Array<[string, KeyRecord]>): Map<string, KeyRecord> {
    const records = new Map<string, KeyRecord>();
    const sortedKeys: string[] = [];
    let sorted = true;
    for (const [key, r] of stateRecords) {
      this.checkRecord(key, r);
      if (records.has(key)) throw new Error(`KV state holds key ${JSON.stringify(key)} twice`);
      const record = { value: r.value, createRevision: r.createRevision, modRevision: r.modRevision, version: r.version };
      records.set(key, record);
      this.bytes += pairBytes(key, r.value);
      if (isInternalKey(key)) {
        this.internalKeys++;
        internal.push([key, record]);
      }
      if (sortedKeys.length > 0 && !(sortedKeys[sortedKeys.length - 1]! < key)) sorted = false;
      sortedKeys.push(key);
    }
    if (!sorted) sortedKeys.sort();
    this.records = new MemoryRecords(records, sortedKeys);
    return records;
  }

  private checkRecord(key: string, r: KeyRecord): void {
    if (!(r.createRevision >= 1 && r.createRevision <= r.modRevision && r.modRevision <= this.currentRevision && r.version >= 1)) {
      throw new Error(`KV state: record ${JSON.stringify(key)} breaks the revision invariants`);
    }
  }

  get revision(): number {
    return this.currentRevision;
  }

  /** Number of client keys. */
  get size(): number {
    return this.records.size - this.internalKeys;
  }

  /** How many bytes writing `pairs` would add to stateBytes (may be negative): the new pairs,
   *  less the versions they replace, plus those versions kept as history. */
  putGrowth(pairs: ReadonlyArray<readonly [string, string]>): number {
    let growth = 0;
    for (const [key, value] of pairs) {
      growth += pairBytes(key, value);
      const prev = this.records.get(key);
      if (prev !== undefined) growth += pairBytes(historyKey(prev.modRevision, key), encodePast(prev)) - pairBytes(key, prev.value);
    }
    return growth;
  }

  /** Reads below this revision are refused: their history was discarded. */
  get compactedRevision(): number {
    return this.history.compacted;
  }

  /**
   * `key` as of `revision`: its record, undefined when it did not exist then, or why the
   * revision cannot be read (below the compacted one, above the current one).
   */
  getAt(key: string, revision: number): KeyRecord | undefined | RevisionProblem {
    const problem = this.revisionProblem(revision);
    if (problem !== null) return problem;
    if (isInternalKey(key)) return undefined;
    return this.history.at(key, revision, this.records.get(key));
  }

  /** A range as of `revision` (see range()), or why the revision cannot be read. */
  rangeAt(opts: RangeOptions, revision: number): Array<[string, KeyRecord]> | RevisionProblem {
    const problem = this.revisionProblem(revision);
    if (problem !== null) return problem;
    if (revision === this.currentRevision) return this.range(opts);
    const out: Array<[string, KeyRecord]> = [];
    const prefix = opts.prefix ?? '';
    const start = opts.start ?? '';
    const end = opts.end ?? '';
    const from = start > prefix ? start : prefix;
    const pastEnd = (key: string) => (prefix !== '' && !key.startsWith(prefix)) || (end !== '' && key >= end);
    // Keys with a past (some deleted since) beside the current ones, merged in order.
    const pastKeys = [...this.history.keysWithPast()].filter((key) => key >= from && !pastEnd(key)).sort();
    let p = 0;
    const visit = (key: string, current: KeyRecord | undefined): boolean => {
      const record = this.history.at(key, revision, current);
      if (record !== undefined) out.push([key, record]);
      return out.length < opts.limit;
    };
    const visitPast = (key: string): boolean => visit(key, this.records.get(key));
    let open = opts.limit >= 1;
    this.walkClientKeys(from, (key, current) => {
      if (pastEnd(key)) return false;
      while (open && p < pastKeys.length && pastKeys[p]! < key) open = visitPast(pastKeys[p++]!);
      if (p < pastKeys.length && pastKeys[p] === key) p++;
      if (open) open = visit(key, current);
      return open;
    });
    while (open && p < pastKeys.length) open = visitPast(pastKeys[p++]!);
    return out;
  }

  /** The changes of revisions >= `from` (at or above the compacted revision), in order. */
  eventsFrom(from: number): Iterable<KeyEvent> | RevisionProblem {
    if (from < this.history.compacted) return { problem: 'compacted', compacted: this.history.compacted, revision: this.currentRevision };
    return this.history.events(from, (key) => this.records.get(key));
  }

  private revisionProblem(revision: number): RevisionProblem | null {
    if (revision < this.history.compacted)
      return { problem: 'compacted', compacted: this.history.compacted, revision: this.currentRevision };
    if (revision > this.currentRevision) return { problem: 'future', compacted: this.history.compacted, revision: this.currentRevision };
    return null;
  }

  /** The API tokens of the applied state. */
  get tokens(): TokenView {
    return this.tokenTable;
  }

  /** The leases of the applied state. */
  get leases(): LeaseView {
    return this.leaseTable;
  }

  /** Size of the keys and values held, in UTF-8 bytes (record overhead not counted). */
  get stateBytes(): number {
    return this.bytes;
  }

  /** Number of client sessions held. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** A client key's record; metcd's own keys (tokens with their digests, history, leases) are
   *  nobody's to read this way, whoever calls, as range() does not list them. */
  get(key: string): KeyRecord | undefined {
    return isInternalKey(key) ? undefined : this.records.get(key);
  }

  /** Records sorted by key (JS string order, see sorted-keys.ts), at most `limit` of them. */
  /**
   * The client keys from `from`, in order, until `visit` returns false. metcd's own keys (the
   * history, tokens, leases: all under INTERNAL_KEY_PREFIX, so one run of the order) are no
   * client's to read and are stepped over at once, not one by one: a full range would otherwise
   * walk every history record.
   */
  private walkClientKeys(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    if (from < INTERNAL_KEY_PREFIX) {
      let more = true;
      this.records.walkFrom(from, (key, record) => key < INTERNAL_KEY_PREFIX && (more = visit(key, record)));
      if (!more) return;
    }
    this.records.walkFrom(from > INTERNAL_KEYS_END ? from : INTERNAL_KEYS_END, visit);
  }

  range(opts: RangeOptions): Array<[string, KeyRecord]> {
    const out: Array<[string, KeyRecord]> = [];
    const limit = opts.limit;
    if (!(limit >= 1)) return out;
    const prefix = opts.prefix ?? '';
    const start = opts.start ?? '';
    const end = opts.end ?? '';
    this.walkClientKeys(start > prefix ? start : prefix, (key, record) => {
      if (prefix !== '' && !key.startsWith(prefix)) return false;
      if (end !== '' && key >= end) return false;
      out.push([key, record]);
      return out.length < limit;
    });
    return out;
  }

  /**
   * Apply the committed command at log `index` (indexes must strictly increase; gaps are
   * fine: no-op and membership entries never reach here). Returns the answer for the client.
   */
  apply(index: number, cmd: KvCommand): KvResult {
    if (!Number.isSafeInteger(index) || index <= this.lastIndex) {
      throw new RangeError(`KvStateMachine.apply: index ${index} is not after the last applied index ${this.lastIndex}`);
    }
    this.lastIndex = index;
    this.sessions.expire(index);

    const stamp: unknown = typeof cmd === 'object' && cmd !== null ? cmd.stamp : undefined;
    if (stamp === undefined) return this.execute(cmd);
    const problem = stampProblem(stamp);
    if (problem !== null) return this.invalid(problem.message);

    const { client, seq } = stamp as ClientStamp;
    const session = this.sessions.get(client);
    if (session !== undefined) {
      if (seq === session.seq) {
        // A retry Raft committed again: answer as the first time, change nothing but recency.
        this.sessions.record(client, { seq, result: session.result, lastIndex: index });
        return session.result;
      }
      if (seq < session.seq) {
        return {
          ok: false,
          code: 'session-expired',
          revision: this.currentRevision,
          message: `client ${client} seq ${seq} is older than its last applied seq ${session.seq}; that answer was not kept`,
        };
      }
    } else if (seq > 1) {
      // A session begins at seq 1. A later seq without one is a client whose session expired or
      // was evicted, so this may be a retry of a command that already applied: applying it again
      // would break exactly-once, so it is refused, not applied (Raft dissertation §6.3).
      return {
        ok: false,
        code: 'session-expired',
        revision: this.currentRevision,
        message:
          `client ${client} has no session (it expired or was evicted, or never began: a session begins at seq 1); ` +
          `seq ${seq} was not applied and may have been before: start a new session (a new client id, seq 1)`,
      };
    }
    const result = this.execute(cmd);
    this.sessions.record(client, { seq, result: keptAnswer(result), lastIndex: index });
    return result;
  }

  private invalid(message: string): KvResult {
    return { ok: false, code: 'invalid', revision: this.currentRevision, message };
  }

  private execute(cmd: KvCommand): KvResult {
    const problem = commandProblem(cmd, this.limits);
    if (problem !== null) return this.invalid(problem.message);
    if (cmd.op === 'token-put') return this.putToken(cleanToken(cmd.token));
    if (cmd.op === 'token-delete') return this.deleteToken(cmd.id);
    if (cmd.op === 'compact') return this.compact(cmd.revision);
    if (cmd.op === 'txn') return this.txn(cmd);
    if (cmd.op === 'lease-grant') return this.grantLease(cmd.ttl, cmd.owner ?? '');
    if (cmd.op === 'lease-revoke') return this.revokeLease(cmd.id);

    const compare = cmd.compare;
    if (compare !== undefined) {
      const actual = this.records.get(compare.key)?.modRevision ?? 0;
      if (actual !== compare.modRevision) {
        return { ok: false, code: 'compare-failed', revision: this.currentRevision, actual };
      }
    }

    const lease = cmd.op === 'put' ? (cmd.lease ?? 0) : 0;
    if (lease !== 0) {
      const refusal = this.leaseRefusal(lease, cmd.op === 'put' ? cmd.pairs.map((p) => p[0]) : []);
      if (refusal !== null) return refusal;
    }

    const revision = this.currentRevision + 1;
    this.writingRevision = revision;
    if (cmd.op === 'put') {
      const pairs = cmd.pairs;
      for (let i = 0; i < pairs.length; i++) {
        const pair = pairs[i]!;
        const key = pair[0];
        const prev = this.records.get(key);
        this.history.change(revision, key, prev, false, this.historyWrites);
        this.setRecord(key, pair[1], revision, prev);
        this.leaseTable.attach(key, lease, this.historyWrites);
      }
      return this.endWrite(revision, { ok: true, op: 'put', revision });
    }

    let deleted = 0;
    const keys = cmd.keys;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const prev = this.records.get(key);
      if (prev === undefined) continue;
      this.history.change(revision, key, prev, true, this.historyWrites);
      this.deleteRecord(key);
      this.leaseTable.detach(key, this.historyWrites);
      deleted++;
    }
    if (deleted === 0) return { ok: true, op: 'delete', revision: this.currentRevision, deleted };
    return this.endWrite(revision, { ok: true, op: 'delete', revision, deleted });
  }

  /** A client write at `revision` is done: the revision moves, and old history goes once the
   *  retention window is an eighth over. */
  private endWrite(revision: number, result: KvResult): KvResult {
    this.history.endRevision(revision);
    this.currentRevision = revision;
    const retention = this.limits.historyRetention;
    if (revision - this.history.compacted >= retention + Math.max(1, retention >>> 3)) this.compactTo(revision - retention);
    return result;
  }

  private txn(cmd: { compare: TxnCompare[]; success: TxnOp[]; failure: TxnOp[] }): KvResult {
    const revision = this.currentRevision + 1;
    this.writingRevision = revision;
    const out = runTxn(cmd, this.txnStore(revision), revision);
    if ('refused' in out) return out.refused;
    if (!out.wrote) return { ok: true, op: 'txn', revision: this.currentRevision, succeeded: out.succeeded, results: out.results };
    return this.endWrite(revision, { ok: true, op: 'txn', revision, succeeded: out.succeeded, results: out.results });
  }

  /** The state as a transaction at `revision` reads and writes it (txn.ts). */
  private txnStore(revision: number): TxnStore {
    return {
      get: (key) => this.records.get(key),
      leaseOf: (key) => this.leaseTable.leaseOf(key),
      leaseRefusal: (lease, keys) => this.leaseRefusal(lease, keys),
      range: (prefix, limit) => this.range({ prefix, limit }),
      put: (key, value, lease) => {
        const prev = this.records.get(key);
        this.history.change(revision, key, prev, false, this.historyWrites);
        this.setRecord(key, value, revision, prev);
        this.leaseTable.attach(key, lease, this.historyWrites); // without a lease: detached (etcd)
      },
      delete: (key) => {
        const prev = this.records.get(key);
        if (prev === undefined) return false;
        this.history.change(revision, key, prev, true, this.historyWrites);
        this.deleteRecord(key);
        this.leaseTable.detach(key, this.historyWrites);
        return true;
      },
    };
  }

  private compact(revision: number): KvResult {
    if (revision > this.currentRevision) {
      return this.invalid(`revision ${revision} is above the current revision ${this.currentRevision}`);
    }
    this.compactTo(revision);
    return { ok: true, op: 'compact', revision: this.currentRevision, compacted: this.history.compacted };
  }

  private compactTo(revision: number): void {
    this.writingRevision = this.currentRevision;
    this.history.compact(revision, (key) => this.records.get(key), this.historyWrites);
  }

  private putToken(token: TokenRecord): KvResult {
    if (this.tokenTable.get(token.id) !== undefined || this.tokenTable.byHash(token.hash) !== undefined) {
      return this.invalid(`token ${token.id} (or one with the same secret) already exists`);
    }
    if (this.tokenTable.size >= this.limits.tokensMax) {
      return this.invalid(`the cluster holds ${this.tokenTable.size} tokens, its limit; revoke one first`);
    }
    const revision = this.currentRevision + 1;
    this.setRecord(tokenKey(token.id), encodeToken(token), revision);
    this.tokenTable.add(token);
    this.currentRevision = revision;
    return { ok: true, op: 'put', revision };
  }

  private deleteToken(id: string): KvResult {
    if (this.tokenTable.remove(id) === undefined) return { ok: true, op: 'delete', revision: this.currentRevision, deleted: 0 };
    this.deleteRecord(tokenKey(id));
    this.currentRevision++;
    return { ok: true, op: 'delete', revision: this.currentRevision, deleted: 1 };
  }

  /** Why a put may not attach its keys to `lease` (unknown, or full), or null. */
  private leaseRefusal(lease: number, keys: readonly string[]): KvResult | null {
    if (!this.leaseTable.has(lease)) {
      return { ok: false, code: 'lease-not-found', revision: this.currentRevision, message: `lease ${lease} not found` };
    }
    const max = this.limits.leaseKeysMax;
    const after = this.leaseTable.keysAfter(lease, keys);
    return after > max ? this.invalid(`lease ${lease} would hold ${after} keys, above the limit of ${max}`) : null;
  }

  /** A lease for `ttl` seconds, granted by API token `owner` ('' for the root or cluster token,
   *  or open mode: only the cluster's limit applies to them). Its id is the index of the entry
   *  granting it (leases.ts); a grant takes a revision, as its record does (etcd's takes none). */
  private grantLease(ttl: number, owner: string): KvResult {
    const max = this.limits.leasesMax;
    if (this.leaseTable.size >= max) return this.invalid(`the cluster holds ${this.leaseTable.size} leases, its limit; revoke one first`);
    const ownerMax = this.limits.leasesPerOwnerMax;
    if (owner !== '' && this.leaseTable.ownedBy(owner) >= ownerMax) {
      return this.invalid(`token ${owner} holds ${ownerMax} leases, its limit; revoke one first`);
    }
    const id = this.lastIndex;
    const revision = this.currentRevision + 1;
    this.writingRevision = revision;
    this.leaseTable.grant(id, ttl, owner, this.historyWrites);
    this.currentRevision = revision;
    return { ok: true, op: 'lease-grant', revision, id, ttl };
  }

  /** Every key of the lease is deleted at one revision, through the same path (and history) as a
   *  client's delete, so watchers and replays see ordinary deletes. */
  private revokeLease(id: number): KvResult {
    if (!this.leaseTable.has(id)) {
      return { ok: false, code: 'lease-not-found', revision: this.currentRevision, message: `lease ${id} not found` };
    }
    const revision = this.currentRevision + 1;
    this.writingRevision = revision;
    const keys = this.leaseTable.revoke(id, this.historyWrites);
    for (const key of keys) {
      this.history.change(revision, key, this.records.get(key), true, this.historyWrites);
      this.deleteRecord(key);
    }
    const result: KvResult = { ok: true, op: 'delete', revision, deleted: keys.length };
    if (keys.length > 0) return this.endWrite(revision, result);
    this.currentRevision = revision;
    return result;
  }

  /** Writes `key` at `revision`, keeping its create revision and counting its version. `prev`:
   *  its record, when the caller just read it (a tiered store need not read it again; the
   *  history's own writes between the read and this call never touch `key`). */
  private setRecord(key: string, value: string, revision: number, prev = this.records.get(key)): void {
    if (prev === undefined) {
      this.records.set(key, { value, createRevision: revision, modRevision: revision, version: 1 }, prev);
      this.bytes += pairBytes(key, value);
      if (isInternalKey(key)) this.internalKeys++;
    } else {
      this.records.set(key, { value, createRevision: prev.createRevision, modRevision: revision, version: prev.version + 1 }, prev);
      this.bytes += stringBytes(value) - stringBytes(prev.value);
    }
    this.markDirty(key, prev);
  }

  /** `key` changes now; `prev` is its record until now. */
  private markDirty(key: string, prev: KeyRecord | undefined): void {
    if (!this.dirtyKeys.has(key)) this.dirtyKeys.set(key, prev?.modRevision ?? 0);
  }

  /** Deletes `key`; false when there was none. */
  private deleteRecord(key: string): boolean {
    const prev = this.records.get(key);
    if (prev === undefined) return false;
    this.records.delete(key, prev);
    this.bytes -= pairBytes(key, prev.value);
    if (isInternalKey(key)) this.internalKeys--;
    this.markDirty(key, prev);
    return true;
  }

  /** What changed since the last call: for the host to persist with the applied index. */
  takeChanges(): KvChanges {
    const upserts: Array<[string, KeyRecord]> = [];
    const deletes: string[] = [];
    const replaced: Array<[string, number]> = [];
    for (const [key, before] of this.dirtyKeys) {
      const record = this.records.get(key);
      if (record !== undefined) upserts.push([key, record]);
      else deletes.push(key);
      if (before > 0) replaced.push([key, before]);
    }
    this.dirtyKeys.clear();
    this.changesBatch = this.records.sealChanges();
    const sessions = this.sessions.takeChanges();
    return {
      revision: this.currentRevision,
      upserts,
      deletes,
      replaced,
      sessionUpserts: sessions.upserts,
      sessionDeletes: sessions.deletes,
      summary: { records: this.records.size, internalRecords: this.internalKeys, bytes: this.bytes },
    };
  }

  /** The batch number of the changes the last takeChanges() returned, for changesDurable(). */
  get lastChangesBatch(): number {
    return this.changesBatch;
  }

  /** The saves of the changes taken up to batch `batch` resolved (tiered-records.ts). */
  changesDurable(batch: number): void {
    this.records.changesDurable(batch);
  }

  /** Where the records live (a tiered store reports its cache's counts: tiered-records.ts). */
  get store(): RecordStore {
    return this.records;
  }

  /** The whole state: records sorted by key, sessions sorted by client id. */
  /**
   * A view of the state as of now that later applies do not change (see state-view.ts): for
   * encoding a snapshot in slices. Close it when done; an open view costs a saved record per
   * key changed meanwhile.
   */
  beginView(): StateView {
    return new StateView(this.records.beginView(), this.currentRevision, this.sessions.sortedEntries());
  }

  snapshot(): KvState {
    const records: Array<[string, KeyRecord]> = [];
    this.records.walkFrom('', (key, record) => {
      records.push([key, record]);
      return true;
    });
    return { revision: this.currentRevision, records, sessions: this.sessions.sortedEntries() };
  }
}

/**
 * The answer a session keeps for a retry: the answer itself, unless it is too big for one
 * storage row (a transaction's reads can be): then a note that it was not kept, so a retry is
 * told its outcome is known but its answer gone, and nothing is applied twice. Decided from the
 * answer alone, the same on every replica.
 */
export function keptAnswer(result: KvResult): KvResult {
  if (!(result.ok && result.op === 'txn' && result.results.some((r) => 'get' in r))) return result;
  const bytes = utf8Length(JSON.stringify(result));
  if (bytes <= SESSION_RESULT_BYTES_MAX) return result;
  return {
    ok: false,
    code: 'session-expired',
    revision: result.revision,
    message:
      `this transaction was applied once (revision ${result.revision}); its answer, ${bytes} bytes of reads, ` +
      `was too large to keep for a retry (${SESSION_RESULT_BYTES_MAX} bytes at most)`,
  };
}
