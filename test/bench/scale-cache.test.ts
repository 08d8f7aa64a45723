// The scale phase's cache budget (scale-cache.ts): the bytes a percentage gives, that only the
// cached engines get the flag, how a node's --help says it takes it, and reading /status's cache.

import { describe, expect, it } from 'vitest';
import { cacheArgs, cacheBytesFor, cacheOf, helpHasCacheFlag } from './scale-cache.ts';

describe('scale phase: cache budget', () => {
  it("P% of keys × value bytes: the issue's 10% of 10 M × 100 B is 100 MB", () => {
    expect(cacheBytesFor(10_000_000, 100, 10)).toBe(100_000_000);
    expect(cacheBytesFor(100_000, 100, 10)).toBe(1_000_000);
    expect(cacheBytesFor(3, 100, 1)).toBe(3);
    expect(cacheBytesFor(1, 1, 1)).toBe(1); // never 0, which a node might read as "no cache"
    expect(() => cacheBytesFor(1000, 100, 0)).toThrow(RangeError);
    expect(() => cacheBytesFor(1000, 100, 101)).toThrow(RangeError);
  });

  it('sqlite and leveldb get --cache-bytes; memory never; no budget, no flag', () => {
    expect(cacheArgs('sqlite', 1_000_000)).toEqual(['--cache-bytes', '1000000']);
    expect(cacheArgs('leveldb', 5)).toEqual(['--cache-bytes', '5']);
    expect(cacheArgs('memory', 1_000_000)).toEqual([]);
    expect(cacheArgs('sqlite', null)).toEqual([]);
  });

  it("the flag is taken when the node's help lists it as a flag, not when the text only mentions it", () => {
    const help = 'flags:\n  --quota-bytes <value>           space quota\n  --cache-bytes <value>           memory for hot keys\n';
    expect(helpHasCacheFlag(help)).toBe(true);
    expect(helpHasCacheFlag('flags:\n  --quota-bytes <value>   the state is held in memory (see --cache-bytes-to-come)\n')).toBe(false);
    expect(helpHasCacheFlag('flags:\n  --quota-bytes <value>\n')).toBe(false);
    expect(helpHasCacheFlag('flags:\n  --cache-bytes-max <value>   another flag\n')).toBe(false);
  });

  it('a /status cache object is read; absent is null; a malformed one is an error, not a number', () => {
    const cache = { capacityBytes: 100, bytes: 50, entries: 3, hits: 9, misses: 1, hitRate: 0.9, evictions: 2, pending: 0 };
    expect(cacheOf({ id: 'n1', cache })).toEqual(cache);
    expect(cacheOf({ id: 'n1' })).toBeNull();
    expect(cacheOf({ id: 'n1', cache: null })).toBeNull();
    expect(cacheOf({ cache: { ...cache, hits: 0, misses: 0, hitRate: null } })!.hitRate).toBeNull(); // no read yet
    expect(() => cacheOf({ cache: { ...cache, hitRate: '0.9' } })).toThrow(/hitRate is neither/);
    expect(() => cacheOf({ cache: 5 })).toThrow(/not an object/);
  });
});
