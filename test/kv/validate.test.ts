import { describe, expect, it } from 'vitest';
import { DEFAULT_KV_LIMITS, validateCommand } from '../../worker/kv/index.ts';

describe('validateCommand', () => {
  it('accepts keys and values exactly at the limits, counted in UTF-8 bytes', () => {
    const key = 'é'.repeat(2048); // 4096 bytes
    const value = 'x'.repeat(1024 * 1024 - 4) + '😀'; // 1 MiB
    expect(validateCommand({ op: 'put', pairs: [[key, value]] }, DEFAULT_KV_LIMITS).ok).toBe(true);
    expect(validateCommand({ op: 'put', pairs: [[key + 'x', 'v']] }, DEFAULT_KV_LIMITS)).toMatchObject({ ok: false, code: 'too-large' });
    expect(validateCommand({ op: 'put', pairs: [['k', value + 'x']] }, DEFAULT_KV_LIMITS)).toMatchObject({ ok: false, code: 'too-large' });
  });

  it('bounds pairs per command and total command bytes', () => {
    const limits = { ...DEFAULT_KV_LIMITS, pairsPerCommandMax: 3 };
    const pairs = (n: number) => Array.from({ length: n }, (_, i): [string, string] => [`k${i}`, 'v']);
    expect(validateCommand({ op: 'put', pairs: pairs(3) }, limits).ok).toBe(true);
    expect(validateCommand({ op: 'put', pairs: pairs(4) }, limits)).toMatchObject({ code: 'too-large' });
    expect(validateCommand({ op: 'delete', keys: ['a', 'b', 'c', 'd'] }, limits)).toMatchObject({ code: 'too-large' });
    const twoBigValues = {
      op: 'put',
      pairs: [
        ['a', 'x'.repeat(1024 * 1024)],
        ['b', 'x'.repeat(1024 * 1024)],
      ],
    };
    expect(validateCommand(twoBigValues, DEFAULT_KV_LIMITS)).toMatchObject({
      code: 'too-large',
      message: expect.stringMatching(/command is \d+ bytes/),
    });
  });

  it('answers invalid, with a message, for malformed input', () => {
    const cases: unknown[] = [
      undefined,
      { op: 'put', pairs: [['a', 'b', 'c']] },
      { op: 'put', pairs: [['', 'v']] },
      { op: 'put', pairs: [['a\udfff', 'v']] },
      { op: 'put', pairs: [['a', 'v\ud800']] },
      { op: 'delete', keys: [1] },
      { op: 'delete', keys: [] },
      { op: 'put', pairs: [['a', 'v']], compare: { key: '', modRevision: 0 } },
      { op: 'put', pairs: [['a', 'v']], stamp: { client: 'x'.repeat(65), seq: 1 } },
      { op: 'put', pairs: [['a', 'v']], stamp: { client: 'ok', seq: 2 ** 53 } },
    ];
    for (const c of cases) {
      const r = validateCommand(c, DEFAULT_KV_LIMITS);
      expect(r, JSON.stringify(c)).toMatchObject({ ok: false, code: 'invalid', message: expect.any(String) });
    }
  });

  it('returns a clean copy without extra fields', () => {
    const input = { op: 'put', pairs: [['a', 'v']], extra: 1, stamp: { client: 'c', seq: 1, junk: true } };
    const r = validateCommand(input, DEFAULT_KV_LIMITS);
    expect(r).toEqual({ ok: true, cmd: { op: 'put', pairs: [['a', 'v']], stamp: { client: 'c', seq: 1 } } });
  });
});
