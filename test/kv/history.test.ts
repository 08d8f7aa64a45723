// Key history against a naive model that keeps the whole map at every revision: reads at a
// revision, ranges at a revision, the changes since a revision (what a watch replays), through
// random puts, multi-key puts, deletes, manual and automatic compactions, and restores.

import { describe, expect, it } from 'vitest';
import { DEFAULT_KV_LIMITS, KvStateMachine } from '../../worker/kv/index.ts';
import type { KeyRecord, KvLimits } from '../../worker/kv/types.ts';
import { isRevisionProblem } from '../../worker/kv/state-machine.ts';
import type { KeyEvent } from '../../worker/kv/history.ts';
import { decodePast, isHistoryKey } from '../../worker/kv/history.ts';
import { SeededRandom } from '../../worker/raft/random.ts';

type Snapshot = Map<string, KeyRecord>;

class Model {
  /** The map as of each revision (index = revision). */
  readonly at: Snapshot[] = [new Map()];
  compacted = 0;

  get revision(): number {
    return this.at.length - 1;
  }

  write(changes: Array<[string, string | null]>): void {
    const next = new Map(this.at[this.revision]!);
    const revision = this.revision + 1;
    let changed = false;
    for (const [key, value] of changes) {
      const prev = next.get(key);
      if (value === null) {
        if (prev !== undefined) {
          next.delete(key);
          changed = true;
        }
      } else {
        next.set(key, {
          value,
          createRevision: prev?.createRevision ?? revision,
          modRevision: revision,
          version: (prev?.version ?? 0) + 1,
        });
        changed = true;
      }
    }
    if (changed) this.at.push(next);
  }

  events(from: number): KeyEvent[] {
    const out: KeyEvent[] = [];
    for (let r = Math.max(from, 1); r <= this.revision; r++) {
      const before = this.at[r - 1]!;
      const after = this.at[r]!;
      const keys = [...new Set([...before.keys(), ...after.keys()])].sort();
      for (const key of keys) {
        const b = before.get(key);
        const a = after.get(key);
        if (a === b || (a !== undefined && b !== undefined && a.modRevision === b.modRevision)) continue;
        const event: KeyEvent = a === undefined ? { type: 'delete', key, revision: r } : { type: 'put', key, revision: r, record: a };
        if (b !== undefined && !(r === this.compacted && r > 0)) event.prev = b;
        out.push(event);
      }
    }
    return out;
  }
}

/**
 * The history records compaction must leave, as "revision/key": every replaced version and
 * delete at or above the compacted revision, and below it only the past put a read at the
 * compacted revision shows. Anything more is a leak (history that never goes), anything less a
 * lost version.
 */
function expectedHistory(model: Model): string[] {
  const out: string[] = [];
  const latest = model.at[model.revision]!;
  const c = model.compacted;
  for (let r = 1; r <= model.revision; r++) {
    const before = model.at[r - 1]!;
    const after = model.at[r]!;
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      const a = after.get(key);
      const b = before.get(key);
      if (a === b || (a !== undefined && b !== undefined && a.modRevision === b.modRevision)) continue; // unchanged at r
      if (a !== undefined && latest.get(key)?.modRevision === r) continue; // current: not history
      const visibleAtCompacted = model.at[c]!.get(key)?.modRevision === r;
      if (r >= c || visibleAtCompacted) out.push(`${r}/${key}`);
    }
  }
  return out.sort();
}

function historyRecords(sm: KvStateMachine): string[] {
  return sm
    .snapshot()
    .records.filter(([k]) => isHistoryKey(k))
    .map(([k, record]) => {
      const [key, past] = decodePast(k, record.value);
      return `${past.revision}/${key}`;
    })
    .sort();
}

function check(sm: KvStateMachine, model: Model, rnd: SeededRandom, keys: string[], what: string): void {
  expect(sm.revision, what).toBe(model.revision);
  expect(sm.compactedRevision, what).toBe(model.compacted);
  for (let i = 0; i < 20; i++) {
    const r = model.compacted + rnd.nextInt(model.revision - model.compacted + 1);
    const key = keys[rnd.nextInt(keys.length)]!;
    expect(sm.getAt(key, r), `${what}: ${key}@${r}`).toEqual(model.at[r]!.get(key));
  }
  const r = Math.max(model.compacted, model.revision - rnd.nextInt(6));
  const prefix = rnd.nextInt(2) === 0 ? keys[rnd.nextInt(keys.length)]!.slice(0, 1) : '';
  const limit = 1 + rnd.nextInt(8);
  const expected = [...model.at[r]!]
    .filter(([k]) => k.startsWith(prefix))
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .slice(0, limit);
  expect(sm.rangeAt({ prefix, limit }, r), `${what}: range ${prefix}@${r}`).toEqual(expected);
  const from = model.compacted + rnd.nextInt(model.revision - model.compacted + 2);
  const events = sm.eventsFrom(from);
  if (isRevisionProblem(events)) throw new Error(`${what}: events from ${from}: ${JSON.stringify(events)}`);
  expect([...events], `${what}: events from ${from}`).toEqual(model.events(from));
  expect(historyRecords(sm), `${what}: history records kept`).toEqual(expectedHistory(model));
}

describe('key history', () => {
  it('reads, ranges and replays any revision since the compacted one, as a model keeping every revision does', () => {
    for (const seed of [1, 2, 3]) {
      const rnd = new SeededRandom(seed);
      const limits: KvLimits = { ...DEFAULT_KV_LIMITS, historyRetention: 30 };
      let sm = new KvStateMachine(limits);
      const model = new Model();
      const keys = ['a', 'ab', 'b', 'ba', 'c', 'cc', 'd'];
      let index = 0;
      for (let step = 0; step < 400; step++) {
        const roll = rnd.nextInt(20);
        if (roll === 0 && model.revision > model.compacted) {
          const to = model.compacted + 1 + rnd.nextInt(model.revision - model.compacted);
          sm.apply(++index, { op: 'compact', revision: to });
          model.compacted = to;
        } else if (roll === 1) {
          sm = new KvStateMachine(limits, sm.snapshot()); // a restore rebuilds the same history
        } else {
          const n = 1 + rnd.nextInt(3);
          const picked = [...new Set(Array.from({ length: n }, () => keys[rnd.nextInt(keys.length)]!))];
          if (rnd.nextInt(3) === 0) {
            sm.apply(++index, { op: 'delete', keys: picked });
            model.write(picked.map((k) => [k, null]));
          } else {
            const pairs = picked.map((k): [string, string] => [k, `v${step}`]);
            sm.apply(++index, { op: 'put', pairs });
            model.write(pairs);
          }
          // Automatic compaction: the last 30 revisions, once 30 + 3 are held.
          if (model.revision - model.compacted >= 30 + 3) model.compacted = model.revision - 30;
        }
        check(sm, model, rnd, keys, `seed ${seed} step ${step}`);
      }
      expect(model.compacted).toBeGreaterThan(100);
    }
  });

  it('says why a revision cannot be read: compacted (and up to where), or not yet written', () => {
    const sm = new KvStateMachine();
    for (let i = 1; i <= 5; i++) sm.apply(i, { op: 'put', pairs: [['k', `v${i}`]] });
    expect(sm.getAt('k', 2)).toMatchObject({ value: 'v2', modRevision: 2, createRevision: 1, version: 2 });
    expect(sm.apply(6, { op: 'compact', revision: 4 })).toEqual({ ok: true, op: 'compact', revision: 5, compacted: 4 });
    expect(sm.getAt('k', 3)).toEqual({ problem: 'compacted', compacted: 4, revision: 5 });
    expect(sm.getAt('k', 4)).toMatchObject({ value: 'v4' });
    expect(sm.getAt('k', 6)).toEqual({ problem: 'future', compacted: 4, revision: 5 });
    expect(sm.eventsFrom(3)).toEqual({ problem: 'compacted', compacted: 4, revision: 5 });
    expect(sm.apply(7, { op: 'compact', revision: 9 })).toMatchObject({ ok: false, code: 'invalid' });
    expect(sm.apply(8, { op: 'compact', revision: 2 })).toEqual({ ok: true, op: 'compact', revision: 5, compacted: 4 }); // no-op
  });
});
