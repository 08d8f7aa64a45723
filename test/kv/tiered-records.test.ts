// The tiered record store (worker/kv/tiered-records.ts) against the store in memory: the same
// random commands applied to a state machine over each must answer alike and leave the same
// state, with saves resolving at random points, views read in slices while writes go on, and
// restarts that read only what a tiered engine keeps (the disk, the sessions, the summary).
// The cache holds two records, so nearly every read goes to the disk. Two planted bugs show
// the checker catches a store that reads the disk before a save resolved, and one whose walks
// forget the overlay.

import { describe, expect, it } from 'vitest';
import { KvStateMachine } from '../../worker/kv/state-machine.ts';
import { TieredRecords, type RecordCache } from '../../worker/kv/tiered-records.ts';
import type { KeyRecord, KvChanges, KvCommand, KvLimits, SessionRecord } from '../../worker/kv/types.ts';
import { DEFAULT_KV_LIMITS } from '../../worker/kv/types.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import { MapDiskRecords } from '../support/map-disk.ts';
import { randomCommands, randomString } from './random-commands.ts';

/** A cache of a few records, oldest out first: small enough that reads keep missing. */
class TinyCache implements RecordCache {
  private readonly map = new Map<string, KeyRecord | null>();
  private readonly entries: number;
  constructor(entries: number) {
    this.entries = entries;
  }
  get(key: string): KeyRecord | null | undefined {
    return this.map.get(key);
  }
  peek(key: string): KeyRecord | null | undefined {
    return this.map.get(key);
  }
  set(key: string, value: KeyRecord | null): boolean {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.entries) this.map.delete(this.map.keys().next().value!);
    return true;
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
  stats() {
    return { entries: this.map.size, bytes: 0, capacityBytes: 0, evictions: 0 };
  }
}

type Bug = 'none' | 'durable-before-save' | 'walk-without-overlay';

class WalkWithoutOverlay extends TieredRecords {
  private readonly diskOnly: MapDiskRecords;
  constructor(diskOnly: MapDiskRecords, cache: RecordCache, summary: ConstructorParameters<typeof TieredRecords>[2]) {
    super(diskOnly, cache, summary);
    this.diskOnly = diskOnly;
  }
  override walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    this.diskOnly.walkFrom(from, visit);
  }
}

const LIMITS: KvLimits = { ...DEFAULT_KV_LIMITS, historyRetention: 40 };

/** What the runs exercised, so the test can tell the checker really saw restarts and views. */
const seen = { restarts: 0, views: 0, diskReads: 0 };

/** Runs one seed; returns the first difference between the two stores, or null. */
function divergence(seed: number, bug: Bug, steps = 700): string | null {
  const rnd = new SeededRandom(seed);
  const source = randomCommands(rnd, { keys: 12, clients: 3 });
  const disk = new MapDiskRecords();
  const sessions = new Map<string, SessionRecord>();
  const open = (summary = { records: 0, internalRecords: 0, bytes: 0 }, revision = 0) => {
    const store =
      bug === 'walk-without-overlay'
        ? new WalkWithoutOverlay(disk, new TinyCache(2), summary)
        : new TieredRecords(disk, new TinyCache(2), summary);
    const kv = new KvStateMachine(
      LIMITS,
      { revision, records: [], sessions: [...sessions].sort() },
      {
        store,
        summary,
      },
    );
    return { kv, store };
  };
  const mem = new KvStateMachine(LIMITS);
  let tier = open();
  let lastSummary = { records: 0, internalRecords: 0, bytes: 0 };
  const saving: Array<{ changes: KvChanges; batch: number }> = [];
  const resolveOldest = () => {
    const s = saving.shift()!;
    disk.applyChanges(s.changes);
    for (const [c, r] of s.changes.sessionUpserts) sessions.set(c, r);
    for (const c of s.changes.sessionDeletes) sessions.delete(c);
    lastSummary = s.changes.summary!;
    if (bug !== 'durable-before-save') tier.kv.changesDurable(s.batch);
  };
  const views: Array<{ mem: ReturnType<KvStateMachine['beginView']>; tier: ReturnType<KvStateMachine['beginView']> }> = [];
  const json = (x: unknown) => JSON.stringify(x);
  const closeBoth = (v: (typeof views)[number]) => {
    v.mem.close();
    v.tier.close();
  };
  const prefixes = ['', 'k', 'k1', 'k2', 'k1/', 'x'];

  for (let index = 1; index <= steps; index++) {
    const cmd = extraCommand(rnd, mem) ?? source.next(mem);
    const a = mem.apply(index, cmd);
    const b = tier.kv.apply(index, cmd);
    if (json(a) !== json(b)) return `index ${index} ${json(cmd)}: memory ${json(a)}, tiered ${json(b)}`;

    if (rnd.nextInt(3) === 0) {
      const changes = tier.kv.takeChanges();
      const batch = tier.kv.lastChangesBatch;
      if (bug === 'durable-before-save') tier.kv.changesDurable(batch);
      saving.push({ changes, batch });
    }
    while (saving.length > 0 && rnd.nextInt(3) === 0) resolveOldest();

    if (rnd.nextInt(4) === 0) {
      const key = `k${rnd.nextInt(12)}${rnd.nextInt(4) === 0 ? '/é' : ''}`;
      if (json(mem.get(key)) !== json(tier.kv.get(key)))
        return `index ${index}: get ${key}: ${json(mem.get(key))} vs ${json(tier.kv.get(key))}`;
      const prefix = prefixes[rnd.nextInt(prefixes.length)]!;
      const limit = 1 + rnd.nextInt(8);
      const start = rnd.nextInt(2) === 0 ? randomString(rnd, 2) : '';
      const ra = mem.range({ prefix, start, limit });
      const rb = tier.kv.range({ prefix, start, limit });
      if (json(ra) !== json(rb)) return `index ${index}: range ${prefix}/${start}/${limit}: ${json(ra)} vs ${json(rb)}`;
      const at = mem.compactedRevision + rnd.nextInt(mem.revision - mem.compactedRevision + 1);
      if (json(mem.rangeAt({ prefix, limit }, at)) !== json(tier.kv.rangeAt({ prefix, limit }, at))) return `index ${index}: rangeAt ${at}`;
      const from = mem.compactedRevision + rnd.nextInt(mem.revision - mem.compactedRevision + 2);
      if (json([...(mem.eventsFrom(from) as Iterable<unknown>)]) !== json([...(tier.kv.eventsFrom(from) as Iterable<unknown>)]))
        return `index ${index}: eventsFrom ${from}`;
    }
    if (rnd.nextInt(40) === 0) views.push({ mem: mem.beginView(), tier: tier.kv.beginView() });
    if (views.length > 0 && rnd.nextInt(10) === 0) {
      const v = views.shift()!;
      const slice = 1 + rnd.nextInt(5);
      const all = (view: typeof v.mem) => {
        const out: Array<[string, KeyRecord]> = [];
        while (!view.done) out.push(...view.next(slice));
        view.close();
        return out;
      };
      const va = all(v.mem);
      const vb = all(v.tier);
      if (json(va) !== json(vb) || v.mem.recordCount !== v.tier.recordCount) return `index ${index}: a view differs`;
      seen.views++;
    }
    if (rnd.nextInt(150) === 0) {
      // Restart: everything saved, then a state machine over the disk alone.
      saving.push({ changes: tier.kv.takeChanges(), batch: tier.kv.lastChangesBatch });
      while (saving.length > 0) resolveOldest();
      for (const v of views.splice(0)) closeBoth(v);
      tier = open(lastSummary, mem.revision);
      seen.restarts++;
      if (json(mem.snapshot()) !== json(tier.kv.snapshot())) return `index ${index}: the state after a restart differs`;
    }
  }
  if (json(mem.snapshot()) !== json(tier.kv.snapshot())) return 'the final state differs';
  for (const v of views) closeBoth(v);
  seen.diskReads += disk.counts.gets;
  if (disk.counts.openViews !== 0) return `${disk.counts.openViews} disk views left open`;
  return null;
}

/** Commands randomCommands does not make: transactions with ranges, leases, compaction. */
function extraCommand(rnd: SeededRandom, sm: KvStateMachine): KvCommand | null {
  const roll = rnd.nextInt(100);
  if (roll >= 30) return null;
  const key = () => `k${rnd.nextInt(12)}`;
  if (roll < 12) {
    const ops = [
      { get: { prefix: 'k1', limit: 1 + rnd.nextInt(4) } },
      rnd.nextInt(2) === 0 ? { delete: { prefix: `k${rnd.nextInt(3)}` } } : { delete: { key: key() } },
      { put: { key: key(), value: randomString(rnd, 5) } },
      { get: { key: key() } },
    ];
    return {
      op: 'txn',
      compare: [{ key: key(), target: 'version', result: rnd.nextInt(2) === 0 ? '>' : '==', value: rnd.nextInt(3) }],
      success: ops.slice(rnd.nextInt(4)),
      failure: ops.slice(0, rnd.nextInt(4)),
    } as KvCommand;
  }
  if (roll < 16) return { op: 'lease-grant', ttl: 10 + rnd.nextInt(50) };
  const leases = [...sm.leases.ttls()].map(([id]) => id);
  if (roll < 22 && leases.length > 0) return { op: 'put', pairs: [[key(), 'leased']], lease: leases[rnd.nextInt(leases.length)]! };
  if (roll < 25 && leases.length > 0) return { op: 'lease-revoke', id: leases[rnd.nextInt(leases.length)]! };
  if (roll < 28) return { op: 'compact', revision: Math.max(sm.compactedRevision, sm.revision - rnd.nextInt(10)) };
  return null;
}

describe('tiered record store', () => {
  it('answers and holds exactly what the memory store does, over many seeds', () => {
    for (let seed = 1; seed <= 60; seed++) expect(divergence(seed, 'none'), `seed ${seed}`).toBeNull();
    expect(seen.restarts).toBeGreaterThan(20);
    expect(seen.views).toBeGreaterThan(100);
    expect(seen.diskReads).toBeGreaterThan(10_000);
  });

  it('replays changes that span many pages of the store, the same as the memory store', () => {
    // 2,600 keys in three revisions (more than one 1,024-change page each), some overwritten, some
    // deleted, half of it saved and half still in the overlay.
    const disk = new MapDiskRecords();
    const summary = { records: 0, internalRecords: 0, bytes: 0 };
    const store = new TieredRecords(disk, new TinyCache(4), summary);
    const tier = new KvStateMachine(LIMITS, undefined, { store, summary });
    const mem = new KvStateMachine(LIMITS);
    const pairs = (from: number, n: number, v: string) =>
      Array.from({ length: n }, (_, i) => [`p${String(from + i).padStart(5, '0')}`, v] as [string, string]);
    const cmds: KvCommand[] = [
      { op: 'put', pairs: pairs(0, 1000, 'a') },
      { op: 'put', pairs: pairs(1000, 1000, 'b') },
      { op: 'put', pairs: pairs(500, 1000, 'c') },
      { op: 'delete', keys: pairs(900, 200, '').map(([k]) => k) },
      { op: 'put', pairs: pairs(2000, 600, 'd') },
    ];
    cmds.forEach((cmd, i) => {
      expect(tier.apply(i + 1, cmd)).toEqual(mem.apply(i + 1, cmd));
      if (i === 2) {
        disk.applyChanges(tier.takeChanges());
        tier.changesDurable(tier.lastChangesBatch);
      }
    });
    for (const from of [1, 2, 3, 4, 5, 6]) {
      const a = [...(mem.eventsFrom(from) as Iterable<unknown>)];
      expect([...(tier.eventsFrom(from) as Iterable<unknown>)]).toEqual(a);
    }
    expect([...(mem.eventsFrom(1) as Iterable<unknown>)].length).toBeGreaterThan(3000);
  });

  it('catches a store that reads the disk before the save resolved (planted bug)', () => {
    // Caught as answers that differ, or as the state machine refusing the state it reads (a
    // history record that should be there is not).
    const found = [1, 2, 3, 4, 5, 6].map((seed) => {
      try {
        return divergence(seed, 'durable-before-save');
      } catch (err) {
        return `threw: ${String(err)}`;
      }
    });
    expect(found.some((d) => d !== null)).toBe(true);
  });

  it('catches a store whose walks forget the unsaved changes (planted bug)', () => {
    const found = [1, 2, 3, 4, 5, 6].map((seed) => divergence(seed, 'walk-without-overlay'));
    expect(found.some((d) => d !== null)).toBe(true);
  });
});

describe('tiered record store: reads fetched off the loop (prefetch)', () => {
  const rec = (value: string, mod: number): KeyRecord => ({ value, createRevision: mod, modRevision: mod, version: 1 });
  /** A disk whose asynchronous reads are delivered when the test says (deliver()). */
  function laterDisk(records: Array<[string, KeyRecord]>) {
    const queued: Array<() => void> = [];
    const disk = new MapDiskRecords(
      records,
      () => {},
      (d) => queued.push(d),
    );
    const deliver = () => queued.splice(0).forEach((d) => d());
    return { disk, deliver };
  }
  const summaryOf = (n: number) => ({ records: n, internalRecords: 0, bytes: 0 });

  it('a fetched record is what the next get returns, counted as its miss, without a second disk read', async () => {
    const { disk, deliver } = laterDisk([['a', rec('a1', 1)]]);
    const store = new TieredRecords(disk, new TinyCache(4), summaryOf(1));
    const fetching = store.prefetch(['a', 'nothing']);
    expect(fetching).not.toBeNull();
    deliver();
    await fetching;
    expect(disk.counts.gets).toBe(2); // both read off the loop
    expect(store.get('a')).toEqual(rec('a1', 1));
    expect(store.get('nothing')).toBeUndefined();
    expect(disk.counts.gets).toBe(2); // and not again
    expect(store.tierCounts()).toMatchObject({ hits: 0, misses: 2, missesOffLoop: 2 });
    // Held now (the cache): nothing more to fetch.
    expect(store.prefetch(['a', 'nothing'])).toBeNull();
  });

  it('a fetch that a resolving save overtook is dropped: the get reads the disk as it is now', async () => {
    const { disk, deliver } = laterDisk([['a', rec('a1', 1)]]);
    const store = new TieredRecords(disk, new TinyCache(0), summaryOf(1));
    const fetching = store.prefetch(['a'])!; // reads a1 now, delivered later
    store.set('a', rec('a2', 2), rec('a1', 1));
    const batch = store.sealChanges();
    disk.applyChanges({ upserts: [['a', rec('a2', 2)]], deletes: [] });
    store.changesDurable(batch); // the cache of 0 keeps nothing: the overlay lets a2 go
    deliver();
    await fetching;
    expect(store.get('a')).toEqual(rec('a2', 2));
    expect(store.tierCounts()).toMatchObject({ misses: 1, missesOffLoop: 0 }); // the fetch was not used
  });

  it('a fetched record still held when a save resolves is dropped with the rest', async () => {
    const { disk, deliver } = laterDisk([['a', rec('a1', 1)]]);
    const store = new TieredRecords(disk, new TinyCache(0), summaryOf(1));
    const fetching = store.prefetch(['a'])!;
    deliver();
    await fetching; // landed before the save: held for the next get
    store.set('a', rec('a2', 2), rec('a1', 1));
    const batch = store.sealChanges();
    disk.applyChanges({ upserts: [['a', rec('a2', 2)]], deletes: [] });
    store.changesDurable(batch); // a save resolving drops what was fetched before it
    expect(store.get('a')).toEqual(rec('a2', 2));
  });

  it('no fetch for keys in memory, on a disk that reads only synchronously, or once pinned', () => {
    const sync = new MapDiskRecords([['a', rec('a1', 1)]]);
    expect(new TieredRecords(sync, new TinyCache(4), summaryOf(1)).prefetch(['a'])).toBeNull();
    const { disk } = laterDisk([['a', rec('a1', 1)]]);
    const store = new TieredRecords(disk, new TinyCache(4), summaryOf(1));
    store.set('b', rec('b2', 2), undefined);
    expect(store.prefetch(['b'])).toBeNull(); // the overlay holds it
    store.pin();
    expect(store.prefetch(['a'])).toBeNull();
    store.close();
  });
});

describe('tiered record store: absent keys and the cache', () => {
  const rec = (value: string, mod: number): KeyRecord => ({ value, createRevision: mod, modRevision: mod, version: 1 });
  /** A TinyCache that lists what was offered to it. */
  class OfferLog extends TinyCache {
    offered: string[] = [];
    override set(key: string, value: KeyRecord | null): boolean {
      this.offered.push(`${key}=${value === null ? 'none' : value.value}`);
      return super.set(key, value);
    }
  }

  it('a key only written is not offered to the cache, its absence nor its record; a key read is, and not read twice', () => {
    const disk = new MapDiskRecords([['a', rec('a1', 1)]]);
    const cache = new OfferLog(8);
    const store = new TieredRecords(disk, cache, { records: 1, internalRecords: 0, bytes: 0 });
    // A write of a new key: read (absent), then set. Its absence never reaches the cache.
    expect(store.get('new')).toBeUndefined();
    store.set('new', rec('n2', 2), undefined);
    expect(store.get('a')).toEqual(rec('a1', 1)); // a record found is offered at once
    expect(cache.offered).toEqual(['a=a1']);
    // A read of an absent key that no write follows: offered at the next read, of any key.
    expect(store.get('gone')).toBeUndefined();
    expect(cache.offered).toEqual(['a=a1']);
    const gets = disk.counts.gets;
    expect(store.get('gone')).toBeUndefined();
    expect(cache.offered).toEqual(['a=a1', 'gone=none']);
    expect(store.get('gone')).toBeUndefined();
    expect(disk.counts.gets).toBe(gets); // the cache answered both
    // Once durable, a written key goes to the cache if it was cached (read) when written: 'a'
    // and 'gone' (its absence was), not 'new', which only a write named.
    store.set('a', rec('a3', 3), rec('a1', 1));
    store.set('gone', rec('g3', 3), undefined);
    const batch = store.sealChanges();
    disk.applyChanges({
      upserts: [
        ['new', rec('n2', 2)],
        ['a', rec('a3', 3)],
        ['gone', rec('g3', 3)],
      ],
      deletes: [],
    });
    store.changesDurable(batch);
    expect(cache.offered).toEqual(['a=a1', 'gone=none', 'a=a3', 'gone=g3']);
    const before = disk.counts.gets;
    expect([store.get('a'), store.get('gone'), store.get('new')]).toEqual([rec('a3', 3), rec('g3', 3), rec('n2', 2)]);
    expect(disk.counts.gets).toBe(before + 1); // 'new' alone is read from the disk
  });
});

describe('tiered record store: recent durable changes', () => {
  const rec = (value: string, mod: number): KeyRecord => ({ value, createRevision: mod, modRevision: mod, version: 1 });
  const since = (store: TieredRecords, from: number): string[] => {
    const out: string[] = [];
    store.changedSince(from, (k, m) => out.push(`${k}@${m}`) > 0);
    return out;
  };

  it('a replay from after the store opened reads the changes it made durable, not the disk; older ones read the disk', () => {
    const disk = new MapDiskRecords([['old', rec('o', 3)]]);
    const store = new TieredRecords(disk, new TinyCache(0), { records: 1, internalRecords: 0, bytes: 0 });
    const save = (upserts: Array<[string, KeyRecord]>, deletes: string[] = []) => {
      for (const [k, r] of upserts) store.set(k, r, disk.get(k));
      for (const k of deletes) store.delete(k);
      const batch = store.sealChanges();
      disk.applyChanges({ upserts, deletes });
      store.changesDurable(batch);
    };
    save([['a', rec('a4', 4)]]); // the first listed: the list is whole from 5
    save([
      ['b', rec('b5', 5)],
      ['c', rec('c5', 5)],
    ]);
    save([['b', rec('b6', 6)]], ['c']);
    const before = disk.counts.changed;
    expect(since(store, 5)).toEqual(['b@6']); // c deleted, b changed again
    expect(since(store, 6)).toEqual(['b@6']);
    expect(disk.counts.changed).toBe(before); // from memory
    expect(since(store, 4)).toEqual(['a@4', 'b@6']); // below the list's floor: the disk
    expect(since(store, 0)).toEqual(['old@3', 'a@4', 'b@6']);
    expect(disk.counts.changed).toBe(before + 2);
  });
});
