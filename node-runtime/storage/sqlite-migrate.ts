// Data dirs written before the records table kept the records in `kv (key TEXT PRIMARY KEY, rec)`,
// in UTF-8 order. Opening such a dir moves every row to `records` (key as UTF-16BE, with its
// modRevision) and drops `kv`, with the records' summary, in one transaction: a crash midway
// leaves the old table as it was, and the next open moves it again. Each row's seal is checked
// on the way (a bad one is StorageCorruptError, as loading it was before).

import type { DatabaseSync } from 'node:sqlite';
import type { RecordSummary } from '../../worker/kv/types.ts';
import type { Logger } from '../log.ts';
import { readKeyRecord, seal, writeRecordSummary } from './records.ts';
import { countRecord, emptySummary } from '../../worker/kv/record-summary.ts';
import { encodeKey } from './sqlite-key.ts';
import { SUMMARY_ROW, unsealRow } from './sqlite-schema.ts';

/** Writes `summary` as the `state` table's summary row (on a connection that may write). */
export function storeSummary(db: DatabaseSync, summary: RecordSummary): void {
  db.prepare('INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)').run(
    SUMMARY_ROW,
    seal((w) => writeRecordSummary(w, summary)),
  );
}

/** Moves the rows of an old `kv` table, if there is one, to `records`. */
export function migrateKvTable(db: DatabaseSync, file: string, log: Logger): void {
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'").get() === undefined) return;
  const t0 = performance.now();
  const summary = emptySummary();
  db.exec('BEGIN IMMEDIATE');
  try {
    const put = db.prepare('INSERT OR REPLACE INTO records (k, rec, mod) VALUES (?, ?, ?)');
    for (const row of db.prepare('SELECT key, rec FROM kv').iterate() as Iterable<{ key: string; rec: Uint8Array }>) {
      const record = unsealRow(file, 'kv', row.key, row.rec, readKeyRecord);
      put.run(encodeKey(row.key), row.rec, record.modRevision);
      countRecord(summary, row.key, record);
    }
    db.exec('DROP TABLE kv');
    storeSummary(db, summary);
    db.exec('COMMIT');
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
  log.info('sqlite records moved to the key-ordered records table', {
    file,
    records: summary.records,
    ms: Math.round(performance.now() - t0),
  });
}
