// The narrow interfaces through which a peer talks to its host (worker/README.md: peer → hosts).
// The edge implements them with Durable Object storage, alarms and stub fetches; the Node
// runtime with a storage engine, timers and HTTP; the tests with memory.

import type { Entry, HardState, Message, Snapshot } from '../raft/types.ts';
import type { KeyRecord, KvChanges, KvState, RecordSummary } from '../kv/types.ts';
import type { DiskRecords } from '../kv/record-store.ts';

/** Everything a peer had persisted, handed back at start. */
export interface LoadedState {
  hardState: HardState;
  /** Latest snapshot; index 0 with empty data on a fresh peer. */
  snapshot: Snapshot;
  /** Log entries after snapshot.meta.index, in index order. */
  entries: Entry[];
  /** Applied index, written atomically with `kv`. */
  applied: number;
  kv: KvState;
  /** Host metadata recorded at creation (cluster id, node id, engine); empty when fresh. */
  meta: Record<string, string>;
  /**
   * Set by an engine whose table is the home of the key space (a tiered engine): `kv.records`
   * is then empty, and the peer reads the records from `disk` through a bounded cache of hot
   * records (worker/kv/tiered-records.ts). `summary` counts the durable records. The same
   * `disk` serves the peer for the engine's life: after a snapshot install it shows the
   * installed records once the save resolves.
   */
  tier?: { disk: DiskRecords; summary: RecordSummary };
}

/**
 * One atomic, durable write. The storage applies the parts in this order, all or nothing:
 *   stage            (tiered engines only) keep these records of a snapshot arriving in
 *                    chunks apart from the live ones; `reset` drops what was staged first. A
 *                    staged set is volatile in meaning: the next transfer starts with a reset.
 *   installSnapshot  replace the log (drop everything), the snapshot, the KV state and the
 *                    applied index with the snapshot's (a follower catching up). With
 *                    `staged` (tiered engines only), `kv.records` is empty and the records are
 *                    the staged ones (all of them, `staged` counts them), which become the
 *                    live records in the same transaction;
 *   compact          store `snapshot` as the latest and drop log entries <= its index
 *                    (the host's own snapshot of applied state);
 *   entries          append; an entry at an index that already exists replaces it and all
 *                    entries after it are deleted first;
 *   hardState        overwrite;
 *   kv + applied     upsert/delete records and sessions, set revision and applied index.
 *   meta             set these metadata keys.
 * save() resolves only once the write is durable (fsync on Node; confirmed on the edge).
 * Concurrent save() calls may share one fsync (group commit) but keep their order.
 */
export interface SaveBatch {
  stage?: { reset: boolean; records: Array<[string, KeyRecord]> };
  installSnapshot?: { snapshot: Snapshot; kv: KvState; staged?: RecordSummary };
  compact?: Snapshot;
  entries?: Entry[];
  hardState?: HardState;
  kv?: KvChanges;
  applied?: number;
  meta?: Record<string, string>;
}

/**
 * Whether `batch` carries only state a restart recomputes from the durable log: a commit index
 * that moved (term and vote as already `written`) and apply results (KV changes, applied index).
 * Raft never needs the commit index durable, and a restart re-applies the committed entries
 * above the stored applied index (restart.ts). A host may therefore delay writing such a batch,
 * as long as it is written in order with later ones and commit and applied stay together.
 * Nothing acknowledged depends on it: acknowledged entries are in the logs of a majority.
 */
export function onlyDerivedState(batch: SaveBatch, written: { term: number; vote: string } | null): boolean {
  if (batch.installSnapshot || batch.stage || batch.compact || batch.meta || (batch.entries && batch.entries.length > 0)) return false;
  const hs = batch.hardState;
  if (hs !== undefined && (written === null || hs.term !== written.term || hs.vote !== written.vote)) return false;
  return hs !== undefined || batch.kv !== undefined || batch.applied !== undefined;
}

export interface PeerStorage {
  load(): Promise<LoadedState>;
  save(batch: SaveBatch): Promise<void>;
  close(): Promise<void>;
}

/** Whether a transport may hold `m` briefly to send it with the next message to its peer: an
 *  append without entries only moves the follower's commit index, which the next heartbeat or
 *  append carries too, and nothing waits on it (the leader answers from its own commit). */
export function mayWaitForCompany(m: Message): boolean {
  return m.type === 'append' && (m.entries === undefined || m.entries.length === 0);
}

/** Delivers Raft messages to other peers. Fire-and-forget: loss is Raft's to handle.
 *  Implementations batch per destination and bound their queues (dropping, counted, when full). */
export interface PeerTransport {
  send(messages: Message[]): void;
}

/**
 * How a peer tells its host when it needs ticks (worker/peer/quiescence.ts). The peer decides;
 * the host starts and stops its timer. A host without one keeps ticking: a quiescent peer's
 * ticks then move no Raft timer, they only cost the calls.
 */
export interface TickPort {
  /** No ticks are needed until `wakeAtMs` (Clock time; the host calls Peer.wake() then), or,
   *  when null, until a call or a message reaches the peer. Stop the timer: set no other. */
  rest(wakeAtMs: number | null): void;
  /** Ticks are needed again from now. The time asleep is not owed: no catch-up ticks. */
  resume(): void;
}

/** Wall-clock time in whole milliseconds (headers and /status show differences of it as integers
 *  on both runtimes), for display, the tick-stall guard and snapshot pacing (Raft runs on ticks). */
export interface Clock {
  nowMs(): number;
  /** Optional: milliseconds from any fixed origin, fractional, never going back (Node:
   *  performance.now()), for the durations the peer counts (counters.ts: how long a save took).
   *  Without it those durations are measured with nowMs(). Nothing is decided on it. */
  elapsedMs?(): number;
}
