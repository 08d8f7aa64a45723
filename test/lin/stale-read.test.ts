import { describe, expect, it } from 'vitest';
import { checkStaleRead } from './stale-read.ts';
import type { KvOutput, Operation } from './history.ts';

function op(input: Operation['input'], output: KvOutput, call: number, ret: number): Operation {
  return { client: 1, input, output, call, ret: output.kind === 'unknown' ? Infinity : ret };
}
const put = (key: string, value: string, out: KvOutput, call: number, ret: number) => op({ op: 'put', key, value }, out, call, ret);
const read = (key: string, value: string | null, modRevision: number, call: number, ret: number) =>
  op({ op: 'get', key }, { kind: 'get', value, modRevision }, call, ret);

describe('checkStaleRead', () => {
  const writes = [
    put('a', '1', { kind: 'put', revision: 1 }, 0, 1),
    put('a', '2', { kind: 'put', revision: 4 }, 10, 11),
    put('a', 'lost', { kind: 'unknown' }, 20, Infinity),
    op({ op: 'cas', key: 'a', expectModRevision: 9, value: 'nope' }, { kind: 'cas', ok: false, revision: 6 }, 30, 31),
    op({ op: 'cas', key: 'b', expectModRevision: 0, value: 'b1' }, { kind: 'cas', ok: true, revision: 7 }, 30, 31),
  ];

  it('accepts old values, null, and values of writes still in flight', () => {
    expect(checkStaleRead(writes, [read('a', '1', 1, 50, 51), read('a', null, 0, 50, 51), read('b', 'b1', 7, 40, 41)])).toEqual({
      result: 'ok',
    });
    // A write called before the read returned may have been applied by then.
    expect(checkStaleRead(writes, [read('a', '2', 4, 5, 10), read('a', 'lost', 9, 25, 26)])).toEqual({ result: 'ok' });
  });

  it('rejects an invented value, and the value of a CAS that failed', () => {
    expect(checkStaleRead(writes, [read('a', 'invented', 3, 50, 51)])).toMatchObject({ result: 'illegal', key: 'a' });
    expect(checkStaleRead(writes, [read('a', 'nope', 8, 50, 51)]).result).toBe('illegal');
    expect(checkStaleRead(writes, [read('b', '1', 1, 50, 51)]).result).toBe('illegal');
  });

  it('rejects a value from the future', () => {
    expect(checkStaleRead(writes, [read('a', '2', 4, 2, 3)]).result).toBe('illegal');
  });

  it('rejects a value paired with the revision of another write', () => {
    expect(checkStaleRead(writes, [read('a', '2', 1, 50, 51)]).result).toBe('illegal');
    expect(checkStaleRead(writes, [read('a', null, 4, 50, 51)]).result).toBe('illegal');
    expect(checkStaleRead(writes, [read('a', '1', 0, 50, 51)]).result).toBe('illegal');
  });
});
