// Transactions in the state machine: etcd's compare rules (a missing key's zero values, value
// compares on it false), one revision for all writes of a branch, gets that see earlier writes,
// prefix deletes, limits and malformed transactions answered invalid alike on every replica,
// exactly-once under a session stamp, and answers that survive a snapshot (sessions keep them).

import { describe, expect, it } from 'vitest';
import { DEFAULT_KV_LIMITS, KvStateMachine } from '../../worker/kv/index.ts';
import type { KvCommand, TxnCompare, TxnOp } from '../../worker/kv/types.ts';
import { STORAGE_ROW_BYTES_MAX } from '../../worker/kv/types.ts';
import { decodeCommand, decodeState, encodeCommand, encodeState } from '../../worker/kv/codec.ts';
import { validateCommand } from '../../worker/kv/validate.ts';

const txn = (compare: TxnCompare[], success: TxnOp[], failure: TxnOp[] = []): KvCommand => ({ op: 'txn', compare, success, failure });
const put = (key: string, value: string): TxnOp => ({ put: { key, value } });

describe('transactions', () => {
  it('apply the success branch when every compare holds, else the failure branch, in one revision', () => {
    const sm = new KvStateMachine();
    sm.apply(1, { op: 'put', pairs: [['a', '1']] });
    const cas = txn([{ key: 'a', target: 'value', result: '==', value: '1' }], [put('a', '2'), put('b', '2')], [{ get: { key: 'a' } }]);
    expect(sm.apply(2, cas)).toEqual({
      ok: true,
      op: 'txn',
      revision: 2,
      succeeded: true,
      results: [{ put: { revision: 2 } }, { put: { revision: 2 } }],
    });
    expect(sm.get('a')).toEqual({ value: '2', createRevision: 1, modRevision: 2, version: 2 });
    expect(sm.get('b')?.modRevision).toBe(2);
    // Now the compare fails: the failure branch reads, nothing is written, the revision stays.
    expect(sm.apply(3, cas)).toEqual({
      ok: true,
      op: 'txn',
      revision: 2,
      succeeded: false,
      results: [{ get: { kvs: [['a', { value: '2', createRevision: 1, modRevision: 2, version: 2 }]], more: false } }],
    });
  });

  it('compares a missing key as etcd does: zero revisions and version, and no value', () => {
    const sm = new KvStateMachine();
    let index = 0;
    const holds = (c: TxnCompare) => {
      const r = sm.apply(++index, txn([c], []));
      return r.ok && r.op === 'txn' && r.succeeded;
    };
    expect(holds({ key: 'x', target: 'version', result: '==', value: 0 })).toBe(true);
    expect(holds({ key: 'x', target: 'createRevision', result: '==', value: 0 })).toBe(true);
    expect(holds({ key: 'x', target: 'modRevision', result: '<', value: 1 })).toBe(true);
    expect(holds({ key: 'x', target: 'value', result: '==', value: '' })).toBe(false);
    expect(holds({ key: 'x', target: 'value', result: '!=', value: 'y' })).toBe(false);
    sm.apply(++index, { op: 'put', pairs: [['x', 'b']] });
    expect(holds({ key: 'x', target: 'value', result: '>', value: 'a' })).toBe(true);
    expect(holds({ key: 'x', target: 'version', result: '>', value: 1 })).toBe(false);
  });

  it('lets a get see the writes before it, deletes by prefix, and moves the revision only when something was written', () => {
    const sm = new KvStateMachine();
    sm.apply(1, {
      op: 'put',
      pairs: [
        ['p/1', 'a'],
        ['p/2', 'b'],
        ['q', 'c'],
      ],
    });
    const r = sm.apply(
      2,
      txn([], [put('n', 'new'), { get: { prefix: '', limit: 2 } }, { delete: { prefix: 'p/' } }, { get: { prefix: 'p/' } }]),
    );
    expect(r).toMatchObject({ ok: true, revision: 2, succeeded: true });
    if (!r.ok || r.op !== 'txn') throw new Error('not a txn answer');
    expect(r.results[1]).toEqual({
      get: {
        kvs: [
          ['n', expect.objectContaining({ value: 'new', modRevision: 2 })],
          ['p/1', expect.anything()],
        ],
        more: true,
      },
    });
    expect(r.results[2]).toEqual({ delete: { deleted: 2 } });
    expect(r.results[3]).toEqual({ get: { kvs: [], more: false } });
    expect(sm.apply(3, txn([], [{ delete: { key: 'missing' } }, { get: { key: 'q' } }]))).toMatchObject({ revision: 2 });
    // History: the keys as they were before the transaction's revision.
    expect(sm.getAt('p/1', 1)).toMatchObject({ value: 'a' });
  });

  it('refuses malformed transactions, duplicate writes in a branch, and more operations than txnOpsMax', () => {
    const limits = { ...DEFAULT_KV_LIMITS, txnOpsMax: 2 };
    const bad: unknown[] = [
      { op: 'txn', compare: [], success: [put('a', '1'), put('a', '2')], failure: [] },
      { op: 'txn', compare: [], success: [put('p/a', '1'), { delete: { prefix: 'p/' } }], failure: [] },
      { op: 'txn', compare: [], success: [put('a', '1'), put('b', '1'), put('c', '1')], failure: [] },
      { op: 'txn', compare: [{ key: 'a', target: 'owner', result: '==', value: 0 }], success: [], failure: [] },
      { op: 'txn', compare: [{ key: 'a', target: 'version', result: '==', value: '1' }], success: [], failure: [] },
      { op: 'txn', compare: [{ key: 'a', target: 'value', result: '~', value: '1' }], success: [], failure: [] },
      { op: 'txn', compare: [], success: [{ put: { key: 'a', value: '1', lease: 'seven' } }], failure: [] },
      { op: 'txn', compare: [], success: [{ put: { key: 'a', value: '1', ttl: 7 } }], failure: [] },
      { op: 'txn', compare: [], success: [{ get: { prefix: 'a', limit: 0 } }], failure: [] },
      { op: 'txn', compare: [], success: [{ frobnicate: {} }], failure: [] },
      { op: 'txn', compare: [], success: [{ put: { key: '\u0001h/x', value: '1' } }], failure: [] },
      { op: 'txn', compare: [], success: 'everything', failure: [] },
      { op: 'txn', compare: [], success: [], failure: [], extra: 1 },
    ];
    const sm = new KvStateMachine(limits);
    let index = 0;
    for (const cmd of bad) {
      expect(validateCommand(cmd, limits).ok, JSON.stringify(cmd)).toBe(false);
      expect(sm.apply(++index, cmd as KvCommand), JSON.stringify(cmd)).toMatchObject({ ok: false, code: 'invalid' });
    }
    expect(sm.revision).toBe(0);
  });

  it("attaches a put to a lease, compares a key's lease (0 for none), and refuses the whole transaction for an unknown lease", () => {
    const sm = new KvStateMachine();
    const granted = sm.apply(1, { op: 'lease-grant', ttl: 60 });
    if (!granted.ok || granted.op !== 'lease-grant') throw new Error('no lease');
    const lease = granted.id;
    expect(sm.apply(2, txn([], [{ put: { key: 'a', value: '1', lease } }]))).toMatchObject({ ok: true, succeeded: true });
    expect(sm.leases.leaseOf('a')).toBe(lease);
    expect(sm.apply(3, txn([{ key: 'a', target: 'lease', result: '==', value: lease }], []))).toMatchObject({ succeeded: true });
    expect(sm.apply(4, txn([{ key: 'b', target: 'lease', result: '==', value: 0 }], []))).toMatchObject({ succeeded: true });
    const before = sm.revision;
    expect(sm.apply(5, txn([], [put('c', '1'), { put: { key: 'd', value: '1', lease: 999 } }]))).toMatchObject({
      ok: false,
      code: 'lease-not-found',
    });
    expect(sm.get('c')).toBeUndefined(); // nothing of it was written
    expect(sm.revision).toBe(before);
    // A put without a lease detaches, as a plain put does.
    sm.apply(6, txn([], [put('a', '2')]));
    expect(sm.leases.leaseOf('a')).toBe(0);
  });

  it('applies a stamped transaction once and answers a retry with the first answer, across a snapshot', () => {
    const sm = new KvStateMachine();
    const cmd: KvCommand = {
      op: 'txn',
      compare: [{ key: 'c', target: 'version', result: '==', value: 0 }],
      success: [put('c', '1')],
      failure: [{ get: { key: 'c' } }],
      stamp: { client: 'cl', seq: 1 },
    };
    const first = sm.apply(1, cmd);
    expect(first).toMatchObject({ succeeded: true, revision: 1 });
    const restored = new KvStateMachine(DEFAULT_KV_LIMITS, decodeState(encodeState(sm.snapshot())));
    expect(restored.apply(2, cmd)).toEqual(first);
    expect(restored.revision).toBe(1);
    expect(decodeCommand(encodeCommand(cmd))).toEqual(cmd);
  });

  it("keeps a stamped transaction's answer for a retry only while it fits one storage row; a bigger one becomes a note, applied once", () => {
    const sm = new KvStateMachine();
    const value = 'v'.repeat(DEFAULT_KV_LIMITS.valueBytesMax);
    sm.apply(1, { op: 'put', pairs: [['big/a', value]] });
    sm.apply(2, { op: 'put', pairs: [['big/b', value]] });
    // Reads two 1 MiB values and writes one key: an answer of over 2 MB.
    const cmd: KvCommand = {
      op: 'txn',
      compare: [],
      success: [{ get: { prefix: 'big/' } }, put('w', '1')],
      failure: [],
      stamp: { client: 'cl', seq: 1 },
    };
    const first = sm.apply(3, cmd);
    expect(first).toMatchObject({ ok: true, succeeded: true, revision: 3 });
    expect(JSON.stringify(first).length).toBeGreaterThan(STORAGE_ROW_BYTES_MAX);
    const kept = sm.snapshot().sessions.find(([client]) => client === 'cl')![1].result;
    expect(kept).toMatchObject({ ok: false, code: 'session-expired', revision: 3 });
    expect(JSON.stringify(kept).length).toBeLessThan(1000);
    // The retry is answered with the note, and applies nothing again.
    expect(sm.apply(4, cmd)).toEqual(kept);
    expect(sm.revision).toBe(3);
    // A small answer is kept whole.
    const small: KvCommand = { ...cmd, success: [{ get: { key: 'w' } }], stamp: { client: 'cl', seq: 2 } };
    expect(sm.apply(5, small)).toEqual(sm.apply(6, small));
    expect(sm.apply(7, small)).toMatchObject({ ok: true, results: [{ get: { kvs: [['w', { value: '1' }]] } }] });
  });
});
