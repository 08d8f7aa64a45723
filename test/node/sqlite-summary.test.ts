// The sqlite engine's record summary (the `kvSummary` row of `state`) and the move of an old
// data dir's `kv` table to `records`, on real databases: the summary is kept with the batches
// that carry one, deleted by one that does not, counted by a snapshot install, counted once at
// open when missing (and not again); an old-schema dir opens with its records in JS order.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteEngine } from '../../node-runtime/storage/sqlite-engine.ts';
import { SQLITE_FILE, SUMMARY_ROW } from '../../node-runtime/storage/sqlite-schema.ts';
import { readRecordSummary, seal, unseal, writeKeyRecord } from '../../node-runtime/storage/records.ts';
import { withRecords } from '../../node-runtime/storage/loaded-records.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';
import type { Logger, LogFields } from '../../node-runtime/log.ts';
import type { KeyRecord, KvChanges, RecordSummary } from '../../worker/kv/types.ts';
import { snapshotAt } from '../support/storage-batches.ts';

let dir: string;
let file: string;

function recordingLogger(): Logger & { infos: LogFields[] } {
  const infos: LogFields[] = [];
  return { infos, debug() {}, warn() {}, error() {}, info: (msg, f) => infos.push({ msg, ...f }) };
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metcd-sqlite-summary-'));
  file = path.join(dir, SQLITE_FILE);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const rec = (value: string, mod: number): KeyRecord => ({ value, createRevision: mod, modRevision: mod, version: 1 });
const changes = (revision: number, upserts: Array<[string, KeyRecord]>, summary?: RecordSummary): KvChanges => ({
  revision,
  upserts,
  deletes: [],
  sessionUpserts: [],
  sessionDeletes: [],
  ...(summary ? { summary } : {}),
});

/** The stored summary row, read directly (null when there is none). */
function storedSummary(): RecordSummary | null {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const row = db.prepare('SELECT value FROM state WHERE name = ?').get(SUMMARY_ROW) as { value: Uint8Array } | undefined;
    return row === undefined ? null : unseal(row.value, readRecordSummary);
  } finally {
    db.close();
  }
}

/** Opens, loads and closes; returns the summary it loaded and what it logged. */
async function reopen(): Promise<{ summary: RecordSummary; infos: string[] }> {
  const log = recordingLogger();
  const engine = await SqliteEngine.open({ dir, log });
  const loaded = await engine.load();
  await engine.close();
  return { summary: loaded.tier!.summary, infos: log.infos.map((f) => String(f['msg'])) };
}

const COUNTED = 'sqlite records summary counted';

describe('sqlite record summary', () => {
  it('is stored with the batches that carry one, and loaded without counting', async () => {
    expect(await reopen()).toEqual({ summary: { records: 0, internalRecords: 0, bytes: 0 }, infos: [] }); // a new store
    const engine = await SqliteEngine.open({ dir, log: recordingLogger() });
    await engine.load();
    // Deliberately not the true counts: what the batch says is what is kept.
    const said = { records: 41, internalRecords: 3, bytes: 4096 };
    await engine.save({ kv: changes(1, [['a', rec('1', 1)]], said) });
    expect(storedSummary()).toEqual(said);
    await engine.close();
    expect(await reopen()).toEqual({ summary: said, infos: [] });
  });

  it('a batch of KV changes without one deletes it; the next open counts once and stores it', async () => {
    const engine = await SqliteEngine.open({ dir, log: recordingLogger() });
    await engine.load();
    await engine.save({
      kv: changes(
        1,
        [
          ['a', rec('xy', 1)],
          ['\u0001lease/1', rec('{}', 1)],
        ],
        { records: 2, internalRecords: 1, bytes: 99 },
      ),
    });
    await engine.save({ applied: 0 }); // no KV changes: the row stays
    expect(storedSummary()).toEqual({ records: 2, internalRecords: 1, bytes: 99 });
    await engine.save({ kv: changes(2, [['b', rec('z', 2)]]) });
    expect(storedSummary()).toBeNull();
    const truth = { records: 3, internalRecords: 1, bytes: 3 + 10 + 2 };
    expect((await engine.load()).tier!.summary).toEqual(truth); // counted, not stored
    expect(storedSummary()).toBeNull();
    await engine.close();
    expect(await reopen()).toEqual({ summary: truth, infos: [COUNTED] });
    expect(storedSummary()).toEqual(truth);
    expect(await reopen()).toEqual({ summary: truth, infos: [] }); // no scan after that
  });

  it('in one commit group, the last batch decides: a summary after a summary-less batch stands, and the reverse deletes it', async () => {
    const engine = await SqliteEngine.open({ dir, log: recordingLogger() });
    await engine.load();
    const s = (n: number) => ({ records: n, internalRecords: 0, bytes: n });
    await Promise.all([engine.save({ kv: changes(1, [['a', rec('1', 1)]]) }), engine.save({ kv: changes(2, [['b', rec('2', 2)]], s(2)) })]);
    expect(storedSummary()).toEqual(s(2));
    await Promise.all([engine.save({ kv: changes(3, [['c', rec('3', 3)]], s(3)) }), engine.save({ kv: changes(4, [['d', rec('4', 4)]]) })]);
    expect(storedSummary()).toBeNull();
    await engine.close();
  });

  it('a snapshot install counts the records it installs (internal keys, multi-byte and lone-surrogate keys)', async () => {
    const engine = await SqliteEngine.open({ dir, log: recordingLogger() });
    await engine.load();
    await engine.save({ kv: changes(1, [['old', rec('gone', 1)]], { records: 1, internalRecords: 0, bytes: 7 }) });
    const records: Array<[string, KeyRecord]> = [
      ['\u0001t/1', rec('ab', 5)], // 4 + 2 bytes, internal
      ['\u00e9', rec('\u00fc', 5)], // 2 + 2
      ['\ud800', rec('x', 5)], // a lone surrogate counts 3 (written as U+FFFD), + 1
    ];
    await engine.save({ installSnapshot: { snapshot: snapshotAt(9, 2), kv: { revision: 5, records, sessions: [] } } });
    expect(storedSummary()).toEqual({ records: 3, internalRecords: 1, bytes: 14 });
    await engine.close();
    expect(await reopen()).toEqual({ summary: { records: 3, internalRecords: 1, bytes: 14 }, infos: [] });
  });
});

/** The tables as data dirs written before the records table had them. */
const OLD_SCHEMA = `
  PRAGMA journal_mode = WAL;
  CREATE TABLE state (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE snapshot (id INTEGER PRIMARY KEY, value BLOB NOT NULL);
  CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
  CREATE TABLE kv (key TEXT PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE sessions (client TEXT PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
`;

function writeOldDir(records: Array<[string, KeyRecord]>, damage?: string): void {
  mkdirSync(dir, { recursive: true });
  const db = new DatabaseSync(file);
  db.exec(OLD_SCHEMA);
  const put = db.prepare('INSERT INTO kv (key, rec) VALUES (?, ?)');
  for (const [key, r] of records) {
    const sealed = seal((w) => writeKeyRecord(w, r));
    if (key === damage) sealed[sealed.length - 1]! ^= 0x01;
    put.run(key, sealed);
  }
  db.prepare("INSERT INTO state (name, value) VALUES ('revision', ?)").run(seal((w) => w.uint(7)));
  db.close();
}

describe('sqlite data dir from before the records table', () => {
  // In UTF-8 order (the old table's) U+E000 sorts before U+1F600; in JS order after.
  const records: Array<[string, KeyRecord]> = [
    ['a', rec('1', 2)],
    ['\ue000', rec('private', 3)],
    ['\u{1F600}', rec('smile', 4)],
    ['\u0001compacted', rec('0', 7)],
  ];

  it('is moved to the records table at open, once, in JS key order, with its summary', async () => {
    writeOldDir(records);
    const log = recordingLogger();
    const engine = await SqliteEngine.open({ dir, log });
    const loaded = await engine.load();
    expect(log.infos).toEqual([expect.objectContaining({ msg: 'sqlite records moved to the key-ordered records table', records: 4 })]);
    expect(loaded.kv.revision).toBe(7);
    expect(withRecords(loaded).kv.records).toEqual([
      ['\u0001compacted', rec('0', 7)],
      ['a', rec('1', 2)],
      ['\u{1F600}', rec('smile', 4)],
      ['\ue000', rec('private', 3)],
    ]);
    const changed: string[] = [];
    loaded.tier!.disk.changedSince(4, (k) => changed.push(k) > 0);
    expect(changed).toEqual(['\u{1F600}', '\u0001compacted']); // (modRevision, key) order
    expect(loaded.tier!.summary).toEqual({ records: 4, internalRecords: 1, bytes: 1 + 1 + 3 + 7 + 4 + 5 + 10 + 1 });
    await engine.close();
    const db = new DatabaseSync(file, { readOnly: true });
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'kv'").get()).toEqual({ n: 0 });
    db.close();
    expect((await reopen()).infos).toEqual([]); // nothing to move, nothing to count
  });

  it('a damaged row of the old table refuses the open, naming table and key, and leaves the old table as it was', async () => {
    writeOldDir(records, '\ue000');
    const err = await SqliteEngine.open({ dir, log: recordingLogger() }).then(
      (e) => e.close(),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageCorruptError);
    expect((err as Error).message).toContain(`table kv row ${JSON.stringify('\ue000')}`);
    const db = new DatabaseSync(file, { readOnly: true });
    expect(db.prepare('SELECT count(*) AS n FROM kv').get()).toEqual({ n: 4 });
    expect(db.prepare('SELECT count(*) AS n FROM records').get()).toEqual({ n: 0 });
    db.close();
  });
});
