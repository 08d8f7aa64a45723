// Reading Durable Object SQLite column values as the types the edge storage wrote, and the
// storage's errors: a value of another type is StorageError (the database is not what it wrote).

import type { SqlValue } from './sql.ts';

export class StorageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageError';
  }
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
