// Checks a SQLite write-ahead log before SQLite opens it (format: sqlite.org/fileformat2.html,
// "WAL file format"). SQLite itself stops reading its WAL at the first frame that fails the
// cumulative checksum and silently ignores everything after it: right for a torn tail, but it
// would also silently drop committed transactions that follow a damaged frame. This scan tells
// the two apart:
//   - torn tail: the damage is in the last transaction (no later commit frame of this WAL
//     generation exists) → the bytes after the last good commit are truncated and logged;
//   - corruption: a later transaction of the same generation (same salts) committed after the
//     damaged one, which the engine had fsynced before writing the next → StorageCorruptError
//     (file, offset).
// Frames of an older generation (other salts) left behind a reset WAL are normal leftovers.

import { StorageCorruptError } from './errors.ts';

const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;

export interface WalScan {
  /** Bytes up to the end of the last valid commit frame (0 when the WAL holds none). */
  validBytes: number;
  /** Bytes after validBytes that belong to a torn transaction (0 when none). */
  tornBytes: number;
  /** Committed transactions found. */
  commits: number;
}

function checksum(buf: Buffer, start: number, end: number, bigEndian: boolean, s: [number, number]): void {
  let s0 = s[0];
  let s1 = s[1];
  for (let i = start; i < end; i += 8) {
    const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  s[0] = s0;
  s[1] = s1;
}

export function scanSqliteWal(file: string, buf: Buffer): WalScan {
  if (buf.length < WAL_HEADER_BYTES) {
    // A crash while creating the WAL, before any frame: nothing committed in it.
    return { validBytes: 0, tornBytes: buf.length, commits: 0 };
  }
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) {
    throw new StorageCorruptError(file, 0, `not a SQLite WAL (magic ${magic.toString(16)})`);
  }
  const bigEndian = (magic & 1) === 1;
  const pageBytes = buf.readUInt32BE(8);
  if (pageBytes < 512 || pageBytes > 65536 || (pageBytes & (pageBytes - 1)) !== 0) {
    throw new StorageCorruptError(file, 8, `SQLite WAL header names page size ${pageBytes}`);
  }
  const salt1 = buf.readUInt32BE(16);
  const salt2 = buf.readUInt32BE(20);
  const sum: [number, number] = [0, 0];
  checksum(buf, 0, 24, bigEndian, sum);
  const headerOk = sum[0] === buf.readUInt32BE(24) && sum[1] === buf.readUInt32BE(28);

  // Frames chain their checksums from the header's stored checksum.
  const chain: [number, number] = [buf.readUInt32BE(24), buf.readUInt32BE(28)];
  const frameBytes = FRAME_HEADER_BYTES + pageBytes;
  let validBytes = 0;
  let commits = 0;
  let pos = WAL_HEADER_BYTES;
  for (; pos + frameBytes <= buf.length; pos += frameBytes) {
    if (buf.readUInt32BE(pos + 8) !== salt1 || buf.readUInt32BE(pos + 12) !== salt2) break;
    checksum(buf, pos, pos + 8, bigEndian, chain);
    checksum(buf, pos + FRAME_HEADER_BYTES, pos + frameBytes, bigEndian, chain);
    if (chain[0] !== buf.readUInt32BE(pos + 16) || chain[1] !== buf.readUInt32BE(pos + 20)) break;
    if (buf.readUInt32BE(pos + 4) !== 0) {
      commits++;
      validBytes = pos + frameBytes;
    }
  }
  if (!headerOk) {
    if (commits > 0) throw new StorageCorruptError(file, 24, 'SQLite WAL header fails its checksum but committed frames follow it');
    return { validBytes: 0, tornBytes: buf.length, commits: 0 };
  }
  if (validBytes === 0) validBytes = WAL_HEADER_BYTES;

  // After the break: frames of this generation are the torn transaction, unless one of them
  // commits and yet another commit of this generation follows it.
  let tornEnd = validBytes;
  let commitAfterBreak = -1;
  for (let p = validBytes; p + frameBytes <= buf.length; p += frameBytes) {
    if (buf.readUInt32BE(p + 8) !== salt1 || buf.readUInt32BE(p + 12) !== salt2) continue;
    tornEnd = p + frameBytes;
    if (buf.readUInt32BE(p + 4) === 0) continue;
    if (commitAfterBreak >= 0) {
      throw new StorageCorruptError(
        file,
        pos,
        `SQLite WAL frame fails its checksum but a later transaction committed (frame at offset ${p})`,
      );
    }
    commitAfterBreak = p;
  }
  const partialFrame = (buf.length - WAL_HEADER_BYTES) % frameBytes !== 0;
  if (partialFrame) tornEnd = buf.length;
  return { validBytes, tornBytes: tornEnd - validBytes, commits };
}
