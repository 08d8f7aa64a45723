// Generates well-formed SaveBatch streams the way a peer would produce them (appends, conflicting
// rewrites of the unapplied tail, hard states, applied KV changes, compactions, snapshot
// installs), from a seed, so every engine can be compared with the reference StateModel.

import { SeededRandom } from '../../worker/raft/random.ts';
import type { Entry, Snapshot } from '../../worker/raft/types.ts';
import type { KvChanges, KvState } from '../../worker/kv/types.ts';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import { StateModel } from '../../node-runtime/storage/state-model.ts';

export function entry(index: number, term: number, text = `cmd-${index}`): Entry {
  return { index, term, type: index % 7 === 0 ? 'conf' : 'normal', data: new TextEncoder().encode(text) };
}

export function snapshotAt(index: number, term: number, payload = `snap-${index}`): Snapshot {
  return {
    meta: { index, term, membership: { voters: ['n1', 'n2', 'n3'], learners: [], addresses: { n1: 'http://a', n2: 'http://b', n3: 'http://c' } } },
    data: new TextEncoder().encode(payload),
  };
}

/** A peer-like batch source; `model` mirrors what has been generated. */
export class BatchStream {
  readonly model = new StateModel();
  private readonly rnd: SeededRandom;
  private term = 1;
  private revision = 0;

  constructor(seed: number) {
    this.rnd = new SeededRandom(seed);
  }

  next(): SaveBatch {
    const m = this.model;
    const r = this.rnd;
    const b: SaveBatch = {};
    const roll = r.nextInt(100);
    if (roll < 3) {
      // A follower far behind receives a snapshot.
      const index = m.lastIndex + 1 + r.nextInt(20);
      const kv: KvState = {
        revision: ++this.revision,
        records: [[`snap-key-${index}`, { value: 'v', createRevision: this.revision, modRevision: this.revision, version: 1 }]],
        sessions: [['client-s', { seq: 1, lastIndex: index, result: { ok: true, op: 'put', revision: this.revision } }]],
      };
      b.installSnapshot = { snapshot: snapshotAt(index, this.term, `install-${index}`), kv };
    } else if (roll < 8 && m.applied > m.snapshot.meta.index) {
      const index = m.snapshot.meta.index + 1 + r.nextInt(m.applied - m.snapshot.meta.index);
      b.compact = snapshotAt(index, this.term);
    }
    const last = b.installSnapshot ? b.installSnapshot.snapshot.meta.index : m.lastIndex;
    const applied = b.installSnapshot ? b.installSnapshot.snapshot.meta.index : m.applied;
    const floor = Math.max(applied, b.compact ? b.compact.meta.index : 0, b.installSnapshot ? last : m.snapshot.meta.index);
    if (r.nextInt(100) < 80) {
      let from = last + 1;
      if (r.nextInt(100) < 15 && last > floor) {
        from = floor + 1 + r.nextInt(last - floor); // a new leader overwrites the unapplied tail
        this.term++;
      }
      const n = 1 + r.nextInt(5);
      b.entries = Array.from({ length: n }, (_, k) => entry(from + k, this.term, `t${this.term}-${from + k}-${r.nextInt(1e6)}`));
    }
    const newLast = b.entries ? b.entries[b.entries.length - 1]!.index : last;
    if (r.nextInt(100) < 60) b.hardState = { term: this.term, vote: `n${1 + r.nextInt(3)}`, commit: newLast };
    if (r.nextInt(100) < 60 && newLast > applied) {
      const to = applied + 1 + r.nextInt(newLast - applied);
      const changes: KvChanges = { revision: ++this.revision, upserts: [], deletes: [], sessionUpserts: [], sessionDeletes: [] };
      for (let k = r.nextInt(4); k >= 0; k--) {
        const key = `key-${r.nextInt(40)}-é`;
        changes.upserts.push([key, { value: `value-${to}-${r.nextInt(1e6)}`, createRevision: 1, modRevision: this.revision, version: 1 + r.nextInt(9) }]);
      }
      if (r.nextInt(3) === 0) changes.deletes.push(`key-${r.nextInt(40)}-é`);
      if (r.nextInt(3) === 0) changes.sessionUpserts.push([`client-${r.nextInt(5)}`, { seq: to, lastIndex: to, result: { ok: true, op: 'put', revision: this.revision } }]);
      if (r.nextInt(5) === 0) changes.sessionDeletes.push(`client-${r.nextInt(5)}`);
      b.kv = changes;
      b.applied = to;
    }
    if (r.nextInt(100) < 3) b.meta = { [`m${r.nextInt(3)}`]: `v${r.nextInt(1000)}` };
    m.apply(b);
    return b;
  }
}

/** LoadedState with order-insensitive parts sorted, for comparing engines with the model. */
export function normalized(s: LoadedState): unknown {
  const byKey = <T>(a: Array<[string, T]>) => [...a].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const meta = Object.fromEntries(Object.entries(s.meta).sort());
  return {
    hardState: s.hardState,
    snapshot: { meta: s.snapshot.meta, data: Buffer.from(s.snapshot.data).toString('hex') },
    entries: s.entries.map((e) => ({ ...e, data: Buffer.from(e.data).toString('hex') })),
    applied: s.applied,
    kv: { revision: s.kv.revision, records: byKey(s.kv.records), sessions: byKey(s.kv.sessions) },
    meta,
  };
}
