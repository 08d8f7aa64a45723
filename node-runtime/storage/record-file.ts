// An append-only file of checksummed, length-prefixed records: the memory engine's log.
//
//   file    = magic(8) record*
//   record  = payloadBytes: u32 LE | crc32(payloadBytes field ++ payload): u32 LE | payload
//
// Each durable write appends exactly ONE record (the engine packs a whole commit group into
// it), so a crash can only tear the last record. On open, a record that fails its checksum is:
//   - a torn tail, if no valid record exists anywhere after it: truncated away (logged);
//   - corruption, if a valid record follows it (that later record was written after the bad
//     one had been fsynced, so the bad one was acknowledged): StorageCorruptError naming the
//     file and offset. The node stops rather than forget an acknowledged write.

import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { StorageCorruptError } from './errors.ts';

export const RECORD_FILE_MAGIC = Buffer.from('MTCDLOG1', 'latin1');
const HEADER_BYTES = 8;

export interface ScanResult {
  /** Payloads of the valid records, in order (views into the file's bytes). */
  payloads: Buffer[];
  /** Bytes up to the end of the last valid record. */
  validBytes: number;
  /** Bytes after validBytes that were a torn tail (0 when the file ended cleanly). */
  tornBytes: number;
}

function recordAt(buf: Buffer, pos: number, recordBytesMax: number): number {
  // Returns the end offset of a valid record starting at pos, or -1.
  if (buf.length - pos < HEADER_BYTES) return -1;
  const len = buf.readUInt32LE(pos);
  if (len > recordBytesMax || pos + HEADER_BYTES + len > buf.length) return -1;
  const want = buf.readUInt32LE(pos + 4);
  const got = crc32(buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len), crc32(buf.subarray(pos, pos + 4)));
  return want === got ? pos + HEADER_BYTES + len : -1;
}

/** Parses a whole record file held in memory; throws StorageCorruptError on mid-file damage. */
export function scanRecords(file: string, buf: Buffer, recordBytesMax: number): ScanResult {
  if (buf.length < RECORD_FILE_MAGIC.length) {
    // A crash while creating the file: nothing was ever acknowledged from it.
    if (RECORD_FILE_MAGIC.subarray(0, buf.length).equals(buf) || buf.every((b) => b === 0)) {
      return { payloads: [], validBytes: 0, tornBytes: buf.length };
    }
    throw new StorageCorruptError(file, 0, 'not a metcd log (bad magic)');
  }
  if (!buf.subarray(0, RECORD_FILE_MAGIC.length).equals(RECORD_FILE_MAGIC)) {
    throw new StorageCorruptError(file, 0, 'not a metcd log (bad magic)');
  }
  const payloads: Buffer[] = [];
  let pos = RECORD_FILE_MAGIC.length;
  while (pos < buf.length) {
    const end = recordAt(buf, pos, recordBytesMax);
    if (end < 0) break;
    payloads.push(buf.subarray(pos + HEADER_BYTES, end));
    pos = end;
  }
  if (pos < buf.length) {
    for (let probe = pos + 1; probe + HEADER_BYTES <= buf.length; probe++) {
      if (recordAt(buf, probe, recordBytesMax) >= 0) {
        throw new StorageCorruptError(file, pos, `record fails its checksum but a valid record follows at offset ${probe}`);
      }
    }
  }
  return { payloads, validBytes: pos, tornBytes: buf.length - pos };
}

/** Appends records to an open record file; every append is durable when it resolves. */
export class RecordAppender {
  private readonly fh: FileHandle;
  /** Current end of the file: the offset of the next record. */
  size: number;

  private constructor(fh: FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
  }

  /** Opens `file` for appending after `validBytes`, truncating whatever follows (a torn tail). */
  static async open(file: string, validBytes: number): Promise<RecordAppender> {
    const fh = await open(file, validBytes === 0 ? 'w+' : 'r+');
    try {
      const { size } = await fh.stat();
      if (validBytes === 0) {
        await fh.write(RECORD_FILE_MAGIC, 0, RECORD_FILE_MAGIC.length, 0);
        validBytes = RECORD_FILE_MAGIC.length;
        await fh.sync();
      } else if (size !== validBytes) {
        await fh.truncate(validBytes);
        await fh.sync();
      }
      return new RecordAppender(fh, validBytes);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Writes one record and fdatasyncs. */
  async append(payload: Uint8Array): Promise<void> {
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(crc32(payload, crc32(header.subarray(0, 4))), 4);
    const record = Buffer.concat([header, payload]);
    let off = 0;
    while (off < record.length) {
      const { bytesWritten } = await this.fh.write(record, off, record.length - off, this.size + off);
      off += bytesWritten;
    }
    await this.fh.datasync();
    this.size += record.length;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
