// Entry point of the sqlite engine's reader thread: point reads of the `records` table for the
// event loop, answered asynchronously (sqlite-async-reader.ts), so a client's read that misses
// the cache does not wait on the disk in the event loop. A read-only connection of its own,
// holding no transaction between reads: each read sees the last commit. The records' seals are
// checked on the event loop, as every other read of them is.

import { parentPort, workerData } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';
import { READER_PRAGMAS } from './sqlite-schema.ts';
import type { FromSqliteReader, SqliteReaderData, ToSqliteReader } from './sqlite-reader-protocol.ts';

const port = parentPort;
if (port === null) throw new Error('sqlite-reader-thread.ts runs only as a worker thread');
const db = new DatabaseSync((workerData as SqliteReaderData).file, { readOnly: true });
db.exec(READER_PRAGMAS);
const get = db.prepare('SELECT rec FROM records WHERE k = ?');
get.setReturnArrays(true);
const reply = (m: FromSqliteReader, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
reply({ kind: 'ready' });

port.on('message', (m: ToSqliteReader) => {
  if (m.kind === 'close') {
    db.close();
    reply({ kind: 'closed' });
    port.close();
    return;
  }
  try {
    const row = get.get(m.key) as [Uint8Array] | undefined;
    const rec = row === undefined ? null : row[0];
    reply({ kind: 'record', id: m.id, rec }, rec === null ? [] : [rec.buffer as ArrayBuffer]);
  } catch (err) {
    reply({ kind: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
  }
});
