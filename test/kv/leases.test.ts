// Leases in the KV state machine: granted and revoked through the log, keys attached by puts and
// detached by puts without a lease and by deletes (etcd), a revoke deleting every attached key in
// one revision through the history, records under metcd's own keys rebuilt on restore, limits.

import { describe, expect, it } from 'vitest';
import { DEFAULT_KV_LIMITS, KvStateMachine } from '../../worker/kv/index.ts';
import type { KvCommand, KvResult } from '../../worker/kv/types.ts';
import { decodeCommand, decodeState, encodeCommand, encodeState } from '../../worker/kv/codec.ts';
import { validateCommand } from '../../worker/kv/validate.ts';
import { LEASE_TTL_MAX_SECONDS } from '../../worker/kv/leases.ts';

const grant = (ttl: number): KvCommand => ({ op: 'lease-grant', ttl });
const revoke = (id: number): KvCommand => ({ op: 'lease-revoke', id });
const put = (pairs: Array<[string, string]>, lease?: number): KvCommand =>
  lease === undefined ? { op: 'put', pairs } : { op: 'put', pairs, lease };
const restored = (sm: KvStateMachine) => new KvStateMachine(DEFAULT_KV_LIMITS, decodeState(encodeState(sm.snapshot())));

describe('leases in the state machine', () => {
  it('are granted with the index of their entry as id, taking a revision', () => {
    const sm = new KvStateMachine();
    expect(sm.apply(7, grant(10))).toEqual({ ok: true, op: 'lease-grant', revision: 1, id: 7, ttl: 10 });
    expect(sm.leases.get(7)).toEqual({ id: 7, ttl: 10, keys: [] });
    expect(sm.leases.size).toBe(1);
    expect(sm.size).toBe(0); // its records are metcd's own, no client key
    expect(sm.range({ limit: 10 })).toEqual([]);
  });

  it('hold the keys put with them; a put without the lease detaches, and so does a delete (etcd)', () => {
    const sm = new KvStateMachine();
    sm.apply(1, grant(10));
    sm.apply(
      2,
      put(
        [
          ['a', '1'],
          ['b', '1'],
        ],
        1,
      ),
    );
    expect(sm.leases.get(1)!.keys).toEqual(['a', 'b']);
    expect(sm.leases.leaseOf('a')).toBe(1);
    sm.apply(3, put([['a', '2']]));
    expect(sm.leases.leaseOf('a')).toBe(0);
    sm.apply(4, { op: 'delete', keys: ['b'] });
    expect(sm.leases.get(1)!.keys).toEqual([]);
    // Moving a key from one lease to another.
    sm.apply(5, grant(20));
    sm.apply(6, put([['c', '1']], 1));
    sm.apply(7, put([['c', '2']], 5));
    expect(sm.leases.get(1)!.keys).toEqual([]);
    expect(sm.leases.get(5)!.keys).toEqual(['c']);
  });

  it('refuse a put with an unknown lease, writing nothing', () => {
    const sm = new KvStateMachine();
    const r = sm.apply(1, put([['a', '1']], 99));
    expect(r).toMatchObject({ ok: false, code: 'lease-not-found', revision: 0 });
    expect(sm.get('a')).toBeUndefined();
    expect(sm.apply(2, revoke(99))).toMatchObject({ ok: false, code: 'lease-not-found' });
  });

  it('delete every attached key in ONE revision when revoked, seen by the history as ordinary deletes', () => {
    const sm = new KvStateMachine();
    sm.apply(1, grant(10));
    sm.apply(
      2,
      put(
        [
          ['a', '1'],
          ['b', '1'],
        ],
        1,
      ),
    );
    sm.apply(3, put([['c', '1']], 1));
    sm.apply(4, put([['keep', '1']]));
    const before = sm.revision;
    const r = sm.apply(5, revoke(1)) as Extract<KvResult, { op: 'delete' }>;
    expect(r).toEqual({ ok: true, op: 'delete', revision: before + 1, deleted: 3 });
    expect(['a', 'b', 'c'].map((k) => sm.get(k))).toEqual([undefined, undefined, undefined]);
    expect(sm.get('keep')?.value).toBe('1');
    expect(sm.leases.get(1)).toBeUndefined();
    const events = [...(sm.eventsFrom(r.revision) as Iterable<{ type: string; key: string; revision: number }>)];
    expect(events.map((e) => [e.type, e.key, e.revision])).toEqual([
      ['delete', 'a', r.revision],
      ['delete', 'b', r.revision],
      ['delete', 'c', r.revision],
    ]);
    expect(sm.getAt('a', r.revision - 1)).toMatchObject({ value: '1' });
    // A lease with no keys left is revoked at a revision of its own too.
    sm.apply(6, grant(10));
    expect(sm.apply(7, revoke(6))).toEqual({ ok: true, op: 'delete', revision: r.revision + 2, deleted: 0 });
  });

  it('are rebuilt from their records on restore, and the same commands answer alike afterwards', () => {
    const sm = new KvStateMachine();
    sm.apply(1, grant(10));
    sm.apply(2, grant(30));
    sm.apply(
      3,
      put(
        [
          ['a', '1'],
          ['b', '1'],
        ],
        1,
      ),
    );
    sm.apply(4, put([['c', '1']], 2));
    sm.apply(5, put([['b', '2']]));
    const copy = restored(sm);
    expect(copy.leases.get(1)).toEqual({ id: 1, ttl: 10, keys: ['a'] });
    expect(copy.leases.get(2)).toEqual({ id: 2, ttl: 30, keys: ['c'] });
    expect([...copy.leases.ttls()].sort()).toEqual([...sm.leases.ttls()].sort());
    expect(copy.apply(6, revoke(1))).toEqual(sm.apply(6, revoke(1)));
    expect(copy.snapshot()).toEqual(sm.snapshot());
  });

  it('refuse a restore whose attachment names a missing lease (corrupt state)', () => {
    const sm = new KvStateMachine();
    sm.apply(1, grant(10));
    sm.apply(2, put([['a', '1']], 1));
    const state = sm.snapshot();
    state.records = state.records.filter(([k]) => !k.startsWith('\u0001lease/'));
    expect(() => new KvStateMachine(DEFAULT_KV_LIMITS, state)).toThrow(/lease 1, which does not exist/);
  });

  it('are bounded: leasesMax, leaseKeysMax, ttl 1..LEASE_TTL_MAX_SECONDS', () => {
    const sm = new KvStateMachine({ ...DEFAULT_KV_LIMITS, leasesMax: 2, leaseKeysMax: 2 });
    sm.apply(1, grant(10));
    sm.apply(2, grant(10));
    expect(sm.apply(3, grant(10))).toMatchObject({ ok: false, code: 'invalid', message: expect.stringMatching(/2 leases, its limit/) });
    expect(
      sm.apply(
        4,
        put(
          [
            ['a', '1'],
            ['b', '1'],
          ],
          1,
        ),
      ),
    ).toMatchObject({ ok: true });
    expect(sm.apply(5, put([['a', '2']], 1))).toMatchObject({ ok: true }); // already attached: no growth
    expect(sm.apply(6, put([['c', '1']], 1))).toMatchObject({ ok: false, code: 'invalid', message: expect.stringMatching(/3 keys/) });
    expect(sm.get('c')).toBeUndefined();
    for (const ttl of [0, -1, 1.5, LEASE_TTL_MAX_SECONDS + 1, '10']) {
      expect(validateCommand({ op: 'lease-grant', ttl }, DEFAULT_KV_LIMITS).ok).toBe(false);
    }
    expect(validateCommand(grant(LEASE_TTL_MAX_SECONDS), DEFAULT_KV_LIMITS).ok).toBe(true);
    expect(validateCommand(grant(1), DEFAULT_KV_LIMITS).ok).toBe(true);
    expect(validateCommand({ op: 'lease-grant', ttl: 5, stamp: { client: 'c', seq: 1 } }, DEFAULT_KV_LIMITS).ok).toBe(false);
    expect(validateCommand({ op: 'lease-revoke', id: 0 }, DEFAULT_KV_LIMITS).ok).toBe(false);
    expect(validateCommand({ op: 'put', pairs: [['a', '1']], lease: -3 }, DEFAULT_KV_LIMITS).ok).toBe(false);
    expect(() => new KvStateMachine({ ...DEFAULT_KV_LIMITS, leasesMax: 0 })).toThrow(RangeError);
    // Refused in apply as well (a bad entry that reached the log).
    expect(sm.apply(7, { op: 'lease-grant', ttl: 0 })).toMatchObject({ ok: false, code: 'invalid' });
  });

  it("count against the granting API token's quota (leasesPerOwnerMax), freed by a revoke, rebuilt on restore", () => {
    const A = 'aaaaaaaaaaaaaaaa';
    const B = 'bbbbbbbbbbbbbbbb';
    const owned = (ttl: number, owner: string): KvCommand => ({ op: 'lease-grant', ttl, owner });
    const limits = { ...DEFAULT_KV_LIMITS, leasesPerOwnerMax: 2 };
    const sm = new KvStateMachine(limits);
    expect(sm.apply(1, owned(10, A))).toMatchObject({ ok: true, id: 1 });
    expect(sm.apply(2, owned(10, A))).toMatchObject({ ok: true, id: 2 });
    expect(sm.apply(3, owned(10, A))).toMatchObject({
      ok: false,
      code: 'invalid',
      message: expect.stringMatching(/token a{16} holds 2 leases/),
    });
    // Another token, and the root token (no owner), are not held back by A's quota.
    expect(sm.apply(4, owned(10, B))).toMatchObject({ ok: true });
    expect(sm.apply(5, grant(10))).toMatchObject({ ok: true });
    expect(sm.apply(6, grant(10))).toMatchObject({ ok: true });
    // The quota survives a restore (the owner is in the lease's record)...
    const copy = new KvStateMachine(limits, decodeState(encodeState(sm.snapshot())));
    expect(copy.apply(7, owned(10, A))).toMatchObject({ ok: false, code: 'invalid' });
    // ...and a revoke frees a place.
    expect(copy.apply(8, revoke(1))).toMatchObject({ ok: true });
    expect(copy.apply(9, owned(10, A))).toMatchObject({ ok: true, id: 9 });
    for (const owner of ['', 'A'.repeat(16), 'a'.repeat(15), 42]) {
      expect(validateCommand({ op: 'lease-grant', ttl: 5, owner }, DEFAULT_KV_LIMITS).ok, String(owner)).toBe(false);
    }
    const bytes = encodeCommand(owned(5, A));
    expect(decodeCommand(bytes)).toEqual(owned(5, A));
    // A malformed owner in a stored record is corrupt state.
    const state = sm.snapshot();
    state.records = state.records.map(([k, r]) =>
      k.startsWith('\u0001lease/') ? [k, { ...r, value: `${r.value.split(',')[0]},XYZ` }] : [k, r],
    );
    expect(() => new KvStateMachine(limits, state)).toThrow(/malformed/);
  });

  it('travel through the codec: lease commands and puts with a lease as JSON, puts without in binary', () => {
    for (const cmd of [
      grant(5),
      revoke(3),
      put([['a', '1']], 3),
      { ...put([['a', '1']], 3), stamp: { client: 'c', seq: 2 } },
    ] as KvCommand[]) {
      const bytes = encodeCommand(cmd);
      expect(bytes[0]).toBe(2);
      expect(decodeCommand(bytes)).toEqual(cmd);
    }
    expect(encodeCommand(put([['a', '1']]))[0]).toBe(1);
    // A put's lease 0 is "none": dropped by validation, so the put stays binary.
    const v = validateCommand({ op: 'put', pairs: [['a', '1']], lease: 0 }, DEFAULT_KV_LIMITS);
    expect(v.ok && v.cmd).toEqual({ op: 'put', pairs: [['a', '1']] });
  });

  it('keep a stamped put refused for its lease in the session, through a snapshot', () => {
    const sm = new KvStateMachine();
    const cmd: KvCommand = { op: 'put', pairs: [['a', '1']], lease: 42, stamp: { client: 'c', seq: 1 } };
    const first = sm.apply(1, cmd);
    expect(first).toMatchObject({ code: 'lease-not-found' });
    const copy = restored(sm);
    expect(copy.apply(2, cmd)).toEqual(first);
  });
});
