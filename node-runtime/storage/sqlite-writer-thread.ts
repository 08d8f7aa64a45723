// Entry point of the sqlite engine's worker thread: owns the SqliteWriter and answers each
// group the event loop posts, in order. A group that fails is rolled back and reported; an
// exception outside a group (opening the database) ends the thread, which the engine treats as
// a failed store.

import { parentPort, workerData } from 'node:worker_threads';
import { SqliteWriter } from './sqlite-writer.ts';
import type { FromWriter, ToWriter, WriterData } from './sqlite-writer-protocol.ts';

const port = parentPort;
if (port === null) throw new Error('sqlite-writer-thread.ts runs only as a worker thread');
const writer = new SqliteWriter((workerData as WriterData).file);
const reply = (m: FromWriter): void => port.postMessage(m);
reply({ kind: 'ready' });

port.on('message', (m: ToWriter) => {
  if (m.kind === 'group') {
    try {
      writer.writeGroup(new Uint8Array(m.buf, 0, m.bytes));
      reply({ kind: 'done', id: m.id });
    } catch (err) {
      reply({ kind: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
    }
  } else {
    writer.close();
    reply({ kind: 'closed' });
    port.close();
  }
});
