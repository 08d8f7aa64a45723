// A streamed snapshot install on the tiered engines, sqlite and leveldb (SaveBatch.stage,
// installSnapshot.staged), on real databases: records staged over several saves (a reset discarding what came before it)
// become exactly the records at install, seen through the engine's DiskRecords (get, walkFrom,
// changedSince order) and after a reopen, with the staged summary and the snapshot's log,
// snapshot and applied index; a transfer cut short by a restart leaves the old records and an
// empty staging area; a view opened before the install keeps reading the old records while the
// swap happens (sqlite: and writes reuse the old table's pages; leveldb: while the old generation
// is cleared); the memory engine, without a staging area, refuses.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ClassicLevel } from 'classic-level';
import { SqliteEngine } from '../../node-runtime/storage/sqlite-engine.ts';
import { MemoryEngine } from '../../node-runtime/storage/memory-engine.ts';
import { LevelDbEngine } from '../../node-runtime/storage/leveldb-engine.ts';
import { SQLITE_FILE, STAGED_TABLE, SUMMARY_ROW } from '../../node-runtime/storage/sqlite-schema.ts';
import { readRecordSummary, unseal } from '../../node-runtime/storage/records.ts';
import { encodeKey } from '../../node-runtime/storage/sqlite-key.ts';
import { CHANGED_SQL, WALK_SQL } from '../../node-runtime/storage/sqlite-records.ts';
import { P_MOD, P_RECORD, P_STATE, genRange, strKey } from '../../node-runtime/storage/leveldb-layout.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { summarize } from '../../worker/kv/record-summary.ts';
import type { DiskRecords, DiskView } from '../../worker/kv/record-store.ts';
import type { KeyRecord, KvChanges, RecordSummary } from '../../worker/kv/types.ts';
import type { StorageEngine } from '../../node-runtime/storage/engine.ts';
import { STAGED_SESSION, entry, snapshotAt, spreadRecords, stagedInstall } from '../support/storage-batches.ts';

let dir: string;
let file: string;
const TIERED = ['sqlite', 'leveldb'] as const;
type Tiered = (typeof TIERED)[number];
let engineName: Tiered;
const open = (): Promise<SqliteEngine | LevelDbEngine> =>
  engineName === 'sqlite'
    ? SqliteEngine.open({ dir, log: silentLogger })
    : LevelDbEngine.open({ dir, log: silentLogger, keyFilterDelayMs: 0 });

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metcd-sqlite-staged-'));
  file = path.join(dir, SQLITE_FILE);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const rec = (value: string, mod: number): KeyRecord => ({ value, createRevision: mod, modRevision: mod, version: 1 });

function changes(revision: number, upserts: Array<[string, KeyRecord]>, deletes: string[] = []): KvChanges {
  return { revision, upserts, deletes, sessionUpserts: [], sessionDeletes: [] };
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Everything `disk` shows, as the three reads see it: get of every expected key (and of
 *  `absent`), a full walk, changedSince(0) in (modRevision, key) order. */
function shown(disk: Pick<DiskRecords, 'get' | 'walkFrom' | 'changedSince'>, keys: string[]) {
  const walk: Array<[string, KeyRecord]> = [];
  disk.walkFrom('', (k, r) => walk.push([k, r]) > 0);
  const changed: string[] = [];
  disk.changedSince(0, (k, mod) => changed.push(`${k}@${mod}`) > 0);
  const got = keys.map((k) => [k, disk.get(k) ?? null]);
  return { walk, changed, got };
}

/** What `shown` must give for exactly `want` (and `absent` not there). */
function expected(want: Array<[string, KeyRecord]>, absent: string[]) {
  const map = new Map(want);
  const walk = [...map].sort(([a], [b]) => byKey(a, b));
  const changed = [...map]
    .sort(([ka, a], [kb, b]) => a.modRevision - b.modRevision || byKey(ka, kb))
    .map(([k, r]) => `${k}@${r.modRevision}`);
  const got = [...[...map.keys()].map((k) => [k, map.get(k)!]), ...absent.map((k) => [k, null])];
  return { walk, changed, got };
}

const keysOf = (want: Array<[string, KeyRecord]>, absent: string[]): string[] => [...new Set(want.map(([k]) => k)), ...absent];

/** Reads the database directly (read-only): the staged row count, the summary row, and how
 *  the records' reads are served (the swapped-in table has its mod index). */
type InFile = { staged: number; summary: RecordSummary | null; plans?: string[] };

/** What the store holds beside the live records: its staged records and its summary (sqlite:
 *  and its query plans). `engine`, when open, has finished clearing an old generation first. */
async function inFile(engine?: SqliteEngine | LevelDbEngine): Promise<InFile> {
  if (engine instanceof LevelDbEngine) await engine.cleared();
  return engineName === 'sqlite' ? inSqliteFile() : inLevelDb();
}

/** Reads LevelDB through a handle of its own (the engine's may be open: multithreading).
 *  Staged: the other generation's records and index entries, which must agree. */
async function inLevelDb(): Promise<InFile> {
  const db = new ClassicLevel<Buffer, Buffer>(path.join(dir), { keyEncoding: 'buffer', valueEncoding: 'buffer', multithreading: true });
  await db.open({ createIfMissing: false });
  try {
    const genValue = await db.get(strKey(P_STATE, 'generation'));
    const gen = genValue === undefined ? 0 : unseal(genValue, (r) => r.uint());
    const count = async (prefix: number): Promise<number> => (await db.keys(genRange(prefix, gen === 0 ? 1 : 0)).all()).length;
    const staged = await count(P_RECORD);
    expect(await count(P_MOD)).toBe(staged);
    const summary = await db.get(strKey(P_STATE, 'summary'));
    return { staged, summary: summary === undefined ? null : unseal(summary, readRecordSummary) };
  } finally {
    await db.close();
  }
}

function inSqliteFile(): InFile {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const staged = (db.prepare(`SELECT count(*) AS n FROM ${STAGED_TABLE}`).get() as { n: number }).n;
    const row = db.prepare('SELECT value FROM state WHERE name = ?').get(SUMMARY_ROW) as { value: Uint8Array } | undefined;
    const plan = (sql: string, arg: Uint8Array | number) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(arg) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    const plans = [plan(WALK_SQL, encodeKey('a')), plan(CHANGED_SQL, 5)];
    return { staged, summary: row === undefined ? null : unseal(row.value, readRecordSummary), plans };
  } finally {
    db.close();
  }
}

const PLANS = ['SEARCH records USING PRIMARY KEY (k>?)', 'SEARCH records USING COVERING INDEX records_mod (mod>?)'];

/** The live state before the transfer: entries 1..12 (term 1), records old/* and shared/*. */
async function liveBefore(engine: StorageEngine): Promise<Array<[string, KeyRecord]>> {
  const old = [...spreadRecords('old', 40, 1), ...spreadRecords('shared', 10, 1)];
  const entries = Array.from({ length: 12 }, (_, i) => entry(i + 1, 1));
  await engine.save({ entries, hardState: { term: 1, vote: 'n1', commit: 12 } });
  await engine.save({ kv: { ...changes(12, old), summary: summarize(old) }, applied: 12 });
  return old;
}

describe.each(TIERED)('%s staged snapshot install', (name) => {
  beforeEach(() => {
    engineName = name;
  });
  const withPlans = (): { plans?: string[] } => (name === 'sqlite' ? { plans: PLANS } : {});

  it('records staged in several saves, a reset among them, become exactly the records; after a reopen too', async () => {
    const engine = await open();
    const disk = (await engine.load()).tier!.disk;
    const old = await liveBefore(engine);
    const absent = ['gone/0000', 'old/0000', 'nothing'];
    expect(shown(disk, keysOf(old, []))).toEqual(expected(old, []));

    // A transfer that a reset abandons: none of its records may survive.
    await engine.save({ stage: { reset: true, records: spreadRecords('gone', 30, 100) } });
    await engine.save({ stage: { reset: false, records: spreadRecords('shared', 10, 200) } });
    expect((await inFile(engine)).staged).toBe(40);
    // The live records are untouched by staging.
    expect(shown(disk, keysOf(old, []))).toEqual(expected(old, []));

    const chunkA = spreadRecords('new-a', 25, 5);
    const chunkB = [...spreadRecords('new-b', 25, 3), ...spreadRecords('shared', 5, 9)];
    const chunkC = spreadRecords('new-c', 25, 1); // arrives with the install
    const staged = [...chunkA, ...chunkB, ...chunkC];
    await engine.save({ stage: { reset: true, records: chunkA } });
    await engine.save({ stage: { reset: false, records: chunkB } });
    expect((await inFile(engine)).staged).toBe(55);
    await engine.save(stagedInstall(staged, { reset: false, records: chunkC }));

    const want = expected(staged, absent);
    expect(shown(disk, keysOf(staged, absent))).toEqual(want);
    expect(await inFile(engine)).toEqual({ staged: 0, summary: summarize(staged), ...withPlans() });
    const loaded = await engine.load();
    expect(loaded.tier!.summary).toEqual(summarize(staged));
    expect(loaded.snapshot.meta).toEqual(snapshotAt(20, 2).meta);
    expect(loaded.entries).toEqual([]);
    expect(loaded.applied).toBe(20);
    expect(loaded.kv).toEqual({ revision: 30, records: [], sessions: [['c1', STAGED_SESSION]] });
    expect(loaded.hardState).toEqual({ term: 2, vote: '', commit: 20 });

    // The writer's statements work on the swapped-in table, and the log continues the snapshot.
    const later: Array<[string, KeyRecord]> = [['new-a/0003', rec('changed', 31)]];
    await engine.save({ entries: [entry(21, 2)], hardState: { term: 2, vote: '', commit: 21 } });
    await engine.save({ kv: { ...changes(31, later, ['new-c/0000']), summary: summarize(staged) }, applied: 21 });
    const after = [...staged.filter(([k]) => k !== 'new-c/0000'), ...later];
    const gone = [...absent, 'new-c/0000'];
    expect(shown(disk, keysOf(after, gone))).toEqual(expected(after, gone));
    await engine.close();

    const again = await open();
    const reloaded = await again.load();
    expect(reloaded.snapshot.meta.index).toBe(20);
    expect(reloaded.entries.map((e) => e.index)).toEqual([21]);
    expect(reloaded.applied).toBe(21);
    expect(shown(reloaded.tier!.disk, keysOf(after, gone))).toEqual(expected(after, gone));
    await again.close();
  });

  it('the whole transfer in the install batch, and a staged install after a plain one and before it', async () => {
    const engine = await open();
    const disk = (await engine.load()).tier!.disk;
    await liveBefore(engine);
    const staged = spreadRecords('one', 60, 1);
    await engine.save(stagedInstall(staged, { reset: true, records: staged }));
    expect(shown(disk, keysOf(staged, ['old/0001']))).toEqual(expected(staged, ['old/0001']));
    // The install path without staging still works after a swap (CLEAR on the swapped-in table)…
    const plain = spreadRecords('plain', 5, 40);
    await engine.save({ installSnapshot: { snapshot: snapshotAt(40, 3), kv: { revision: 45, records: plain, sessions: [] } } });
    expect(shown(disk, keysOf(plain, ['one/0001']))).toEqual(expected(plain, ['one/0001']));
    expect((await inFile(engine)).summary).toEqual(summarize(plain));
    // …and a staged one after it: an empty staged set installs an empty key space.
    await engine.save({
      stage: { reset: true, records: [] },
      installSnapshot: { snapshot: snapshotAt(50, 3), kv: { revision: 55, records: [], sessions: [] }, staged: summarize([]) },
    });
    expect(shown(disk, ['plain/0001'])).toEqual(expected([], ['plain/0001']));
    await engine.close();
  });

  it('a transfer cut short by a restart leaves the old records, and open empties the staging table', async () => {
    const engine = await open();
    const disk = (await engine.load()).tier!.disk;
    const old = await liveBefore(engine);
    await engine.save({ stage: { reset: true, records: spreadRecords('new', 30, 1) } });
    await engine.save({ stage: { reset: false, records: spreadRecords('old', 5, 90) } });
    expect(shown(disk, keysOf(old, ['new/0001']))).toEqual(expected(old, ['new/0001']));
    await engine.close(); // no install: the transfer ends here
    expect((await inFile()).staged).toBe(35); // what open must clear

    const again = await open();
    expect((await inFile(again)).staged).toBe(0);
    const loaded = await again.load();
    expect(loaded.applied).toBe(12);
    expect(loaded.entries).toHaveLength(12);
    expect(loaded.tier!.summary).toEqual(summarize(old));
    expect(shown(loaded.tier!.disk, keysOf(old, ['new/0001']))).toEqual(expected(old, ['new/0001']));
    // The next transfer starts over and installs only its own records.
    const staged = spreadRecords('next', 20, 1);
    await again.save({ stage: { reset: true, records: staged } });
    await again.save(stagedInstall(staged));
    expect(shown(loaded.tier!.disk, keysOf(staged, ['new/0001', 'old/0001']))).toEqual(expected(staged, ['new/0001', 'old/0001']));
    await again.close();
  });

  it('a view opened before the install keeps reading the old records through the swap and later writes', async () => {
    const engine = await open();
    const disk = (await engine.load()).tier!.disk;
    const old = [...spreadRecords('old', 2000, 1)]; // many pages, freed by the swap, reused by what follows
    await engine.save({ kv: { ...changes(2000, old), summary: summarize(old) } });
    const staged = spreadRecords('new', 1500, 3000);
    await engine.save({ stage: { reset: true, records: staged.slice(0, 700) } });
    const view: DiskView = disk.openView();
    await engine.save(stagedInstall(staged, { reset: false, records: staged.slice(700) }));
    const grown = spreadRecords('more', 3000, 5000);
    await engine.save({ kv: { ...changes(8000, grown), summary: summarize([...staged, ...grown]) } });
    // leveldb: the old generation is cleared from the database, not from the view's snapshot.
    if (engine instanceof LevelDbEngine) await engine.cleared();

    const absent = ['new/0001', 'old/0001', 'more/0001'];
    const oldKeys = keysOf(old.slice(0, 50), absent.slice(0, 1));
    const oldWant = expected(old, []);
    const got = shown(view, oldKeys);
    expect(got.walk).toEqual(oldWant.walk);
    expect(got.changed).toEqual(oldWant.changed);
    expect(got.got).toEqual([...old.slice(0, 50), ['new/0001', null]]);
    view.close();
    const now = [...staged, ...grown];
    expect(shown(disk, keysOf(now, ['old/0001']))).toEqual(expected(now, ['old/0001']));
    await engine.close();
  });

  it('a staged install carrying records in kv is refused, and the store is unchanged', async () => {
    const engine = await open();
    const disk = (await engine.load()).tier!.disk;
    const old = await liveBefore(engine);
    const bad = stagedInstall([]);
    bad.installSnapshot!.kv.records = [['x', rec('x', 1)]];
    await expect(engine.save(bad)).rejects.toThrow(/staged snapshot install carries 1 records/);
    expect(shown(disk, keysOf(old, ['x']))).toEqual(expected(old, ['x']));
    await engine.close();
  });
});

describe('an engine without a staging area', () => {
  it('the memory engine refuses staged records with a clear error', async () => {
    const engine: StorageEngine = await MemoryEngine.open({ dir, log: silentLogger });
    try {
      const staged = spreadRecords('s', 3, 1);
      await expect(engine.save({ stage: { reset: true, records: staged } })).rejects.toThrow(/need a tiered engine/);
      await expect(engine.save(stagedInstall(staged))).rejects.toThrow(/need a tiered engine/);
      // The engine goes on: a plain save still works.
      await engine.save({ entries: [entry(1, 1)], hardState: { term: 1, vote: '', commit: 0 } });
      expect((await engine.load()).entries).toHaveLength(1);
    } finally {
      await engine.close();
    }
  });
});
