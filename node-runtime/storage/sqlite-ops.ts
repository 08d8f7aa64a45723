// A commit group as the row operations the sqlite writer thread performs, in one buffer: the
// format, and its reading in the thread (the event loop writes it: sqlite-ops-encode.ts). The
// values arrive sealed (records.ts `seal` format: [crc32 LE][payload]), so the writer thread
// only walks the buffer and binds views of it: it allocates no objects per row and encodes
// nothing again. Keys of records travel as the `records` table stores them (UTF-16BE,
// sqlite-key.ts), with their modRevision. This module is kept light: the thread loads it.

import { crc32 } from 'node:zlib';
import { FormatError } from './bytes.ts';

/** The operations, one byte each, with their arguments (strings and byte strings with a
 *  uint length, sealed values as [u32 length][crc32][payload]). */
export const OP = {
  /** installSnapshot: empty log, records and sessions */
  CLEAR: 1,
  COMPACT_TO: 2,
  TRUNCATE_FROM: 3,
  PUT_ENTRY: 4,
  /** key (UTF-16BE), modRevision, sealed record */
  PUT_KEY: 5,
  DEL_KEY: 6,
  PUT_SESSION: 7,
  DEL_SESSION: 8,
  PUT_STATE: 9,
  PUT_SNAPSHOT: 10,
  PUT_META: 11,
  DEL_STATE: 12,
  /** stage with `reset`: empty the staging table */
  STAGE_RESET: 13,
  /** a staged record: key (UTF-16BE), modRevision, sealed record (as PUT_KEY) */
  STAGE_KEY: 14,
  /** installSnapshot with staged records: empty log and sessions, the staged records become
   *  the records (a table swap), the staging table empty */
  INSTALL_STAGED: 15,
} as const;

/** What the writer does with each operation (sealed values are views into the group buffer). */
export interface OpSink {
  clear(): void;
  compactTo(index: number): void;
  truncateFrom(index: number): void;
  putEntry(index: number, sealed: Uint8Array): void;
  /** `key` as stored (UTF-16BE), `mod` the record's modRevision. */
  putKey(key: Uint8Array, mod: number, sealed: Uint8Array): void;
  delKey(key: Uint8Array): void;
  putSession(client: string, sealed: Uint8Array): void;
  delSession(client: string): void;
  putState(name: string, sealed: Uint8Array): void;
  delState(name: string): void;
  putSnapshot(sealed: Uint8Array): void;
  putMeta(name: string, value: string): void;
  stageReset(): void;
  /** As putKey, into the staging table. */
  stageKey(key: Uint8Array, mod: number, sealed: Uint8Array): void;
  installStaged(): void;
}

/** Completes a value sealed with `crcLater` (its bytes are the thread's own, transferred). */
function sealInPlace(v: Buffer): Buffer {
  v.writeUInt32LE(crc32(v.subarray(4)), 0);
  return v;
}

/** Walks an encodeGroup() buffer, calling `sink` once per operation, in order. */
export function decodeGroup(group: Uint8Array, sink: OpSink): void {
  const buf = Buffer.from(group.buffer, group.byteOffset, group.byteLength);
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > buf.length) throw new FormatError(`group truncated: need ${n} bytes at ${pos} of ${buf.length}`);
  };
  const uint = (): number => {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      need(1);
      const b = buf[pos++]!;
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return v;
      scale *= 0x80;
    }
    throw new FormatError(`group: uint longer than 8 bytes at ${pos}`);
  };
  const str = (): string => {
    const n = uint();
    need(n);
    const s = buf.toString('utf8', pos, pos + n);
    pos += n;
    return s;
  };
  const blob = (): Buffer => {
    const n = uint();
    need(n);
    const v = buf.subarray(pos, pos + n);
    pos += n;
    return v;
  };
  const seal = (): Buffer => {
    need(4);
    const n = buf.readUInt32LE(pos);
    pos += 4;
    need(n);
    const v = buf.subarray(pos, pos + n);
    pos += n;
    return v;
  };
  while (pos < buf.length) {
    const op = buf[pos++]!;
    switch (op) {
      case OP.CLEAR:
        sink.clear();
        break;
      case OP.COMPACT_TO:
        sink.compactTo(uint());
        break;
      case OP.TRUNCATE_FROM:
        sink.truncateFrom(uint());
        break;
      case OP.PUT_ENTRY: {
        const index = uint();
        sink.putEntry(index, seal());
        break;
      }
      case OP.PUT_KEY:
      case OP.STAGE_KEY: {
        const key = blob();
        const mod = uint();
        if (op === OP.PUT_KEY) sink.putKey(key, mod, seal());
        else sink.stageKey(key, mod, seal());
        break;
      }
      case OP.STAGE_RESET:
        sink.stageReset();
        break;
      case OP.INSTALL_STAGED:
        sink.installStaged();
        break;
      case OP.DEL_KEY:
        sink.delKey(blob());
        break;
      case OP.PUT_SESSION: {
        const client = str();
        sink.putSession(client, seal());
        break;
      }
      case OP.DEL_SESSION:
        sink.delSession(str());
        break;
      case OP.PUT_STATE: {
        const name = str();
        sink.putState(name, seal());
        break;
      }
      case OP.DEL_STATE:
        sink.delState(str());
        break;
      case OP.PUT_SNAPSHOT:
        sink.putSnapshot(sealInPlace(seal()));
        break;
      case OP.PUT_META: {
        const name = str();
        sink.putMeta(name, str());
        break;
      }
      default:
        throw new FormatError(`group: unknown operation ${op} at ${pos - 1}`);
    }
  }
}
