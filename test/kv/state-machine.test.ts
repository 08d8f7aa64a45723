import { describe, expect, it } from 'vitest';
import { DEFAULT_KV_LIMITS, KvStateMachine } from '../../worker/kv/index.ts';
import { pairBytes } from '../../worker/kv/state-machine.ts';
import { COMPACTED_KEY, historyKey } from '../../worker/kv/history.ts';
import { isInternalKey } from '../../worker/kv/tokens.ts';
import type { KvCommand, KvLimits, KvResult } from '../../worker/kv/index.ts';

const put = (pairs: Array<[string, string]>, extra: Partial<KvCommand> = {}): KvCommand => ({ op: 'put', pairs, ...extra }) as KvCommand;
const del = (keys: string[], extra: Partial<KvCommand> = {}): KvCommand => ({ op: 'delete', keys, ...extra }) as KvCommand;
const limits = (over: Partial<KvLimits>): KvLimits => ({ ...DEFAULT_KV_LIMITS, ...over });

describe('revisions', () => {
  it('counts one revision per write command and tracks create/mod revision and version per key', () => {
    const sm = new KvStateMachine();
    expect(
      sm.apply(
        1,
        put([
          ['a', '1'],
          ['b', '1'],
        ]),
      ),
    ).toEqual({ ok: true, op: 'put', revision: 1 });
    expect(sm.apply(2, put([['a', '2']]))).toEqual({ ok: true, op: 'put', revision: 2 });
    expect(sm.get('a')).toEqual({ value: '2', createRevision: 1, modRevision: 2, version: 2 });
    expect(sm.get('b')).toEqual({ value: '1', createRevision: 1, modRevision: 1, version: 1 });
    expect(sm.revision).toBe(2);
    expect(sm.size).toBe(2);
  });

  it('bumps the revision for a delete that deleted something, not for one that deleted nothing', () => {
    const sm = new KvStateMachine();
    sm.apply(1, put([['a', '1']]));
    expect(sm.apply(2, del(['nope']))).toEqual({ ok: true, op: 'delete', revision: 1, deleted: 0 });
    expect(sm.apply(3, del(['a', 'nope']))).toEqual({ ok: true, op: 'delete', revision: 2, deleted: 1 });
    expect(sm.get('a')).toBeUndefined();
    expect(sm.size).toBe(0);
  });

  it('resets create revision and version when a deleted key is written again', () => {
    const sm = new KvStateMachine();
    sm.apply(1, put([['a', '1']]));
    sm.apply(2, put([['a', '2']]));
    sm.apply(3, del(['a']));
    sm.apply(4, put([['a', '3']]));
    expect(sm.get('a')).toEqual({ value: '3', createRevision: 4, modRevision: 4, version: 1 });
  });

  it('never changes a record it handed out', () => {
    const sm = new KvStateMachine();
    sm.apply(1, put([['a', '1']]));
    const before = sm.get('a')!;
    sm.apply(2, put([['a', '2']]));
    expect(before).toEqual({ value: '1', createRevision: 1, modRevision: 1, version: 1 });
  });
});

describe('compare-and-set', () => {
  it('writes only when the mod revision matches, else answers the actual one and writes nothing', () => {
    const sm = new KvStateMachine();
    sm.apply(1, put([['a', '1']]));
    expect(sm.apply(2, put([['a', 'x']], { compare: { key: 'a', modRevision: 7 } }))).toEqual({
      ok: false,
      code: 'compare-failed',
      revision: 1,
      actual: 1,
    });
    expect(sm.get('a')!.value).toBe('1');
    expect(sm.apply(3, put([['a', 'x']], { compare: { key: 'a', modRevision: 1 } }))).toEqual({ ok: true, op: 'put', revision: 2 });
    expect(sm.get('a')!.value).toBe('x');
  });

  it('treats mod revision 0 as "must not exist"', () => {
    const sm = new KvStateMachine();
    const create = put([['a', '1']], { compare: { key: 'a', modRevision: 0 } });
    expect(sm.apply(1, create)).toMatchObject({ ok: true });
    expect(sm.apply(2, create)).toEqual({ ok: false, code: 'compare-failed', revision: 1, actual: 1 });
  });

  it('guards deletes and multi-key writes by a compare on another key', () => {
    const sm = new KvStateMachine();
    sm.apply(
      1,
      put([
        ['lock', 'me'],
        ['x', '1'],
      ]),
    );
    expect(sm.apply(2, del(['x'], { compare: { key: 'lock', modRevision: 0 } }))).toMatchObject({ code: 'compare-failed', actual: 1 });
    expect(sm.get('x')).toBeDefined();
    expect(
      sm.apply(
        3,
        put(
          [
            ['x', '2'],
            ['y', '2'],
          ],
          { compare: { key: 'lock', modRevision: 1 } },
        ),
      ),
    ).toMatchObject({ ok: true, revision: 2 });
  });
});

describe('sessions (exactly-once)', () => {
  const stamp = (client: string, seq: number) => ({ stamp: { client, seq } });

  it('answers a retry with the first answer and applies it once', () => {
    const sm = new KvStateMachine();
    const cmd = put([['a', '1']], stamp('c1', 1));
    const first = sm.apply(1, cmd);
    sm.apply(2, put([['a', 'other']]));
    expect(sm.apply(3, cmd)).toEqual(first);
    expect(sm.get('a')).toMatchObject({ value: 'other', version: 2 });
    expect(sm.revision).toBe(2);
  });

  it('remembers failed answers too (a retried CAS does not flip to success)', () => {
    const sm = new KvStateMachine();
    sm.apply(1, put([['a', '1']]));
    const cas = put([['a', 'x']], { compare: { key: 'a', modRevision: 5 }, ...stamp('c', 1) });
    const first = sm.apply(2, cas);
    expect(first).toMatchObject({ code: 'compare-failed' });
    sm.apply(3, put([['a', '2']])); // revision 2
    sm.apply(4, put([['a', '3']])); // revision 3
    sm.apply(5, put([['a', '4']])); // revision 4
    sm.apply(6, put([['a', '5']])); // revision 5: the CAS would now succeed if re-executed
    expect(sm.apply(7, cas)).toEqual(first);
    expect(sm.get('a')!.value).toBe('5');
  });

  it('applies a higher seq, refuses a lower one, and begins sessions only at seq 1', () => {
    const sm = new KvStateMachine();
    const late = sm.apply(1, put([['a', '1']], stamp('c', 10)));
    expect(late).toMatchObject({ ok: false, code: 'session-expired', revision: 0 });
    expect(sm.sessionCount).toBe(0);
    expect(sm.apply(2, put([['a', '1']], stamp('c', 1)))).toMatchObject({ ok: true, revision: 1 });
    expect(sm.apply(3, put([['a', '2']], stamp('c', 12)))).toMatchObject({ ok: true, revision: 2 });
    const old = sm.apply(4, put([['a', '3']], stamp('c', 11)));
    expect(old).toMatchObject({ ok: false, code: 'session-expired', revision: 2 });
    expect(sm.get('a')!.value).toBe('2');
    expect(sm.sessionCount).toBe(1);
  });

  it('refuses a malformed stamp without creating a session', () => {
    const sm = new KvStateMachine();
    expect(sm.apply(1, put([['a', '1']], stamp('', 1)))).toMatchObject({ ok: false, code: 'invalid' });
    expect(sm.apply(2, put([['a', '1']], stamp('c', 0)))).toMatchObject({ ok: false, code: 'invalid' });
    expect(sm.apply(3, put([['a', '1']], stamp('c\n', 1)))).toMatchObject({ ok: false, code: 'invalid' });
    expect(sm.sessionCount).toBe(0);
    expect(sm.size).toBe(0);
  });

  it('evicts the least recently used session beyond sessionsMax', () => {
    const sm = new KvStateMachine(limits({ sessionsMax: 2 }));
    sm.apply(1, put([['k', '1']], stamp('a', 1)));
    sm.apply(2, put([['k', '2']], stamp('b', 1)));
    sm.apply(3, put([['k', '1']], stamp('a', 1))); // a retry: 'a' is now the most recent
    sm.apply(4, put([['k', '3']], stamp('c', 1))); // evicts 'b'
    expect(sm.takeChanges().sessionDeletes).toEqual(['b']);
    // 'b' was forgotten: its next command is refused, not applied as a new session would be.
    expect(sm.apply(5, put([['k', '9']], stamp('b', 2)))).toMatchObject({ ok: false, code: 'session-expired', revision: 3 });
    // Only a retry of a session's first command can apply again (outside the window).
    expect(sm.apply(6, put([['k', '2']], stamp('b', 1)))).toMatchObject({ ok: true, revision: 4 });
    // 'a' was evicted by b's new session; c was kept.
    expect(sm.apply(7, put([['k', '1']], stamp('c', 1)))).toMatchObject({ ok: true, revision: 3 });
  });

  it('breaks LRU ties by client id, deterministically', () => {
    const result: KvResult = { ok: true, op: 'put', revision: 1 };
    const state = {
      revision: 1,
      records: [],
      sessions: [
        ['zed', { seq: 1, result, lastIndex: 5 }],
        ['amy', { seq: 1, result, lastIndex: 5 }],
        ['bob', { seq: 1, result, lastIndex: 5 }],
      ] as Array<[string, { seq: number; result: KvResult; lastIndex: number }]>,
    };
    const sm = new KvStateMachine(limits({ sessionsMax: 3 }), state);
    sm.apply(6, put([['k', 'v']], stamp('new', 1)));
    expect(sm.takeChanges().sessionDeletes).toEqual(['amy']);
  });

  it('expires a session idle for more than sessionIdleEntriesMax log entries', () => {
    const sm = new KvStateMachine(limits({ sessionIdleEntriesMax: 10 }));
    const cmd = put([['a', '1']], stamp('c', 1));
    sm.apply(1, cmd);
    // 10 entries later: inside the window, a retry is answered from the session (and refreshes it).
    expect(sm.apply(11, put([['a', 'retry']], stamp('c', 1)))).toEqual({ ok: true, op: 'put', revision: 1 });
    sm.apply(21, put([['x', 'y']])); // idle for 10 entries: kept
    expect(sm.sessionCount).toBe(1);
    sm.takeChanges();
    sm.apply(22, put([['x', 'z']])); // idle for 11: expired
    expect(sm.sessionCount).toBe(0);
    expect(sm.takeChanges().sessionDeletes).toEqual(['c']);
    // Outside the window its next command is refused (the retry of seq 1, a session's first
    // command, would apply again: revisions 2 and 3 were the puts of x).
    expect(sm.apply(23, put([['a', '2']], stamp('c', 2)))).toMatchObject({ ok: false, code: 'session-expired', revision: 3 });
    expect(sm.apply(24, cmd)).toEqual({ ok: true, op: 'put', revision: 4 });
  });
});

describe('limits and robustness', () => {
  it('answers invalid (never throws) for commands that break limits or make no sense', () => {
    const sm = new KvStateMachine(limits({ keyBytesMax: 4, valueBytesMax: 8, pairsPerCommandMax: 2, commandBytesMax: 30 }));
    const bad: unknown[] = [
      null,
      42,
      'put',
      [],
      {},
      { op: 'get', keys: ['a'] },
      { op: 'put' },
      { op: 'put', pairs: [] },
      { op: 'put', pairs: [['a']] },
      { op: 'put', pairs: [['', 'v']] },
      { op: 'put', pairs: [['a', 5]] },
      { op: 'put', pairs: [['abcde', 'v']] },
      { op: 'put', pairs: [['é', 'v']] }, // 2 bytes: within keyBytesMax (4); 'ééé' below is 6
      { op: 'put', pairs: [['ééé', 'v']] },
      { op: 'put', pairs: [['a', '123456789']] },
      {
        op: 'put',
        pairs: [
          ['a', '1'],
          ['b', '2'],
          ['c', '3'],
        ],
      },
      {
        op: 'put',
        pairs: [
          ['a', '1'],
          ['a', '2'],
        ],
      },
      { op: 'put', pairs: [['\ud800', 'v']] },
      {
        op: 'put',
        pairs: [
          ['a', '12345678'],
          ['b', '12345678'],
        ],
        compare: { key: 'abcd', modRevision: 1 },
      },
      { op: 'delete', keys: 'a' },
      { op: 'delete', keys: ['a', 'a'] },
      { op: 'put', pairs: [['a', 'v']], compare: { key: 'a', modRevision: -1 } },
      { op: 'put', pairs: [['a', 'v']], compare: { key: 'a', modRevision: 1.5 } },
      { op: 'put', pairs: [['a', 'v']], stamp: 'c1' },
    ];
    let index = 0;
    const answers = bad.map((cmd) => sm.apply(++index, cmd as KvCommand));
    const okOnes = answers.map((a, i) => (a.ok ? i : -1)).filter((i) => i >= 0);
    expect(okOnes).toEqual([12]); // only the 2-byte key is within limits
    for (const a of answers) if (!a.ok) expect(a).toMatchObject({ code: 'invalid', message: expect.any(String) });
    expect(sm.size).toBe(1);
    expect(sm.revision).toBe(1);
  });

  it('throws on a host bug: a log index that does not increase', () => {
    const sm = new KvStateMachine();
    sm.apply(5, put([['a', '1']]));
    expect(() => sm.apply(5, put([['a', '1']]))).toThrow(RangeError);
    expect(() => sm.apply(3, put([['a', '1']]))).toThrow(RangeError);
    expect(sm.revision).toBe(1);
  });

  it('refuses nonsensical limits and corrupt states at construction', () => {
    expect(() => new KvStateMachine(limits({ sessionsMax: 0 }))).toThrow(RangeError);
    expect(
      () =>
        new KvStateMachine(DEFAULT_KV_LIMITS, {
          revision: 1,
          records: [['a', { value: 'v', createRevision: 2, modRevision: 2, version: 1 }]],
          sessions: [],
        }),
    ).toThrow(/invariants/);
  });
});

describe('state size (what a space quota is checked against)', () => {
  it('counts UTF-8 bytes of keys and values, and of the history kept, through puts, overwrites, deletes, a compaction and a restore', () => {
    const sm = new KvStateMachine();
    const historyBytes = () => sm.snapshot().records.reduce((n, [k, r]) => n + (isInternalKey(k) ? pairBytes(k, r.value) : 0), 0);
    expect(sm.stateBytes).toBe(0);
    sm.apply(
      1,
      put([
        ['a', 'xyz'],
        ['é', '€'],
      ]),
    ); // 1+3 + 2+3
    expect(sm.stateBytes).toBe(9);
    expect(sm.putGrowth([['a', '']])).toBe(-3 + pairBytes(historyKey(1, 'a'), 'p1,1,xyz'));
    sm.apply(2, put([['a', '']])); // overwrite: value 3 → 0 bytes; the old version is kept
    expect(sm.stateBytes - historyBytes()).toBe(6);
    expect(historyBytes()).toBe(pairBytes(historyKey(1, 'a'), 'p1,1,xyz'));
    sm.apply(3, del(['é', 'missing']));
    expect(sm.stateBytes - historyBytes()).toBe(1);
    sm.apply(4, put([['k', 'v'.repeat(100)]]));
    sm.apply(5, { op: 'compact', revision: 4 });
    // What a read at revision 4 or later needs stays: nothing of the history (and the compacted mark).
    expect(historyBytes()).toBe(pairBytes(COMPACTED_KEY, '4'));
    const restored = new KvStateMachine(DEFAULT_KV_LIMITS, sm.snapshot());
    expect(restored.stateBytes).toBe(sm.stateBytes);
    expect(restored.stateBytes - historyBytes()).toBe(1 + 1 + 100);
  });
});

describe('takeChanges', () => {
  it('reports upserts, deletes and sessions changed since the last call, once', () => {
    const sm = new KvStateMachine();
    sm.apply(
      1,
      put(
        [
          ['a', '1'],
          ['b', '1'],
        ],
        { stamp: { client: 'c', seq: 1 } },
      ),
    );
    sm.apply(2, del(['b']));
    const c = sm.takeChanges();
    expect(c.revision).toBe(2);
    // The delete keeps b's last version and its deletion as history records, written with it.
    expect(c.upserts).toEqual([
      ['a', { value: '1', createRevision: 1, modRevision: 1, version: 1 }],
      [historyKey(1, 'b'), { value: 'p1,1,1', createRevision: 2, modRevision: 2, version: 1 }],
      [historyKey(2, 'b'), { value: 'd', createRevision: 2, modRevision: 2, version: 1 }],
    ]);
    expect(c.deletes).toEqual(['b']);
    // b was created and deleted since the last call: nothing stored was replaced.
    expect(c.replaced).toEqual([]);
    expect(c.sessionUpserts).toEqual([['c', { seq: 1, result: { ok: true, op: 'put', revision: 1 }, lastIndex: 1 }]]);
    // The counts a tiered engine keeps with the records: a, and b's two history records.
    const summary = { records: 3, internalRecords: 2, bytes: sm.stateBytes };
    expect(c.summary).toEqual(summary);
    expect(sm.takeChanges()).toEqual({
      revision: 2,
      upserts: [],
      deletes: [],
      replaced: [],
      sessionUpserts: [],
      sessionDeletes: [],
      summary,
    });
    // What the next changes replace is what the last ones stored: a at 1, once however often it changes.
    sm.apply(3, put([['a', '2']]));
    sm.apply(4, put([['a', '3']]));
    sm.apply(5, del(['a']));
    expect(sm.takeChanges().replaced).toEqual([['a', 1]]);
  });
});
