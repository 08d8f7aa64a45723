// How the leveldb engine lays out its keys: a one-byte prefix per kind, so each kind is a
// contiguous range of LevelDB's byte order.
//
//   M<name>                       meta value (UTF-8)
//   S<name>                       hardState | snapshotRef | applied | revision | summary |
//                                 generation                                    (sealed)
//                                 (snapshot: the inline form older data dirs hold)
//   G<index u64 BE>               log segment: the entries one batch appended, from index (sealed)
//   L<index u64 BE>               one log entry (older data dirs; read, never written)
//   R<gen u8><key>                KV record of generation `gen`                 (sealed)
//   X<gen u8><mod u64 BE><key>    the modRevision index of generation `gen` (empty value)
//   C<client>                     session                                       (sealed)
//   K<key UTF-8>                  KV record of an older data dir: moved to R at open
//
// A record's key is its UTF-16 code units, big-endian (sqlite-key.ts): byte order is then
// JavaScript's string order, so a walk ranges exactly as the state machine does on every engine
// (UTF-8 would sort U+E000..U+FFFF before the supplementary planes).
//
// Two generations of records: the live one (S generation) and the other, where a snapshot's
// records arriving in chunks are staged. An install flips S generation in the batch that stores
// the snapshot, so the new records replace the old all at once, and the old generation is then
// emptied in the background (db.clear): LevelDB has no table to rename.

export const P_META = 0x4d; // M
export const P_STATE = 0x53; // S
export const P_LOG = 0x4c; // L
export const P_SEG = 0x47; // G
export const P_RECORD = 0x52; // R
export const P_MOD = 0x58; // X
export const P_CLIENT = 0x43; // C
export const P_OLD_KEY = 0x4b; // K

export type Generation = 0 | 1;

export function strKey(prefix: number, s: string): Buffer {
  const n = Buffer.byteLength(s, 'utf8');
  const b = Buffer.allocUnsafe(1 + n);
  b[0] = prefix;
  b.write(s, 1, n, 'utf8');
  return b;
}

export function segKey(index: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = P_SEG;
  writeU64(b, 1, index);
  return b;
}

export function logIndex(key: Buffer): number {
  return readU64(key, 1);
}

function writeU64(b: Buffer, at: number, n: number): void {
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), at);
  b.writeUInt32BE(n >>> 0, at + 4);
}

function readU64(b: Uint8Array, at: number): number {
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return v.readUInt32BE(at) * 0x1_0000_0000 + v.readUInt32BE(at + 4);
}

/** Every key with this one-byte prefix. */
export const prefixRange = (prefix: number) => ({ gte: Buffer.from([prefix]), lt: Buffer.from([prefix + 1]) });

/** Every key of `prefix` and generation `gen` (records or their index). */
export const genRange = (prefix: number, gen: Generation) => ({ gte: Buffer.from([prefix, gen]), lt: Buffer.from([prefix, gen + 1]) });

/** `key`'s UTF-16 code units, big-endian (as encodeKey), written into `b` from `at`. */
function writeKey(b: Buffer, at: number, key: string): void {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    b[at++] = c >>> 8;
    b[at++] = c & 0xff;
  }
}

/** R<gen><key>: where `key`'s record of generation `gen` is. */
export function recordKey(gen: Generation, key: string): Buffer {
  const b = Buffer.allocUnsafe(2 + 2 * key.length);
  b[0] = P_RECORD;
  b[1] = gen;
  writeKey(b, 2, key);
  return b;
}

/** X<gen><mod><key>: `key`'s entry in the modRevision index of generation `gen`. */
export function modKey(gen: Generation, mod: number, key: string): Buffer {
  const b = Buffer.allocUnsafe(10 + 2 * key.length);
  b[0] = P_MOD;
  b[1] = gen;
  writeU64(b, 2, mod);
  writeKey(b, 10, key);
  return b;
}

/** The first index key of generation `gen` at modRevision `mod` or later. */
export function modFrom(gen: Generation, mod: number): Buffer {
  const b = Buffer.allocUnsafe(10);
  b[0] = P_MOD;
  b[1] = gen;
  writeU64(b, 2, mod);
  return b;
}

/** The modRevision an index key (modKey) names; its key bytes start at MOD_KEY_BYTES_AT. */
export const modOf = (indexKey: Uint8Array): number => readU64(indexKey, 2);
export const MOD_KEY_BYTES_AT = 10;
export const RECORD_KEY_BYTES_AT = 2;
