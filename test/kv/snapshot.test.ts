import { isInternalKey } from '../../worker/kv/tokens.ts';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../worker/raft/random.ts';
import { decodeState, DEFAULT_KV_LIMITS, encodeState, KvStateMachine } from '../../worker/kv/index.ts';
import { StateEncoder } from '../../worker/kv/codec.ts';
import type { KeyRecord, KvChanges, KvLimits, KvState, SessionRecord } from '../../worker/kv/index.ts';
import { randomCommands, randomString } from './random-commands.ts';

// Small bounds so eviction and idle expiry happen within a short run.
const LIMITS: KvLimits = { ...DEFAULT_KV_LIMITS, sessionsMax: 5, sessionIdleEntriesMax: 40 };

/** A host's view: the KvChanges stream applied to plain maps, as a storage engine would. */
class HostStore {
  revision = 0;
  records = new Map<string, KeyRecord>();
  sessions = new Map<string, SessionRecord>();
  save(c: KvChanges): void {
    this.revision = c.revision;
    for (const k of c.deletes) this.records.delete(k);
    for (const [k, r] of c.upserts) this.records.set(k, r);
    for (const k of c.sessionDeletes) this.sessions.delete(k);
    for (const [k, s] of c.sessionUpserts) this.sessions.set(k, s);
  }
  /** Loaded back in arbitrary (here: reversed insertion) order. */
  load(): KvState {
    return { revision: this.revision, records: [...this.records].reverse(), sessions: [...this.sessions].reverse() };
  }
}

describe('snapshot and restore', () => {
  it('a machine restored from snapshot bytes, or from persisted changes, is indistinguishable', () => {
    let sessionsDropped = 0;
    let staleSeqs = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = new SeededRandom(seed);
      const source = randomCommands(rnd, { keys: 12, clients: 8 });
      const a = new KvStateMachine(LIMITS);
      const host = new HostStore();
      let index = 0;
      const steps = 300;
      const restoreAt = 50 + rnd.nextInt(200);
      let b: KvStateMachine | undefined;
      let c: KvStateMachine | undefined;
      for (let i = 0; i < steps; i++) {
        if (i === restoreAt) {
          host.save(a.takeChanges()); // the host persists with the applied index, then restarts
          const bytes = encodeState(a.snapshot());
          b = new KvStateMachine(LIMITS, decodeState(bytes));
          c = new KvStateMachine(LIMITS, host.load());
          expect(encodeState(b.snapshot()), `seed ${seed}`).toEqual(bytes);
          expect(encodeState(c.snapshot()), `seed ${seed}`).toEqual(bytes);
        }
        index += 1 + rnd.nextInt(3); // gaps: no-op and membership entries never reach the KV
        const cmd = source.next(a);
        const ra = a.apply(index, cmd);
        if (!ra.ok && ra.code === 'session-expired') staleSeqs++;
        if (b !== undefined && c !== undefined) {
          expect(b.apply(index, cmd), `seed ${seed} step ${i}`).toEqual(ra);
          expect(c.apply(index, cmd), `seed ${seed} step ${i}`).toEqual(ra);
        }
        if (rnd.nextInt(5) === 0) {
          const changes = a.takeChanges();
          sessionsDropped += changes.sessionDeletes.length;
          host.save(changes);
        }
      }
      expect(b!.snapshot()).toEqual(a.snapshot());
      expect(c!.snapshot()).toEqual(a.snapshot());
      expect(a.sessionCount).toBeLessThanOrEqual(LIMITS.sessionsMax);
    }
    // The runs did exercise eviction/expiry and stale sequence numbers.
    expect(sessionsDropped).toBeGreaterThan(100);
    expect(staleSeqs).toBeGreaterThan(10);
  });
});

describe('range', () => {
  it('matches a naive sorted filter under random writes, deletes and queries', () => {
    const rnd = new SeededRandom(7);
    const sm = new KvStateMachine();
    const naive = new Map<string, string>();
    let index = 0;
    for (let i = 0; i < 3000; i++) {
      // Bursts of creations (sort-merge path) and single ones (binary insertion path).
      const burst = rnd.nextInt(20) === 0 ? 40 : 1;
      for (let j = 0; j < burst; j++) {
        const k = randomString(rnd, 3) || 'x';
        if (rnd.nextInt(3) === 0) {
          sm.apply(++index, { op: 'delete', keys: [k] });
          naive.delete(k);
        } else {
          const v = String(i);
          sm.apply(++index, { op: 'put', pairs: [[k, v]] });
          naive.set(k, v);
        }
      }
      if (rnd.nextInt(4) !== 0) continue;
      const opts = {
        prefix: rnd.nextInt(2) === 0 ? randomString(rnd, 2) : undefined,
        start: rnd.nextInt(2) === 0 ? randomString(rnd, 2) : undefined,
        end: rnd.nextInt(2) === 0 ? randomString(rnd, 2) : undefined,
        limit: 1 + rnd.nextInt(30),
      };
      const expected = [...naive.keys()]
        .filter((k) => (opts.prefix === undefined || k.startsWith(opts.prefix)) && (opts.start === undefined || k >= opts.start))
        .filter((k) => opts.end === undefined || opts.end === '' || k < opts.end)
        .sort()
        .slice(0, opts.limit);
      const got = sm.range(opts);
      expect(
        got.map(([k]) => k),
        JSON.stringify(opts),
      ).toEqual(expected);
      for (const [k, r] of got) expect(r.value).toBe(naive.get(k));
    }
    expect(sm.size).toBe(naive.size);
    // The state also carries metcd's own records (the history of replaced and deleted versions).
    expect(
      sm
        .snapshot()
        .records.map(([k]) => k)
        .filter((k) => !isInternalKey(k)),
    ).toEqual([...naive.keys()].sort());
  });

  it('returns nothing for a non-positive limit', () => {
    const sm = new KvStateMachine();
    sm.apply(1, { op: 'put', pairs: [['a', '1']] });
    expect(sm.range({ limit: 0 })).toEqual([]);
    expect(sm.range({ limit: 1 })).toHaveLength(1);
  });
});

describe('snapshot views (encoded in slices while commands keep applying)', () => {
  it('a view and its sliced encoding equal the state at the moment it was taken, whatever applies meanwhile', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = new SeededRandom(1000 + seed);
      const source = randomCommands(rnd, { keys: 30, clients: 6 });
      const kv = new KvStateMachine(LIMITS);
      let index = 0;
      for (let i = 0; i < 100 + rnd.nextInt(100); i++) kv.apply(++index, source.next(kv));
      const expected = encodeState(kv.snapshot());
      const view = kv.beginView();
      const encoder = new StateEncoder(view.revision);
      // Puts, deletes and re-creations of keys between slices, before and after they are read.
      while (!view.done) {
        encoder.add(view.next(1 + rnd.nextInt(5), 1 + rnd.nextInt(200)));
        for (let i = rnd.nextInt(6); i > 0; i--) kv.apply(++index, source.next(kv));
      }
      expect(view.next(10)).toEqual([]);
      const got = encoder.finish(view.sessions);
      view.close();
      expect(Buffer.from(got).equals(Buffer.from(expected)), `seed ${seed}`).toBe(true);
      expect(decodeState(got)).toEqual(decodeState(expected));
    }
  });

  it('a closed view stops tracking changes; the encoder refuses records out of key order', () => {
    const kv = new KvStateMachine(LIMITS);
    kv.apply(1, {
      op: 'put',
      pairs: [
        ['a', '1'],
        ['b', '2'],
      ],
    });
    const view = kv.beginView();
    view.close();
    kv.apply(2, { op: 'put', pairs: [['a', 'changed']] });
    expect(() => view.next(1)).toThrow(/after close/);
    const encoder = new StateEncoder(1);
    const rec = { value: 'x', createRevision: 1, modRevision: 1, version: 1 };
    encoder.add([['b', rec]]);
    expect(() => encoder.add([['a', rec]])).toThrow(/order/);
    expect(() => encoder.add([['b', rec]])).toThrow(/duplicate/);
  });
});
