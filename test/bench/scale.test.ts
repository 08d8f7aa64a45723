// The scale phase's pure parts (scale.ts): reading VmRSS and du, the table, and the verdicts on
// issue 14's targets (only for the engines they name, INVALID runs never meet them, a run below
// 1 M keys says it is indicative only).

import { describe, expect, it } from 'vitest';
import { SCALE_TARGETS, scaleLines, scaleVerdicts, type ScaleResult } from './scale.ts';
import { parseDuBytes, parseProcMemoryBytes, scaleKey, scaleValue } from './scale-common.ts';

const STATUS = `Name:\tnode
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 1234567 kB
VmSize:\t 1200000 kB
VmHWM:\t  900000 kB
VmRSS:\t  812345 kB
RssAnon:\t  800000 kB
Threads:\t11
`;

function result(label: string, n: Partial<ScaleResult> = {}): ScaleResult {
  return {
    label,
    keys: 1_000_000,
    valueBytes: 100,
    batchPairs: 1000,
    loadMs: 40_000,
    keysPerS: 25_000,
    loadRetries: 0,
    rssBytes: [250e6, 260e6, 270e6],
    diskBytes: [100e6, 110e6, 120e6],
    restartMs: [1500, 1700],
    restartMedianMs: 1600,
    cacheBytes: null,
    reads: null,
    readsError: null,
    join: null,
    joinError: null,
    problems: [],
    ...n,
  };
}

describe('scale phase: reading the system', () => {
  it('VmRSS in kB (KiB) to bytes, not VmHWM or RssAnon; VmHWM when asked', () => {
    expect(parseProcMemoryBytes(STATUS)).toBe(812_345 * 1024);
    expect(parseProcMemoryBytes(STATUS, 'VmHWM')).toBe(900_000 * 1024);
  });

  it('a status without VmRSS (a zombie) is an error, not zero', () => {
    expect(() => parseProcMemoryBytes('Name:\tnode\nState:\tZ (zombie)\n')).toThrow(/VmRSS/);
  });

  it('du -s -B1: the leading byte count', () => {
    expect(parseDuBytes('331776000\t/tmp/metcd-bench-sqlite-x/n1\n')).toBe(331_776_000);
    expect(() => parseDuBytes('du: cannot access')).toThrow(/du output/);
  });

  it('keys sort in load order and are the same bytes on both sides', () => {
    expect(scaleKey(7)).toBe('scale/000000007');
    expect(scaleKey(999_999) < scaleKey(1_000_000)).toBe(true);
  });

  it('values: the asked length, printable, the same for a key every time, different between keys', () => {
    const v = scaleValue(42, 100);
    expect(v).toHaveLength(100);
    expect(v).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(scaleValue(42, 100)).toBe(v);
    expect(scaleValue(43, 100)).not.toBe(v);
    expect(scaleValue(0, 7)).toHaveLength(7);
    // Not a repeated pattern a compressing engine would squeeze: most characters of the alphabet occur.
    expect(new Set(v).size).toBeGreaterThan(40);
  });
});

describe('scale phase: verdicts', () => {
  it('only sqlite and leveldb are held to the targets', () => {
    const v = scaleVerdicts([result('etcd'), result('metcd/memory'), result('metcd/sqlite'), result('metcd/leveldb')]);
    expect(v.map((x) => x.target.split(':')[0])).toEqual(['metcd/sqlite', 'metcd/sqlite', 'metcd/leveldb', 'metcd/leveldb']);
    expect(v.every((x) => x.reached)).toBe(true);
  });

  it('the largest node decides RSS; the median decides restart; the bounds are inclusive', () => {
    const [rss, restart] = scaleVerdicts([
      result('metcd/sqlite', {
        rssBytes: [100e6, SCALE_TARGETS.rssPerNodeBytesMax + 1, 100e6],
        restartMedianMs: SCALE_TARGETS.restartMsMax,
      }),
    ]);
    expect(rss!.reached).toBe(false);
    expect(rss!.detail).toMatch(/^max 300 MB/);
    expect(restart!.reached).toBe(true);
    const [, slow] = scaleVerdicts([result('metcd/leveldb', { restartMs: [1000, 12_000], restartMedianMs: 6500 })]);
    expect(slow!.reached).toBe(false);
    expect(slow!.detail).toBe('median 6.50 s');
  });

  it('an INVALID run meets nothing, and a small run says it is indicative only', () => {
    const [rss, restart] = scaleVerdicts([result('metcd/leveldb', { problems: ['a key was missing'] })]);
    expect(rss!.reached).toBe(false);
    expect(restart!.reached).toBe(false);
    expect(restart!.detail).toMatch(/INVALID/);
    const [small] = scaleVerdicts([result('metcd/sqlite', { keys: 100_000 })]);
    expect(small!.detail).toMatch(/at 100000 keys.*indicative only/);
  });
});

describe('scale phase: table', () => {
  it('RSS as min–max per node and disk summed over the three nodes', () => {
    const lines = scaleLines([result('metcd/sqlite')]);
    const row = lines.find((l) => l.startsWith('metcd/sqlite'))!;
    expect(row).toMatch(/250–270/);
    expect(row).toMatch(/1\.60 +1\.50 1\.70/);
    expect(row).toMatch(/0\.33$/);
    expect(scaleLines([])).toEqual([]);
  });

  it('a side that failed is a row saying so, and retried batches are shown', () => {
    const lines = scaleLines([result('etcd', { loadRetries: 3 })], [{ label: 'metcd/memory', error: 'HTTP 503\nmore' }]);
    expect(lines.find((l) => l.startsWith('etcd'))).toMatch(/3 load batches retried/);
    expect(lines.at(-1)).toBe('metcd/memory    FAILED: HTTP 503');
  });
});
