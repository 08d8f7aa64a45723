// The scale phase's pure parts (scale.ts): reading VmRSS and du, the table, and the verdicts on
// issue 14's targets (only for the engines they name, INVALID runs never meet them, a run below
// 1 M keys says it is indicative only).

import { describe, expect, it } from 'vitest';
import { SCALE_TARGETS, scaleLines, scaleVerdicts, type ScaleResult } from './scale.ts';
import { parseDuBytes, parseProcMemoryBytes, scaleKey, scaleValue } from './scale-common.ts';
import type { ScaleReadsResult } from './scale-reads.ts';

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
    rssBytes: [450e6, 460e6, 470e6],
    rssSettledBytes: [250e6, 260e6, 270e6],
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

  it('the largest node once settled decides RSS; the median decides restart; the bounds are inclusive', () => {
    const [rss, restart] = scaleVerdicts([
      result('metcd/sqlite', {
        rssSettledBytes: [100e6, SCALE_TARGETS.rssPerNodeBytesMax + 1, 100e6],
        restartMedianMs: SCALE_TARGETS.restartMsMax,
      }),
    ]);
    expect(rss!.reached).toBe(false);
    expect(rss!.detail).toMatch(/^max 300 MB \(470 at the load's end\)/);
    // The load's end alone does not decide: a node over the bound then, under it once settled, meets it.
    const [settled] = scaleVerdicts([result('metcd/sqlite', { rssBytes: [900e6, 900e6, 900e6] })]);
    expect(settled!.reached).toBe(true);
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

function reads(ratio: number, problems: string[] = []): ScaleReadsResult {
  const rate = (readsPerS: number) => ({ reads: 200_000, ms: 200_000_000 / readsPerS, readsPerS, checked: 12_500, clientCores: 0.4 });
  return {
    zipf: rate(10_000 * ratio),
    hot: rate(10_000),
    ratio,
    clients: 64,
    cache: [
      {
        id: 'n1',
        cache: {
          capacityBytes: 1e8,
          bytes: 9e7,
          entries: 7e5,
          hits: 90,
          misses: 10,
          missesOffLoop: 0,
          hitRate: 0.9,
          evictions: 5,
          pending: 0,
        },
      },
    ],
    zipfLeaderHitRate: 0.85,
    problems,
  };
}

describe('scale phase: the Zipfian read verdict', () => {
  const TEN_PERCENT = 10_000_000 * 100 * 0.1;
  const at10M = { keys: 10_000_000, cacheBytes: TEN_PERCENT };
  const zipfOf = (r: ScaleResult) => scaleVerdicts([r]).find((v) => v.target.includes('Zipfian'));

  it('judged only with a cache budget passed: without, "not judged" (null), the ratio still shown', () => {
    const v = zipfOf(result('metcd/sqlite', { reads: reads(0.3) }))!;
    expect(v.reached).toBeNull();
    expect(v.detail).toBe('not judged (no cache flag): zipf/hot 0.30');
  });

  it('≥ 0.5 is met (inclusive), below is MISSED; no caveat at 10 M keys and a 10% cache', () => {
    const met = zipfOf(result('metcd/leveldb', { ...at10M, reads: reads(0.5) }))!;
    expect(met.reached).toBe(true);
    expect(met.detail).toBe('zipf/hot 0.50');
    expect(zipfOf(result('metcd/leveldb', { ...at10M, reads: reads(0.49) }))!.reached).toBe(false);
  });

  it('a wrong value read, an INVALID load or failed reads meet nothing', () => {
    const wrong = zipfOf(result('metcd/sqlite', { ...at10M, reads: reads(0.9, ['1 of 12500 checked reads answered a wrong value']) }))!;
    expect(wrong.reached).toBe(false);
    expect(wrong.detail).toMatch(/INVALID/);
    expect(zipfOf(result('metcd/sqlite', { ...at10M, reads: reads(0.9), problems: ['x'] }))!.reached).toBe(false);
    const failed = zipfOf(result('metcd/sqlite', { ...at10M, readsError: 'read scale/1: HTTP 503\nmore' }))!;
    expect(failed.reached).toBe(false);
    expect(failed.detail).toBe('the reads failed: read scale/1: HTTP 503');
  });

  it('a smaller run or another cache size says so; etcd and memory are never judged; no reads, no verdict', () => {
    const small = zipfOf(result('metcd/sqlite', { keys: 100_000, cacheBytes: 2_000_000, reads: reads(0.7) }))!;
    expect(small.reached).toBe(true);
    expect(small.detail).toMatch(/at 100000 keys, not the target's 10000000: indicative only; a 20\.0% cache, not 10%/);
    expect(scaleVerdicts([result('etcd', { reads: reads(0.1) }), result('metcd/memory', { reads: reads(0.1) })])).toEqual([]);
    expect(zipfOf(result('metcd/sqlite'))).toBeUndefined();
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

  it('the reads and join tables: n/a for a cache not reported, none for no budget, a failed join says so', () => {
    const noCache = { ...reads(0.8), cache: [{ id: 'n1', cache: null }], zipfLeaderHitRate: null };
    const join = {
      member: 'n4',
      joinMs: 2390,
      targetIndex: 104,
      leaderSnapshotIndex: 101,
      peakRssBytes: 289e6,
      maxSampledRssBytes: 275e6,
      rssSamples: 24,
      diskBytes: 24e6,
    };
    const lines = scaleLines([
      result('metcd/sqlite', { cacheBytes: 1e6, reads: reads(0.5), join }),
      result('metcd/leveldb', { reads: noCache, joinError: 'n4 did not catch up\nlog' }),
    ]);
    expect(lines.find((l) => l.startsWith('metcd/sqlite') && l.includes('0.50'))).toMatch(
      /^metcd\/sqlite +1\.0 +5000 +10000 +0\.50 +0\.40\/0\.40 +0\.85 0\.90$/,
    );
    expect(lines.find((l) => l.startsWith('metcd/leveldb') && l.includes('0.80'))).toMatch(/none .* n\/a n\/a$/);
    expect(lines.find((l) => l.startsWith('metcd/sqlite') && l.includes('101 / 104'))).toMatch(/2\.39 +101 \/ 104 +289 +275 +24$/);
    expect(lines.at(-1)).toBe('metcd/leveldb   FAILED: n4 did not catch up');
  });

  it('a side that failed is a row saying so, and retried batches are shown', () => {
    const lines = scaleLines([result('etcd', { loadRetries: 3 })], [{ label: 'metcd/memory', error: 'HTTP 503\nmore' }]);
    expect(lines.find((l) => l.startsWith('etcd'))).toMatch(/3 load batches retried/);
    expect(lines.at(-1)).toBe('metcd/memory    FAILED: HTTP 503');
  });
});
