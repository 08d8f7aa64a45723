// The simulated disk of one node: a PeerStorage over the reference model of a peer's persisted
// state (node-runtime/storage/state-model.ts StateModel, which applies a SaveBatch exactly as
// worker/peer/ports.ts specifies). The model IS the disk: only what reached it survives a crash.
//
// A save is durable when its batch reaches the model and answered when its promise resolves;
// a correct disk never answers before durable. In between the simulation can:
//   - take its time (slow disk: a write lands 0..N ticks after save(), in order, while the peer
//     keeps stepping, ticking and taking requests);
//   - defer derived state (ports.ts onlyDerivedState: a commit that moved and apply results),
//     as the edge host does: answered at once, written in order with the next write or on its
//     own a few ticks later, lost by a crash;
//   - crash the node at save() (nothing of the batch durable), while writes are outstanding,
//     or the moment a batch became durable (durable, never answered: the peer's continuation —
//     sends, applies, answers — never runs).
// The broken modes corrupt this disk on purpose (PersistenceMode) to prove the checks bite.
//
// A tiered disk keeps a snapshot's staged records (SaveBatch.stage) in the model apart from the
// records; a staged install shows them at its save's resolution, and the next incarnation
// starts with none staged (the sqlite engine empties its staging table at open).
//
// `SimDisk.storage()` hands out a plain PeerStorage for one incarnation; `crash()` ends that
// incarnation (its outstanding saves never resolve, later calls on it are ignored) and the next
// `storage()` loads from what was durable. That pair is what a storage contract suite needs.

import type { Entry, HardState, Membership, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, KvState, SessionRecord } from '../../worker/kv/types.ts';
import { onlyDerivedState, type LoadedState, type PeerStorage, type SaveBatch } from '../../worker/peer/ports.ts';
import { StateModel } from '../../node-runtime/storage/state-model.ts';
import { restartFrom } from '../../worker/peer/restart.ts';
import { summarize } from '../../worker/kv/record-summary.ts';
import { MapDiskRecords } from '../support/map-disk.ts';

/**
 * Deliberately broken disks, used only to prove the checkers catch real faults.
 *   forget-vote         the saved hard state loses its vote (as if the write of the vote was skipped)
 *   ack-before-durable  save() resolves before the data is durable (the write lands 1..N ticks
 *                       later), so the peer sends acks and votes, and answers clients, on data
 *                       that a crash in between takes back (send before fsync)
 *   tier-shows-late     a tiered disk's reads show each save only once the next one resolves (a
 *                       read connection holding an old snapshot), so a tiered peer applies and
 *                       answers from records one save behind what it wrote
 */
export type PersistenceMode = 'correct' | 'forget-vote' | 'ack-before-durable' | 'tier-shows-late';
export const PERSISTENCE_MODES: PersistenceMode[] = ['correct', 'forget-vote', 'ack-before-durable', 'tier-shows-late'];

/** What a write was issued as (the host's view at save() time, for the checks when it lands). */
export interface SaveContext {
  /** The issuer led then: its membership before and at this save (see Invariants.onCommit). */
  leaderOf: Membership[] | null;
  term: number;
}

/** What a write landed on: the applied index and hard state before it, and the KV state a
 *  snapshot install in it put in place (SimDisk.installedKv), null without one. */
export interface PriorState {
  applied: number;
  hardState: HardState;
  installed: KvState | null;
}

/** Called as each batch reaches the disk (before the model applies it, and after). */
export interface DiskObserver {
  beforeDurable(batch: SaveBatch, disk: SimDisk, ctx: SaveContext): void;
  afterDurable(batch: SaveBatch, disk: SimDisk, ctx: SaveContext, prior: PriorState): void;
}

export interface DiskPolicy {
  now(): number;
  /** Ticks the next write takes (0: durable within save()). */
  writeDelayTicks(): number;
  /** Ticks a derived-state batch may wait for the next write (0: never deferred). */
  deferDerivedTicks: number;
  mode: PersistenceMode;
  /** A tiered engine (LoadedState.tier): the peer reads its records from this disk through
   *  its cache, and loads none into memory; it may stage a snapshot's records (SaveBatch.stage:
   *  kept in the model, dropped when the next incarnation opens the disk, as the sqlite
   *  engine empties its staging table at open). */
  tiered?: boolean;
}

interface Write {
  batch: SaveBatch;
  ctx: SaveContext;
  dueTick: number;
  /** Answered already (a deferred derived batch, or the broken ack-before-durable disk). */
  resolved: boolean;
  derived: boolean;
  resolve: () => void;
  incarnation: number;
}

export interface DiskCounters {
  writes: number;
  /** Records a tiered peer read from this disk (cache misses, prefetches). */
  recordReads: number;
  /** Of those, asynchronous reads (a read's prefetch) delivered to a live peer. */
  asyncReads: number;
  /** Writes that took >= 1 tick. */
  slowWrites: number;
  derivedDeferred: number;
  /** Deferred derived batches lost in a crash. */
  derivedLost: number;
}

/** Why the disk asks its host to crash the node right now (an armed crash point fired). */
export type SaveHook = (batch: SaveBatch) => 'crash' | null;

export class SimDisk {
  /** What survives a crash. */
  readonly model = new StateModel();
  readonly counters: DiskCounters = { writes: 0, recordReads: 0, asyncReads: 0, slowWrites: 0, derivedDeferred: 0, derivedLost: 0 };
  private readonly policy: DiskPolicy;
  private observer: DiskObserver | null = null;
  private queue: Write[] = [];
  private incarnation = 0;
  /** Term and vote as last issued (onlyDerivedState compares against them). */
  private termVote: { term: number; vote: string } | null = null;
  /** Checked at save() and as a write becomes durable: the host's armed crash points. */
  onSave: SaveHook = () => null;
  onDurable: SaveHook = () => null;
  /** Called (synchronously) when a hook asked for a crash. */
  crashNow: (why: string) => void = () => {};
  /** What a tiered peer reads (DiskRecords): the records of every save that has resolved, in
   *  order, whether or not it reached `model` yet (a deferred derived batch, or the broken
   *  ack-before-durable disk, resolves first). A crash takes it back to what is durable. */
  private visible: MapDiskRecords | null = null;
  /** The staged records as of the saves that resolved (what the next staged install shows). */
  private visibleStaged = new Map<string, KeyRecord>();
  /** The broken tier-shows-late disk: the save it has not shown yet. */
  private unshown: SaveBatch | null = null;
  /** Asynchronous record reads (a tiered peer's prefetch) read already, delivered at the disk's
   *  next advance: after the writes that land then, so a save may resolve in between. */
  private reads: Array<() => void> = [];

  constructor(policy: DiskPolicy) {
    this.policy = policy;
  }

  observe(observer: DiskObserver): void {
    this.observer = observer;
  }

  /** Writes issued, not yet durable, that the peer still awaits (deferred derived state aside). */
  get outstanding(): number {
    let n = 0;
    for (const w of this.queue) if (!w.resolved) n++;
    return n;
  }

  /** A PeerStorage for a new incarnation, loading what is durable. */
  storage(context: () => SaveContext): PeerStorage {
    const incarnation = ++this.incarnation;
    this.termVote = null;
    this.model.dropStaged();
    this.visibleStaged = new Map();
    const live = (): boolean => incarnation === this.incarnation;
    return {
      load: async (): Promise<LoadedState> => {
        const loaded = this.model.toLoaded();
        this.termVote = { term: loaded.hardState.term, vote: loaded.hardState.vote };
        const copy = copyLoaded(loaded);
        if (this.policy.tiered !== true) return copy;
        // Nothing un-landed is pending at a load (a crash drops it), so the model is the disk.
        this.visible = new MapDiskRecords(
          copy.kv.records,
          () => this.counters.recordReads++,
          (deliver) =>
            this.reads.push(() => {
              if (!live()) return;
              this.counters.asyncReads++;
              deliver();
            }),
        );
        const summary = summarize(copy.kv.records);
        return { ...copy, kv: { ...copy.kv, records: [] }, tier: { disk: this.visible, summary } };
      },
      save: (batch: SaveBatch): Promise<void> => {
        if (!live()) return new Promise(() => {});
        return this.save(batch, context(), incarnation);
      },
      close: async (): Promise<void> => {
        if (live()) this.flushAll();
      },
    };
  }

  /**
   * Lose everything not durable: outstanding writes and deferred derived state. The incarnation's
   * storage goes dead (its pending promises never resolve). Returns what was lost.
   */
  crash(): { writes: number; derived: number } {
    this.incarnation++;
    let derived = 0;
    for (const w of this.queue) if (w.derived) derived++;
    this.counters.derivedLost += derived;
    const lost = { writes: this.queue.length - derived, derived };
    this.queue = [];
    this.visible = null; // the next incarnation loads its own from what is durable
    this.visibleStaged = new Map();
    this.unshown = null;
    return lost;
  }

  /** Land the writes due by now, in order. */
  advance(): void {
    const now = this.policy.now();
    while (this.queue.length > 0 && this.queue[0]!.dueTick <= now) {
      const w = this.queue.shift()!;
      if (this.land(w)) return;
    }
    const reads = this.reads;
    this.reads = [];
    for (const deliver of reads) deliver();
  }

  private save(batch: SaveBatch, ctx: SaveContext, incarnation: number): Promise<void> {
    const p = this.policy;
    if (p.tiered !== true && (batch.stage !== undefined || batch.installSnapshot?.staged !== undefined)) {
      return Promise.reject(
        new Error('staged snapshot records (SaveBatch.stage, installSnapshot.staged) need a tiered disk: this one keeps none'),
      );
    }
    this.counters.writes++;
    if (this.onSave(batch) === 'crash') {
      this.crashNow('at save(), before anything of it is durable');
      return new Promise(() => {});
    }
    const now = p.now();
    const derived = p.deferDerivedTicks > 0 && onlyDerivedState(batch, this.termVote);
    if (batch.hardState !== undefined) this.termVote = { term: batch.hardState.term, vote: batch.hardState.vote };
    if (derived) {
      this.counters.derivedDeferred++;
      this.queue.push({ batch, ctx, dueTick: now + p.deferDerivedTicks, resolved: true, derived, resolve: () => {}, incarnation });
      this.show(batch);
      return Promise.resolve();
    }
    let delay = p.writeDelayTicks();
    if (p.mode === 'ack-before-durable') delay = Math.max(1, delay);
    // Kept in order: not before any earlier real write; deferred derived batches go with it.
    let due = now + delay;
    for (const w of this.queue) if (!w.derived) due = Math.max(due, w.dueTick);
    for (const w of this.queue) if (w.derived) w.dueTick = Math.min(w.dueTick, due);
    if (delay > 0) this.counters.slowWrites++;
    return new Promise<void>((resolve) => {
      const w: Write = { batch, ctx, dueTick: due, resolved: false, derived: false, resolve, incarnation };
      if (p.mode === 'ack-before-durable') {
        w.resolved = true;
        this.show(batch);
        resolve();
      }
      if (due <= now && this.queue.length === 0) {
        this.land(w);
        return;
      }
      this.queue.push(w);
      if (due <= now) this.advance();
    });
  }

  /** The write reaches the disk. True when an armed crash fired (the queue is gone then). */
  private land(w: Write): boolean {
    let batch = w.batch;
    if (this.policy.mode === 'forget-vote' && batch.hardState !== undefined) {
      batch = { ...batch, hardState: { ...batch.hardState, vote: '' } };
    }
    const installed = batch.installSnapshot === undefined ? null : this.installedKv(batch);
    const prior: PriorState = { applied: this.model.applied, hardState: this.model.hardState, installed };
    this.observer?.beforeDurable(batch, this, w.ctx);
    this.model.apply(copyBatch(batch));
    this.observer?.afterDurable(batch, this, w.ctx, prior);
    if (!w.derived && this.onDurable(batch) === 'crash') {
      this.crashNow('the moment a write became durable, before save() answered');
      return true;
    }
    if (!w.resolved && w.incarnation === this.incarnation) {
      this.show(w.batch);
      w.resolve();
    }
    return false;
  }

  /** A save resolves: a tiered peer's reads of the disk show it from now on. */
  private show(batch: SaveBatch): void {
    if (this.visible === null) return;
    if (this.policy.mode === 'tier-shows-late') {
      const late = this.unshown;
      this.unshown = batch;
      if (late === null) return;
      batch = late;
    }
    if (batch.stage !== undefined) {
      if (batch.stage.reset) this.visibleStaged = new Map();
      for (const [key, rec] of batch.stage.records) this.visibleStaged.set(key, rec);
    }
    if (batch.installSnapshot !== undefined) {
      if (batch.installSnapshot.staged === undefined) this.visible.install(batch.installSnapshot.kv);
      else {
        this.visible.install({ records: [...this.visibleStaged] });
        this.visibleStaged = new Map();
      }
    }
    if (batch.kv !== undefined) this.visible.applyChanges(batch.kv);
  }

  /**
   * The KV state a snapshot install in `batch` puts in place, read before `batch` lands: its
   * `kv`, or for a staged install its revision and sessions with the records staged on this
   * disk then (the batch's own stage included).
   */
  installedKv(batch: SaveBatch): KvState {
    const install = batch.installSnapshot;
    if (install === undefined) throw new Error('installedKv: the batch installs no snapshot');
    if (install.staged === undefined) return install.kv;
    const staged = batch.stage?.reset === true ? new Map<string, KeyRecord>() : new Map(this.model.staged);
    for (const [key, rec] of batch.stage?.records ?? []) staged.set(key, rec);
    return { ...install.kv, records: [...staged] };
  }

  get tiered(): boolean {
    return this.policy.tiered === true;
  }

  /** close(): everything issued becomes durable now. */
  private flushAll(): void {
    for (const w of this.queue) w.dueTick = 0;
    this.advance();
  }

  // ---- reading the disk (the checks) ----------------------------------------------------------

  get snapshotIndex(): number {
    return this.model.snapshot.meta.index;
  }

  get snapshot(): Snapshot {
    return this.model.snapshot;
  }

  get hardState(): HardState {
    return this.model.hardState;
  }

  get applied(): number {
    return this.model.applied;
  }

  lastIndex(): number {
    return this.model.lastIndex;
  }

  /** Term of the entry at `index`, or undefined when compacted away (below the snapshot) or absent. */
  termAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.model.snapshot.meta.term;
    return this.entryAt(index)?.term;
  }

  entryAt(index: number): Entry | undefined {
    if (index <= this.snapshotIndex) return undefined;
    return this.model.entries[index - this.snapshotIndex - 1];
  }

  kvState(): KvState {
    return sortedKv(this.model.kvState());
  }

  /** The membership as of the durable applied index (what restart.ts computes from it). */
  appliedMembership(): Membership {
    return restartFrom(this.model.toLoaded(), { voters: [], learners: [], addresses: {} }).appliedMembership;
  }
}

/** Records and sessions in key order: one encoding per state (for digests). */
export function sortedKv(kv: KvState): KvState {
  const byKey = <T>(a: [string, T], b: [string, T]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  return { revision: kv.revision, records: [...kv.records].sort(byKey), sessions: [...kv.sessions].sort(byKey) };
}

// The disk never shares a mutable object with a peer (a real one hands back fresh copies).
// Entries and byte arrays are never changed once made, so they are shared; records, sessions,
// hard states and memberships are copied. (structuredClone of every batch cost 11% of a run.)

function copyLoaded(l: LoadedState): LoadedState {
  return {
    ...l,
    hardState: { ...l.hardState },
    snapshot: copySnapshot(l.snapshot),
    entries: l.entries.slice(),
    kv: copyKv(l.kv),
    meta: { ...l.meta },
  };
}

function copyBatch(b: SaveBatch): SaveBatch {
  const out: SaveBatch = { ...b };
  if (b.stage) out.stage = { reset: b.stage.reset, records: b.stage.records.map(([k, r]) => [k, { ...r }]) };
  if (b.installSnapshot) {
    const { snapshot, kv, staged } = b.installSnapshot;
    out.installSnapshot = { snapshot: copySnapshot(snapshot), kv: copyKv(kv), ...(staged ? { staged: { ...staged } } : {}) };
  }
  if (b.compact) out.compact = copySnapshot(b.compact);
  if (b.entries) out.entries = b.entries.slice();
  if (b.hardState) out.hardState = { ...b.hardState };
  if (b.kv) {
    out.kv = {
      revision: b.kv.revision,
      upserts: b.kv.upserts.map(([k, r]) => [k, { ...r }]),
      deletes: b.kv.deletes.slice(),
      sessionUpserts: b.kv.sessionUpserts.map(([c, s]) => [c, copySession(s)]),
      sessionDeletes: b.kv.sessionDeletes.slice(),
    };
  }
  if (b.meta) out.meta = { ...b.meta };
  return out;
}

function copySnapshot(s: Snapshot): Snapshot {
  const m = s.meta.membership;
  return {
    meta: { ...s.meta, membership: { voters: [...m.voters], learners: [...m.learners], addresses: { ...m.addresses } } },
    data: s.data,
  };
}

function copyKv(kv: KvState): KvState {
  return {
    revision: kv.revision,
    records: kv.records.map(([k, r]) => [k, { ...r }]),
    sessions: kv.sessions.map(([c, s]) => [c, copySession(s)]),
  };
}

function copySession(s: SessionRecord): SessionRecord {
  return { seq: s.seq, lastIndex: s.lastIndex, result: { ...s.result } };
}

/**
 * A simulated disk on its own, outside any cluster (for a PeerStorage contract suite):
 * `open()` gives the PeerStorage of a new incarnation loading what is durable, `crash()` loses
 * what is not (outstanding writes, deferred derived state) and kills the current incarnation's
 * storage, `advance(ticks)` moves the disk's clock (lands slow writes, flushes deferred state).
 * With the defaults every save() is durable before it resolves and nothing is deferred.
 */
export function standaloneSimDisk(
  opts: { writeDelayTicks?: number; deferDerivedTicks?: number; mode?: PersistenceMode; tiered?: boolean } = {},
): {
  disk: SimDisk;
  open(): PeerStorage;
  crash(): void;
  advance(ticks?: number): void;
} {
  let now = 0;
  const disk = new SimDisk({
    now: () => now,
    writeDelayTicks: () => opts.writeDelayTicks ?? 0,
    deferDerivedTicks: opts.deferDerivedTicks ?? 0,
    mode: opts.mode ?? 'correct',
    tiered: opts.tiered ?? false,
  });
  return {
    disk,
    open: () => disk.storage(() => ({ leaderOf: null, term: 0 })),
    crash: () => {
      disk.crash();
    },
    advance: (ticks = 1) => {
      now += ticks;
      disk.advance();
    },
  };
}
