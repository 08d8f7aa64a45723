// What every PeerStorage (worker/peer/ports.ts) must do, as cases any implementation can be run
// against: the Node engines, the edge's Durable Object storage (inside workerd), the test fakes.
// The reference is StateModel, which applies a SaveBatch exactly as ports.ts specifies: after
// any sequence of saves, closes and crashes, what a storage loads must equal the model fed the
// same batches — all of them after a clean close; after a crash, some prefix of them.
//
// The cases are plain async functions with their own checks (no test framework), so the same
// module runs under vitest in Node (describe-storage-contract.ts) and inside a Worker
// (test/edge/fixtures/storage-probe.ts), where a failure travels back as the error's message.

import { onlyDerivedState, type LoadedState, type PeerStorage, type SaveBatch } from '../../worker/peer/ports.ts';
import { restartFrom } from '../../worker/peer/restart.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { KvChanges } from '../../worker/kv/types.ts';
import { StateModel } from '../../node-runtime/storage/state-model.ts';
import { BatchStream, entry, snapshotAt, stateDifference } from './storage-batches.ts';

/** How the suite reaches one implementation. */
export interface StorageHarness {
  /** A new, empty backing store (a data dir, a Durable Object's database, a memory disk). */
  newStore(): Promise<StoreHandle>;
  /** Metadata the storage records by itself when opened (the Node engines' identity); {} if none. */
  readonly ownMeta: Record<string, string>;
  /** Whether save() refuses a batch that breaks the log's shape (the case is skipped if not). */
  readonly refusesMalformed: boolean;
  /** Whether the storage may delay batches that onlyDerivedState() allows (the edge does). One
   *  that says no is held to the stricter rule: every resolved save survives a crash. */
  readonly mayDeferDerivedState: boolean;
}

export interface StoreHandle {
  /** A storage over this store's durable state, as a restarted host opens it. */
  open(): Promise<PeerStorage>;
  /** The host holding `storage` dies now: no close; saves that have not resolved never do
   *  (each may or may not have reached the store). The store can be opened again after. */
  crash(storage: PeerStorage): Promise<void>;
  /** Frees the store (temp files); the last storage opened on it is closed or crashed already. */
  dispose(): Promise<void>;
}

export interface ContractCase {
  name: string;
  /** The case applies only to storages that refuse malformed batches. */
  needsRefusal?: boolean;
  run(h: StorageHarness): Promise<void>;
}

export class ContractViolation extends Error {
  override name = 'ContractViolation';
}

function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new ContractViolation(what);
}

/**
 * One store under test beside its reference: every batch handed to save() is recorded, so the
 * state a reopened storage shows can be checked against the model of the batches it kept.
 */
class Tracked {
  readonly handle: StoreHandle;
  private readonly h: StorageHarness;
  /** Batches durable for sure (from before the last reopen), then those saved since. */
  private durable: SaveBatch[] = [];
  private since: Array<{ batch: SaveBatch; resolved: boolean; derived: boolean }> = [];
  /** Term and vote as of the batches submitted so far (what onlyDerivedState calls `written`). */
  private termVote = { term: 0, vote: '' };
  storage: PeerStorage | null = null;

  constructor(h: StorageHarness, handle: StoreHandle) {
    this.h = h;
    this.handle = handle;
  }

  model(batches: SaveBatch[] = this.all()): StateModel {
    const m = new StateModel();
    for (const [k, v] of Object.entries(this.h.ownMeta)) m.meta.set(k, v);
    for (const b of batches) m.apply(b);
    return m;
  }

  all(): SaveBatch[] {
    return [...this.durable, ...this.since.map((s) => s.batch)];
  }

  /** Opens the storage and loads it, as a peer starts. */
  async open(): Promise<LoadedState> {
    check(this.storage === null, 'harness misuse: open while open');
    this.storage = await this.handle.open();
    return this.storage.load();
  }

  /** save(), recorded in submission order; whether a save may be delayed is judged against the
   *  term and vote of the batches before it, as ports.ts says. */
  save(batch: SaveBatch): Promise<void> {
    const s = this.storage;
    check(s !== null, 'harness misuse: save while closed');
    const rec = { batch, resolved: false, derived: onlyDerivedState(batch, this.termVote) };
    if (batch.hardState) this.termVote = { term: batch.hardState.term, vote: batch.hardState.vote };
    this.since.push(rec);
    return s.save(batch).then(() => {
      rec.resolved = true;
    });
  }

  /** A clean close, then a reopen: everything saved must be there. */
  async reopen(what: string): Promise<LoadedState> {
    await this.storage!.close();
    this.storage = null;
    const loaded = await this.open();
    expectState(loaded, this.model().toLoaded(), `${what}: after close and reopen`);
    checkRestartable(loaded, what);
    this.durable = this.all();
    this.since = [];
    return loaded;
  }

  /**
   * A crash, then a reopen: the storage must show the model of some prefix of the batches
   * saved since the last reopen (never a later batch without an earlier one, never part of a
   * batch), at least up to the last one whose save resolved — or, where the storage may defer
   * derived state, up to the last resolved one that onlyDerivedState() does not allow it to delay.
   * Returns the state and how many of the batches it kept.
   */
  async crashAndReopen(what: string): Promise<{ loaded: LoadedState; kept: number; of: number }> {
    await this.handle.crash(this.storage!);
    this.storage = null;
    const loaded = await this.open();
    let required = 0;
    this.since.forEach((s, i) => {
      if (s.resolved && !(this.h.mayDeferDerivedState && s.derived)) required = i + 1;
    });
    const m = this.model(this.durable);
    const tried: string[] = [];
    for (let k = 0; k <= this.since.length; k++) {
      if (k > 0) m.apply(this.since[k - 1]!.batch);
      if (k < required) continue;
      const diff = stateDifference(loaded, m.toLoaded());
      if (diff === null) {
        checkRestartable(loaded, what);
        this.durable = [...this.durable, ...this.since.slice(0, k).map((s) => s.batch)];
        this.termVote = { term: loaded.hardState.term, vote: loaded.hardState.vote };
        const of = this.since.length;
        this.since = [];
        return { loaded, kept: k, of };
      }
      if (tried.length < 3 || k === this.since.length) tried.push(`${k}: ${diff}`);
    }
    throw new ContractViolation(
      `${what}: after a crash the state is not the first k of the ${this.since.length} batches saved since the last reopen ` +
        `for any k >= ${required} (the saves that had to survive); compared with k = ${tried.join(' | ')}`,
    );
  }

  async close(): Promise<void> {
    if (this.storage !== null) await this.storage.close();
    this.storage = null;
    await this.handle.dispose();
  }
}

function expectState(actual: LoadedState, expected: LoadedState, what: string): void {
  const diff = stateDifference(actual, expected);
  if (diff !== null) throw new ContractViolation(`${what}: loaded state differs from the reference model: ${diff}`);
}

/** What restart.ts and the Raft core check of a loaded state: a log continuing the snapshot, an
 *  applied index within [snapshot index, last index], a commit index not beyond the last index
 *  (the core restarts from max(commit, applied), raft.ts). applied <= commit is the peer's to
 *  keep (it saves a commit index with or before the entries it applies; the edge's deferral keeps
 *  them together); a storage keeps it by keeping prefixes, so with the suite's batches, which
 *  all keep it, it is checked too. */
function checkRestartable(s: LoadedState, what: string): void {
  try {
    restartFrom(s, { voters: [], learners: [], addresses: {} });
  } catch (err) {
    throw new ContractViolation(`${what}: a restart would refuse the state: ${String(err)}`);
  }
  const last = s.snapshot.meta.index + s.entries.length;
  check(s.applied <= s.hardState.commit, `${what}: applied ${s.applied} > commit ${s.hardState.commit}`);
  check(Math.max(s.applied, s.hardState.commit) <= last, `${what}: commit ${s.hardState.commit} beyond the last index ${last}`);
}

async function withStore(h: StorageHarness, body: (t: Tracked) => Promise<void>): Promise<void> {
  const t = new Tracked(h, await h.newStore());
  try {
    await body(t);
  } finally {
    await t.close();
  }
}

const noChanges = (revision: number): KvChanges => ({ revision, upserts: [], deletes: [], sessionUpserts: [], sessionDeletes: [] });

function put(revision: number, key: string, value = key): KvChanges {
  return { ...noChanges(revision), upserts: [[key, { value, createRevision: revision, modRevision: revision, version: 1 }]] };
}

/** Apply results of a put at `index` (what a peer saves after applying it). */
function applyPut(index: number, key: string): Pick<SaveBatch, 'kv' | 'applied'> {
  return { kv: put(index, key), applied: index };
}

async function rejects(p: Promise<void>): Promise<boolean> {
  return p.then(
    () => false,
    () => true,
  );
}

export const STORAGE_CONTRACT: readonly ContractCase[] = [
  {
    name: 'a new store loads as an empty peer',
    run: (h) =>
      withStore(h, async (t) => {
        expectState(await t.open(), t.model().toLoaded(), 'fresh');
        await t.reopen('fresh');
      }),
  },
  {
    name: 'every part of a batch is kept: log, hard state, KV records and sessions, applied index, meta',
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        await t.save({
          entries: [entry(1, 1, ''), entry(2, 1), entry(3, 2)],
          hardState: { term: 2, vote: 'n2', commit: 2 },
          kv: {
            revision: 5,
            upserts: [
              ['a', { value: 'ü', createRevision: 4, modRevision: 5, version: 2 }],
              ['b', { value: '', createRevision: 5, modRevision: 5, version: 1 }],
            ],
            deletes: [],
            sessionUpserts: [
              ['cl', { seq: 3, lastIndex: 2, result: { ok: false, code: 'compare-failed', revision: 5, actual: 4 } }],
              ['c2', { seq: 1, lastIndex: 1, result: { ok: true, op: 'delete', revision: 4, deleted: 1 } }],
            ],
            sessionDeletes: [],
          },
          applied: 2,
          meta: { cluster: 'c', id: 'n1' },
        });
        await t.reopen('first batch');
        await t.save({
          kv: { revision: 6, upserts: [], deletes: ['b'], sessionUpserts: [], sessionDeletes: ['cl'] },
          applied: 3,
          hardState: { term: 2, vote: 'n2', commit: 3 },
          meta: { id: 'n1b' },
        });
        await t.reopen('deletes and a meta update');
      }),
  },
  {
    name: 'an entry at an existing index replaces it and every entry after it',
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        await t.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1, `old${i}`)) });
        await t.save({ entries: [entry(3, 2, 'new3'), entry(4, 2, 'new4')] });
        await t.reopen('a shorter rewrite');
        await t.save({ entries: [entry(2, 3, 'newer2')] });
        await t.save({ entries: [entry(3, 3), entry(4, 3), entry(5, 3), entry(6, 3)] });
        await t.reopen('a rewrite, then an append');
      }),
  },
  {
    name: 'compaction keeps the snapshot and drops the entries it covers',
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        await t.save({
          entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)),
          hardState: { term: 1, vote: 'n1', commit: 5 },
          ...applyPut(4, 'a'),
        });
        await t.save({ compact: snapshotAt(3, 1) });
        await t.reopen('compacted below applied');
        // The peer's shape: compact at the index it applies in the same batch, then append more.
        await t.save({ compact: snapshotAt(5, 1), ...applyPut(5, 'b'), entries: [entry(6, 1)] });
        await t.reopen('compacted everything, with the apply and an append in the batch');
      }),
  },
  {
    name: 'a snapshot install replaces the log, the KV state and the applied index',
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        await t.save({ entries: [1, 2, 3].map((i) => entry(i, 1)), hardState: { term: 1, vote: '', commit: 2 }, ...applyPut(2, 'old') });
        await t.save({
          kv: { ...noChanges(3), sessionUpserts: [['c', { seq: 1, lastIndex: 2, result: { ok: true, op: 'put', revision: 2 } }]] },
          applied: 2,
        });
        await t.save({
          installSnapshot: {
            snapshot: snapshotAt(50, 3),
            kv: {
              revision: 40,
              records: [['new', { value: 'n', createRevision: 30, modRevision: 40, version: 3 }]],
              sessions: [['c9', { seq: 2, lastIndex: 49, result: { ok: true, op: 'delete', revision: 39, deleted: 1 } }]],
            },
          },
          hardState: { term: 3, vote: '', commit: 50 },
        });
        await t.reopen('installed');
      }),
  },
  {
    name: 'the parts of one batch apply in the documented order',
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        await t.save({ entries: [1, 2, 3].map((i) => entry(i, 1)), hardState: { term: 1, vote: 'n1', commit: 1 } });
        // installSnapshot before entries and kv: the appended entry continues the snapshot, the
        // KV changes land on the installed state, the applied index moves past the snapshot's.
        await t.save({
          installSnapshot: {
            snapshot: snapshotAt(20, 2),
            kv: { revision: 20, records: [['snap', { value: 's', createRevision: 20, modRevision: 20, version: 1 }]], sessions: [] },
          },
          entries: [entry(21, 2), entry(22, 2)],
          hardState: { term: 2, vote: 'n2', commit: 22 },
          ...applyPut(21, 'after-install'),
        });
        await t.reopen('install, then entries, hard state, KV');
        // compact before entries: an append in the same batch is kept, not compacted away; and
        // a rewrite above the new snapshot truncates only the tail.
        await t.save({ entries: [entry(23, 2), entry(24, 2)], hardState: { term: 2, vote: 'n2', commit: 22 } });
        await t.save({
          compact: snapshotAt(22, 2),
          ...applyPut(22, 'x'),
          entries: [entry(24, 3, 'rewritten'), entry(25, 3)],
          hardState: { term: 3, vote: 'n3', commit: 23 },
        });
        await t.reopen('compact, then a rewrite');
      }),
  },
  {
    name: 'random peer-like streams, saved concurrently, match the reference across reopens',
    run: (h) =>
      withStore(h, async (t) => {
        const stream = new BatchStream(7);
        await t.open();
        for (let round = 0; round < 4; round++) {
          const pending: Promise<void>[] = [];
          for (let i = 0; i < 120; i++) pending.push(t.save(stream.next()));
          await Promise.all(pending);
          await t.reopen(`stream round ${round}`);
        }
      }),
  },
  {
    name: 'group commit: concurrent saves are written in submission order',
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        const pending: Promise<void>[] = [];
        for (let k = 1; k <= 100; k++)
          pending.push(t.save({ entries: [entry(k, 1)], hardState: { term: 1, vote: 'n1', commit: Math.min(k - 1, 50) } }));
        // A rewrite and appends in flight together: only the submission order gives the right log.
        pending.push(
          t.save({ entries: [entry(60, 2, 'rewrite-60'), entry(61, 2, 'rewrite-61')], hardState: { term: 2, vote: 'n2', commit: 59 } }),
        );
        pending.push(t.save({ entries: [entry(62, 2)] }));
        pending.push(t.save({ ...applyPut(59, 'k'), meta: { last: 'one' } }));
        pending.push(t.save({ meta: { last: 'two' } }));
        await Promise.all(pending);
        await t.reopen('concurrent saves');
      }),
  },
  {
    name: 'a crash between saves keeps every save that resolved',
    run: (h) =>
      withStore(h, async (t) => {
        const stream = new BatchStream(21);
        const rnd = new SeededRandom(22);
        await t.open();
        for (let crash = 0; crash < 4; crash++) {
          for (let i = 1 + rnd.nextInt(25); i > 0; i--) await t.save(stream.next());
          await t.crashAndReopen(`crash ${crash} between saves`);
          stream.resetTo(t.model());
        }
      }),
  },
  {
    name: 'a crash with saves in flight keeps a prefix of them holding every resolved one',
    run: (h) =>
      withStore(h, async (t) => {
        const stream = new BatchStream(31);
        const rnd = new SeededRandom(32);
        await t.open();
        for (let crash = 0; crash < 5; crash++) {
          const pending: Promise<void>[] = [];
          for (let i = 0; i < 60; i++) pending.push(t.save(stream.next()));
          // Wait for some of them, never for all: the crash lands while the rest are in flight.
          await Promise.all(pending.slice(0, rnd.nextInt(20)));
          await t.crashAndReopen(`crash ${crash} with saves in flight`);
          stream.resetTo(t.model());
        }
      }),
  },
  {
    name: 'derived state (onlyDerivedState) is written in order with later batches, or lost with them',
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        await t.save({ entries: [entry(1, 1, 'a'), entry(2, 1, 'b'), entry(3, 1, 'c')], hardState: { term: 1, vote: 'n1', commit: 0 } });
        // A leader commits and applies 1: only the commit index moves, plus apply results.
        await t.save({ hardState: { term: 1, vote: 'n1', commit: 1 }, ...applyPut(1, 'a') });
        await t.crashAndReopen('a derived batch last');
        // Derived batches, then an append that resolves: a storage that delayed them must have
        // written them with (before) the append — crashAndReopen requires every batch up to it.
        await t.save({ hardState: { term: 1, vote: 'n1', commit: 2 } });
        await t.save(applyPut(2, 'b'));
        await t.save({ entries: [entry(4, 1, 'd')] });
        await t.crashAndReopen('derived batches, then an append');
        // A new vote is never derived state, even without entries: it must survive.
        await t.save({ hardState: { term: 2, vote: 'n3', commit: 2 } });
        await t.crashAndReopen('a new vote');
        // Waiting derived batches are written by a clean close.
        await t.save({ hardState: { term: 2, vote: 'n3', commit: 3 }, ...applyPut(3, 'c') });
        await t.reopen('a derived batch, then a clean close');
      }),
  },
  {
    name: 'malformed batches are refused and leave no trace',
    needsRefusal: true,
    run: (h) =>
      withStore(h, async (t) => {
        await t.open();
        await t.save({ entries: [1, 2, 3, 4].map((i) => entry(i, 1)), hardState: { term: 1, vote: 'n1', commit: 3 }, ...applyPut(2, 'a') });
        await t.save({ compact: snapshotAt(1, 1) });
        const malformed: Array<[string, SaveBatch]> = [
          ['a gap after the last entry', { entries: [entry(6, 1)] }],
          ['entries that are not contiguous', { entries: [entry(5, 1), entry(7, 1)] }],
          ['a rewrite of an applied entry', { entries: [entry(2, 2)] }],
          ['a rewrite of a compacted entry', { entries: [entry(1, 2)] }],
          ['an applied index beyond the log', { applied: 9 }],
          ['a compaction beyond the applied index', { compact: snapshotAt(3, 1) }],
        ];
        for (const [what, batch] of malformed) {
          const storage = t.storage!;
          check(await rejects(storage.save(batch)), `${what} was accepted`);
        }
        // The storage keeps working, and nothing of the refused batches was written.
        await t.save({ entries: [entry(5, 1)] });
        await t.reopen('after refusals');
      }),
  },
];

/** Runs one case by name (for hosts that receive the name over the wire). */
export async function runContractCase(name: string, h: StorageHarness): Promise<'passed' | 'skipped'> {
  const c = STORAGE_CONTRACT.find((x) => x.name === name);
  if (c === undefined) throw new Error(`no storage contract case named ${JSON.stringify(name)}`);
  if (c.needsRefusal && !h.refusesMalformed) return 'skipped';
  await c.run(h);
  return 'passed';
}
