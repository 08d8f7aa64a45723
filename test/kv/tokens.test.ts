// API tokens in the KV state machine: commands in the log, records under metcd's own keys that no
// client command or read reaches, an index rebuilt on restore, the same answers on every replica.

import { describe, expect, it } from 'vitest';
import { DEFAULT_KV_LIMITS, KvStateMachine } from '../../worker/kv/index.ts';
import type { KvCommand, TokenRecord } from '../../worker/kv/types.ts';
import { decodeCommand, decodeState, encodeCommand, encodeState } from '../../worker/kv/codec.ts';
import { validateCommand } from '../../worker/kv/validate.ts';

const hashOf = (n: number) => n.toString(16).padStart(64, '0');
const token = (n: number, over: Partial<TokenRecord> = {}): TokenRecord => ({
  id: n.toString(16).padStart(16, '0'),
  name: `t${n}`,
  hash: hashOf(n),
  rules: [{ prefix: 'app/', access: 'read' }],
  admin: false,
  status: false,
  expiresAt: null,
  createdAt: 1,
  ...over,
});
const putToken = (t: TokenRecord): KvCommand => ({ op: 'token-put', token: t });
const deleteToken = (id: string): KvCommand => ({ op: 'token-delete', id });

describe('tokens in the state machine', () => {
  it('are created and revoked as writes (one revision each), and found by the digest of their secret', () => {
    const sm = new KvStateMachine();
    sm.apply(1, { op: 'put', pairs: [['a', '1']] });
    expect(sm.apply(2, putToken(token(1)))).toEqual({ ok: true, op: 'put', revision: 2 });
    expect(sm.tokens.byHash(hashOf(1))).toEqual(token(1));
    expect(sm.tokens.get(token(1).id)?.name).toBe('t1');
    expect(sm.tokens.list().map((t) => t.id)).toEqual([token(1).id]);
    expect(sm.apply(3, deleteToken(token(1).id))).toEqual({ ok: true, op: 'delete', revision: 3, deleted: 1 });
    expect(sm.apply(4, deleteToken(token(1).id))).toEqual({ ok: true, op: 'delete', revision: 3, deleted: 0 });
    expect(sm.tokens.byHash(hashOf(1))).toBeUndefined();
  });

  it('are invisible to client reads and counts, and client commands cannot touch their keys', () => {
    const sm = new KvStateMachine();
    sm.apply(1, putToken(token(1)));
    sm.apply(2, { op: 'put', pairs: [['b', '1']] });
    expect(sm.size).toBe(1);
    expect(sm.range({ limit: 100 }).map(([k]) => k)).toEqual(['b']);
    expect(sm.range({ prefix: '\u0001', limit: 100 })).toEqual([]);
    const internal = `\u0001auth/token/${token(1).id}`;
    expect(sm.get(internal)).toBeUndefined(); // the record (with the secret's digest) is there, unreadable
    expect(sm.getAt(internal, sm.revision)).toBeUndefined();
    let index = 2;
    for (const cmd of [
      { op: 'put', pairs: [[internal, '{}']] },
      { op: 'delete', keys: [internal] },
      { op: 'put', pairs: [['x', '1']], compare: { key: internal, modRevision: 1 } },
    ] as KvCommand[]) {
      expect(validateCommand(cmd, DEFAULT_KV_LIMITS).ok).toBe(false);
      expect(sm.apply(++index, cmd)).toMatchObject({ ok: false, code: 'invalid' });
    }
    expect(sm.tokens.size).toBe(1);
  });

  it('refuse a second token with the same id or secret, one past tokensMax, and malformed ones, alike on every replica', () => {
    const sm = new KvStateMachine({ ...DEFAULT_KV_LIMITS, tokensMax: 2 });
    sm.apply(1, putToken(token(1)));
    expect(sm.apply(2, putToken(token(1, { hash: hashOf(9) })))).toMatchObject({ ok: false, code: 'invalid' });
    expect(sm.apply(3, putToken(token(9, { hash: hashOf(1) })))).toMatchObject({ ok: false, code: 'invalid' });
    sm.apply(4, putToken(token(2)));
    expect(sm.apply(5, putToken(token(3)))).toMatchObject({ ok: false, code: 'invalid', message: expect.stringContaining('limit') });
    const bad: Array<Partial<TokenRecord> | Record<string, unknown>> = [
      { id: 'XYZ' },
      { hash: 'short' },
      { name: '' },
      { name: 'tab\there' },
      { rules: [{ prefix: 'a', access: 'all' }] },
      { rules: [{ prefix: '\u0001auth/', access: 'read' }] },
      { rules: 'everything' },
      { admin: 'yes' },
      { expiresAt: 0 },
      { createdAt: -1 },
    ];
    for (const over of bad) {
      const cmd = putToken(token(7, over as Partial<TokenRecord>));
      expect(validateCommand(cmd, DEFAULT_KV_LIMITS).ok, JSON.stringify(over)).toBe(false);
    }
    expect(
      validateCommand({ op: 'token-put', token: token(7), stamp: { client: 'c', seq: 1 } } as unknown as KvCommand, DEFAULT_KV_LIMITS).ok,
    ).toBe(false);
    expect(sm.tokens.size).toBe(2);
  });

  it('survive a snapshot and a restore (the index is rebuilt from the records), and extra fields never reach the state', () => {
    const sm = new KvStateMachine();
    sm.apply(1, putToken({ ...token(1), extra: 'dropped' } as TokenRecord));
    sm.apply(2, putToken(token(2, { admin: true, expiresAt: 99 })));
    sm.apply(3, deleteToken(token(1).id));
    const restored = new KvStateMachine(DEFAULT_KV_LIMITS, decodeState(encodeState(sm.snapshot())));
    expect(restored.tokens.list()).toEqual([token(2, { admin: true, expiresAt: 99 })]);
    expect(restored.size).toBe(0);
    expect(restored.revision).toBe(sm.revision);
  });

  it('travel through the log as JSON commands that decode to the same command', () => {
    for (const cmd of [putToken(token(5)), deleteToken(token(5).id)]) {
      const bytes = encodeCommand(cmd);
      expect(bytes[0]).toBe(2);
      expect(decodeCommand(bytes)).toEqual(cmd);
    }
    expect(() => decodeCommand(new Uint8Array([2, 0x7b]))).toThrow(/not JSON/);
    expect(() => decodeCommand(new Uint8Array([2, ...new TextEncoder().encode('[1]')]))).toThrow(/object with a string op/);
  });
});
