// Checks LevelDB's write-ahead log files before LevelDB opens them. LevelDB (as classic-level
// builds it, paranoid_checks off) drops a record that fails its CRC and carries on with the
// next block: right for a torn tail, but silent data loss for damage in the middle. This scan
// tells the two apart (format: leveldb/doc/log_format.md):
//
//   block  = 32 KiB: physical records, then a zero trailer when < 7 bytes remain
//   record = masked crc32c(type ++ payload): u32 LE | length: u16 LE | type: u8 | payload
//   type   = FULL (a whole write) or FIRST, MIDDLE…, LAST fragments of one write
//
// Every write is synced (sync: true) before the next starts, so a crash can only tear the last
// write. Damage followed by the START of a later write (a valid FULL or FIRST record) means an
// fsynced write was damaged: StorageCorruptError naming file and offset. Otherwise the tail from
// the start of the damaged write is torn, and is truncated so LevelDB replays only whole writes.

import { crc32c, maskCrc } from './crc32c.ts';
import { StorageCorruptError } from './errors.ts';

const BLOCK_BYTES = 32768;
const HEADER_BYTES = 7;
// Record types 1..4: FULL, FIRST, MIDDLE (3: only ever between FIRST and LAST, so the scan
// never names it), LAST.
const FULL = 1;
const FIRST = 2;
const LAST = 4;

export interface LevelLogScan {
  /** End of the last complete write. */
  validBytes: number;
  /** Bytes after validBytes (a torn write, or zero padding). */
  tornBytes: number;
  /** Complete writes found. */
  writes: number;
}

interface Physical {
  type: number;
  end: number;
}

/** The valid physical record at pos, or undefined (damaged, truncated, or padding). */
function physicalAt(buf: Buffer, pos: number): Physical | undefined {
  const blockEnd = Math.min(buf.length, (Math.floor(pos / BLOCK_BYTES) + 1) * BLOCK_BYTES);
  if (blockEnd - pos < HEADER_BYTES) return undefined;
  const length = buf.readUInt16LE(pos + 4);
  const type = buf[pos + 6]!;
  if (type < FULL || type > LAST) return undefined;
  const end = pos + HEADER_BYTES + length;
  if (end > blockEnd) return undefined;
  const crc = crc32c(buf, pos + HEADER_BYTES, end, crc32c(buf, pos + 6, pos + 7));
  return maskCrc(crc) === buf.readUInt32LE(pos) ? { type, end } : undefined;
}

function isPadding(buf: Buffer, pos: number): boolean {
  // Fewer than HEADER_BYTES left in the block: the writer zero-fills them.
  const blockEnd = (Math.floor(pos / BLOCK_BYTES) + 1) * BLOCK_BYTES;
  return blockEnd - pos < HEADER_BYTES;
}

export function scanLevelLog(file: string, buf: Buffer): LevelLogScan {
  let pos = 0;
  let validBytes = 0;
  let writes = 0;
  let inWrite = false;
  let damagedAt = -1;
  while (pos < buf.length) {
    if (isPadding(buf, pos)) {
      pos = Math.min(buf.length, (Math.floor(pos / BLOCK_BYTES) + 1) * BLOCK_BYTES);
      continue;
    }
    const rec = physicalAt(buf, pos);
    if (rec === undefined) {
      damagedAt = pos;
      break;
    }
    if ((rec.type === FULL || rec.type === FIRST) === inWrite) {
      // Intact records out of sequence: a write lost fragments yet a later one was written.
      throw new StorageCorruptError(file, pos, `leveldb log record of type ${rec.type} out of sequence`);
    }
    if (rec.type === FULL || rec.type === LAST) {
      inWrite = false;
      writes++;
      validBytes = rec.end;
    } else {
      inWrite = true;
    }
    pos = rec.end;
  }
  if (damagedAt < 0) {
    // A write whose last fragments never reached the disk is torn too.
    return { validBytes, tornBytes: buf.length - validBytes, writes };
  }
  // Look for the start of a later write after the damage: at every record boundary we can
  // still find (the rest of this block when the damaged header is plausible, then each block).
  for (let block = Math.floor(damagedAt / BLOCK_BYTES); block * BLOCK_BYTES < buf.length; block++) {
    let p = block === Math.floor(damagedAt / BLOCK_BYTES) ? damagedAt : block * BLOCK_BYTES;
    const blockEnd = Math.min(buf.length, (block + 1) * BLOCK_BYTES);
    while (p + HEADER_BYTES <= blockEnd && !isPadding(buf, p)) {
      const rec = physicalAt(buf, p);
      if (rec && p !== damagedAt && (rec.type === FULL || rec.type === FIRST)) {
        throw new StorageCorruptError(file, damagedAt, `leveldb log record fails its checksum but a later write starts at offset ${p}`);
      }
      // Step over this record by its stated length when that stays inside the block.
      const next = p + HEADER_BYTES + buf.readUInt16LE(p + 4);
      if (next > blockEnd || next <= p) break;
      p = next;
    }
  }
  return { validBytes, tornBytes: buf.length - validBytes, writes };
}
