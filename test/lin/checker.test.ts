import { describe, expect, it } from 'vitest';
import { checkLinearizable } from './checker.ts';
import type { KvOutput, Operation } from './history.ts';
import { randomHistory } from './random-history.ts';

// Builders: times are [call, ret]; an unknown outcome gets ret = Infinity.
let client = 0;
function op(input: Operation['input'], output: KvOutput, call: number, ret: number): Operation {
  return { client: client++, input, output, call, ret: output.kind === 'unknown' ? Infinity : ret };
}
const put = (key: string, value: string, revision: number, call: number, ret: number) =>
  op({ op: 'put', key, value }, { kind: 'put', revision }, call, ret);
const putUnknown = (key: string, value: string, call: number) => op({ op: 'put', key, value }, { kind: 'unknown' }, call, Infinity);
const get = (key: string, value: string | null, modRevision: number, call: number, ret: number) =>
  op({ op: 'get', key }, { kind: 'get', value, modRevision }, call, ret);
const del = (key: string, deleted: number, revision: number, call: number, ret: number) =>
  op({ op: 'delete', key }, { kind: 'delete', revision, deleted }, call, ret);
const cas = (key: string, expect: number, value: string, ok: boolean, revision: number, call: number, ret: number) =>
  op({ op: 'cas', key, expectModRevision: expect, value }, { kind: 'cas', ok, revision }, call, ret);
const casUnknown = (key: string, expect: number, value: string, call: number) =>
  op({ op: 'cas', key, expectModRevision: expect, value }, { kind: 'unknown' }, call, Infinity);

function verdict(history: Operation[]): string {
  return checkLinearizable(history).result;
}

describe('checkLinearizable on hand-made histories', () => {
  it('accepts an empty history and a sequential one', () => {
    expect(verdict([])).toBe('ok');
    expect(verdict([put('a', '1', 1, 0, 1), get('a', '1', 1, 2, 3), del('a', 1, 2, 4, 5), get('a', null, 0, 6, 7)])).toBe('ok');
  });

  it('rejects a stale read (a value overwritten before the read began)', () => {
    const h = [put('a', '1', 1, 0, 1), put('a', '2', 2, 2, 3), get('a', '1', 1, 4, 5)];
    const r = checkLinearizable(h);
    expect(r.result).toBe('illegal');
    if (r.result === 'illegal') {
      expect(r.key).toBe('a');
      expect(r.explanation).toContain('get("a")');
    }
  });

  it('lets a read concurrent with a write see either value, but not flip back', () => {
    expect(verdict([put('a', '1', 1, 0, 1), put('a', '2', 2, 2, 10), get('a', '1', 1, 3, 4)])).toBe('ok');
    expect(verdict([put('a', '1', 1, 0, 1), put('a', '2', 2, 2, 10), get('a', '2', 2, 3, 4)])).toBe('ok');
    // New value seen, then the old one by a later read: not linearizable.
    expect(verdict([put('a', '1', 1, 0, 1), put('a', '2', 2, 2, 10), get('a', '2', 2, 3, 4), get('a', '1', 1, 5, 6)])).toBe('illegal');
  });

  it('treats operations that touch in time as concurrent', () => {
    expect(verdict([put('a', '1', 1, 0, 5), get('a', null, 0, 5, 6)])).toBe('ok');
    expect(verdict([put('a', '1', 1, 0, 5), get('a', null, 0, 6, 7)])).toBe('illegal');
  });

  it('rejects a lost write', () => {
    expect(verdict([put('a', '1', 1, 0, 1), get('a', null, 0, 2, 3)])).toBe('illegal');
  });

  it('rejects a read of a value never written, or with the wrong mod revision', () => {
    expect(verdict([get('a', 'x', 5, 0, 1)])).toBe('illegal');
    expect(verdict([put('a', '1', 1, 0, 1), get('a', '1', 2, 2, 3)])).toBe('illegal');
  });

  it('rejects write revisions that go backwards on a key', () => {
    expect(verdict([put('a', '1', 5, 0, 1), put('a', '2', 3, 2, 3)])).toBe('illegal');
    expect(verdict([put('a', '1', 5, 0, 1), del('a', 1, 4, 2, 3)])).toBe('illegal');
  });

  it('rejects a CAS that succeeds twice on the same revision', () => {
    const h = [put('a', '1', 1, 0, 1), cas('a', 1, 'x', true, 2, 2, 5), cas('a', 1, 'y', true, 3, 2, 5)];
    expect(verdict(h)).toBe('illegal');
    // One wins, the other fails: fine.
    expect(verdict([put('a', '1', 1, 0, 1), cas('a', 1, 'x', true, 2, 2, 5), cas('a', 1, 'y', false, 2, 2, 5)])).toBe('ok');
  });

  it('checks CAS against absence and against the right revision', () => {
    expect(verdict([cas('a', 0, 'x', true, 1, 0, 1), get('a', 'x', 1, 2, 3)])).toBe('ok');
    expect(verdict([put('a', '1', 1, 0, 1), cas('a', 0, 'x', true, 2, 2, 3)])).toBe('illegal');
    expect(verdict([put('a', '1', 1, 0, 1), cas('a', 1, 'x', false, 1, 2, 3)])).toBe('illegal');
    expect(verdict([cas('a', 0, 'x', false, 0, 0, 1)])).toBe('illegal');
  });

  it('checks delete counts', () => {
    expect(verdict([del('a', 0, 0, 0, 1)])).toBe('ok');
    expect(verdict([del('a', 1, 1, 0, 1)])).toBe('illegal');
    expect(verdict([put('a', '1', 1, 0, 1), del('a', 0, 1, 2, 3)])).toBe('illegal');
  });

  it('lets a pending write take effect, with its revision revealed by a read', () => {
    const h = [putUnknown('a', '1', 0), get('a', '1', 7, 5, 6)];
    expect(verdict(h)).toBe('ok');
    // Later writes must still get higher revisions than the revealed one.
    expect(verdict([...h, put('a', '2', 5, 8, 9)])).toBe('illegal');
    expect(verdict([...h, put('a', '2', 8, 8, 9), get('a', '2', 8, 10, 11)])).toBe('ok');
  });

  it('lets a pending write never take effect, or take effect late', () => {
    expect(verdict([putUnknown('a', '1', 0), get('a', null, 0, 5, 6)])).toBe('ok');
    expect(verdict([putUnknown('a', '1', 0), get('a', null, 0, 5, 6), get('a', '1', 9, 10, 11)])).toBe('ok');
  });

  it('does not let a pending write take effect before its call, or un-happen', () => {
    expect(verdict([get('a', '1', 3, 0, 1), putUnknown('a', '1', 2)])).toBe('illegal');
    expect(verdict([putUnknown('a', '1', 0), get('a', '1', 3, 1, 2), get('a', null, 0, 3, 4)])).toBe('illegal');
  });

  it('handles a pending CAS on an unknown mod revision both ways', () => {
    // The pending put took effect with revision 5, then the pending CAS expecting 5 wrote 'x'.
    expect(verdict([putUnknown('a', '1', 0), casUnknown('a', 5, 'x', 1), get('a', 'x', 9, 10, 11)])).toBe('ok');
    // Or the CAS did not match and the put's value stays.
    expect(verdict([putUnknown('a', '1', 0), casUnknown('a', 5, 'x', 1), get('a', '1', 6, 10, 11)])).toBe('ok');
    // The CAS cannot have written if the revision it expected is the one the put got... after
    // a read revealed a different one.
    expect(verdict([putUnknown('a', '1', 0), get('a', '1', 6, 1, 2), casUnknown('a', 5, 'x', 3), get('a', 'x', 9, 10, 11)])).toBe(
      'illegal',
    );
    // A pending put after a known one at revision 5 got a revision above 5 (a failed CAS
    // expecting 5 shows it took effect): a later pending CAS expecting 5 cannot match it.
    const before = [put('a', '1', 5, 0, 1), putUnknown('a', '2', 2), cas('a', 5, 'y', false, 5, 3, 4)];
    expect(verdict([...before, casUnknown('a', 5, 'x', 5), get('a', 'x', 9, 10, 11)])).toBe('illegal');
    expect(verdict([...before, casUnknown('a', 6, 'x', 5), get('a', 'x', 9, 10, 11)])).toBe('ok');
  });

  it('checks keys independently and names the bad one', () => {
    const h = [put('a', '1', 1, 0, 1), put('b', '1', 2, 0, 1), get('a', '1', 1, 2, 3), get('b', null, 0, 2, 3)];
    expect(checkLinearizable(h)).toMatchObject({ result: 'illegal', key: 'b' });
  });

  it('answers unknown when the step budget runs out', () => {
    // Many concurrent pending writes and reads of one key: a large search space.
    const h: Operation[] = [];
    for (let i = 0; i < 30; i++) h.push(putUnknown('a', `v${i}`, 0));
    for (let i = 0; i < 30; i++) h.push(get('a', `v${29 - i}`, 100 + i, 1, 2 + i));
    expect(checkLinearizable(h, { stepBudget: 50 })).toEqual({ result: 'unknown', key: 'a' });
  });

  it('refuses malformed histories loudly', () => {
    expect(() => checkLinearizable([op({ op: 'get', key: 'a' }, { kind: 'put', revision: 1 }, 0, 1)])).toThrow(TypeError);
    expect(() => checkLinearizable([put('a', '1', 1, 5, 1)])).toThrow(RangeError);
  });
});

describe('checkLinearizable on histories from a real sequential run', () => {
  it('accepts every generated history', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const h = randomHistory({ seed, ops: 80, keys: 3, clients: 5, unknownRate: 0.1 });
      const r = checkLinearizable(h);
      expect(r, `seed ${seed}`).toEqual({ result: 'ok' });
    }
  });

  it('rejects each generated history once a read is made to return an invented value', () => {
    let mutated = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const h = randomHistory({ seed, ops: 60, keys: 2, clients: 4, unknownRate: 0.1 });
      const i = h.findIndex((o) => o.output.kind === 'get' && o.output.value !== null);
      if (i < 0) continue;
      const o = h[i]!;
      h[i] = { ...o, output: { kind: 'get', value: 'invented', modRevision: (o.output as { modRevision: number }).modRevision } };
      expect(checkLinearizable(h).result, `seed ${seed}`).toBe('illegal');
      mutated++;
    }
    expect(mutated).toBeGreaterThan(40);
  });

  it('rejects generated histories once a read after a completed write misses it (lost write)', () => {
    let mutated = 0;
    for (let seed = 1; seed <= 80; seed++) {
      const h = randomHistory({ seed, ops: 60, keys: 2, clients: 4, unknownRate: 0.1, deletes: false });
      // No deletes, a known put to a key, and a read called after that put returned:
      // answering "absent" means the write was lost.
      const gi = h.findIndex(
        (g) => g.output.kind === 'get' && h.some((p) => p.output.kind === 'put' && p.input.key === g.input.key && p.ret < g.call),
      );
      if (gi < 0) continue;
      h[gi] = { ...h[gi]!, output: { kind: 'get', value: null, modRevision: 0 } };
      expect(checkLinearizable(h).result, `seed ${seed}`).toBe('illegal');
      mutated++;
    }
    expect(mutated).toBeGreaterThan(60);
  });
});
