// Messages between the sqlite engine (event loop) and its reader thread (point reads of records
// off the event loop: sqlite-async-reader.ts).

export interface SqliteReaderData {
  file: string;
}

export type ToSqliteReader = { kind: 'get'; id: number; key: Uint8Array } | { kind: 'close' };

export type FromSqliteReader =
  | { kind: 'ready' }
  | { kind: 'record'; id: number; rec: Uint8Array | null }
  | { kind: 'failed'; id: number; message: string }
  | { kind: 'closed' };
