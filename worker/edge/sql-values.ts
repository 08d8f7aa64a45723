// Reading Durable Object SQLite column values as the types the edge storage wrote, measuring
// the rows it writes against the platform's row limit, and the storage's errors: a value of
// another type is StorageError (the database is not what it wrote).

import { concatBytes } from '@noble/hashes/utils.js';
import type { EntryType } from '../raft/types.ts';
import type { SqlLike, SqlValue } from './sql.ts';
import { STORAGE_ROW_BYTES_MAX } from '../kv/types.ts';
import { utf8Length } from '../kv/utf8.ts';

/** Largest blob stored in one row; bigger payloads are chunked. Half a row: the rest is the
 *  row's other columns, with room to spare. */
export const ROW_BLOB_BYTES_MAX = STORAGE_ROW_BYTES_MAX / 2;

/** An integer column's bytes at most in a SQLite record (its value and header). */
export const INTEGER_BYTES = 9;

export class StorageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageError';
  }
}

/** A row above the platform's row limit, refused before it was written (worker/edge/storage.ts header). */
export class RowTooLargeError extends StorageError {
  constructor(table: string, what: string, bytes: number) {
    super(`refusing to write a ${bytes}-byte row to ${table} (${what}): rows are limited to ${STORAGE_ROW_BYTES_MAX} bytes`);
    this.name = 'RowTooLargeError';
  }
}

/** A text column's UTF-8 bytes (a lone surrogate, which SQLite would store as 3 bytes, counted so). */
export function textBytes(s: string): number {
  const n = utf8Length(s);
  return n >= 0 ? n : 3 * s.length;
}

/** Refuses a row of `bytes` above the platform's limit (RowTooLargeError). */
export function checkRow(table: string, what: () => string, bytes: number): void {
  if (bytes > STORAGE_ROW_BYTES_MAX) throw new RowTooLargeError(table, what(), bytes);
}

export function split(data: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let offset = 0; offset < data.byteLength; offset += ROW_BLOB_BYTES_MAX) {
    parts.push(data.subarray(offset, offset + ROW_BLOB_BYTES_MAX));
  }
  return parts;
}

/** A binding value for a BLOB column: an ArrayBuffer holding exactly the view's bytes. */
export function blob(view: Uint8Array): ArrayBuffer {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer) {
    return view.buffer;
  }
  return view.slice().buffer as ArrayBuffer;
}

export function bytes(v: SqlValue | undefined): Uint8Array {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v instanceof Uint8Array) return v;
  // SQLite hands back a zero-length BLOB as NULL in some drivers.
  if (v === null) return new Uint8Array(0);
  throw new StorageError(`expected a blob, found ${typeof v}`);
}

export function int(v: SqlValue | undefined): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new StorageError(`expected an integer, found ${String(v)}`);
  return v;
}

export function str(v: SqlValue | undefined): string {
  if (typeof v !== 'string') throw new StorageError(`expected text, found ${typeof v}`);
  return v;
}

/** The `chunks` parts of a payload split over `table`'s rows (those matching `where`), joined. */
export function readChunks(sql: SqlLike, table: string, where: string, args: SqlValue[], chunks: number): Uint8Array {
  const rows = sql.exec(`SELECT part, data FROM ${table} WHERE ${where} ORDER BY part`, ...args).toArray();
  if (rows.length !== chunks) {
    throw new StorageError(`${table}: expected ${chunks} chunks, found ${rows.length}`);
  }
  return concatBytes(...rows.map((row) => bytes(row.data)));
}

export function entryType(v: SqlValue | undefined): EntryType {
  if (v === 'normal' || v === 'conf') return v;
  throw new StorageError(`unknown entry type ${String(v)}`);
}
