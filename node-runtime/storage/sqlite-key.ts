// How the sqlite engine stores a key in the `records` table: its UTF-16 code units, big-endian,
// two bytes each (lone surrogates included, as they are), in a BLOB. SQLite compares BLOBs with
// memcmp, and memcmp of big-endian code units is JavaScript's string order (sorted-keys.ts), so
// `ORDER BY k` and `k >= ?` range exactly as the state machine does on every other engine. A
// TEXT column (UTF-8) would not: UTF-8 sorts U+E000..U+FFFF before the supplementary planes,
// JavaScript after (their surrogates, 0xD800..0xDFFF, are below 0xE000), and replicas on
// different engines must return the same ranges.

/** The key's UTF-16 code units, big-endian. */
export function encodeKey(key: string): Buffer {
  // 'utf16le' copies code units as they are (no replacement of lone surrogates).
  return Buffer.from(key, 'utf16le').swap16();
}

/** The key stored as `bytes` (an even number of bytes). Swaps `bytes` in place when it is a
 *  buffer of its own (SQLite's column values are fresh copies), else a copy. */
export function decodeKey(bytes: Uint8Array, inPlace = false): string {
  if (bytes.length % 2 !== 0) throw new RangeError(`a stored key has an even number of bytes, not ${bytes.length}`);
  const buf = inPlace ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.from(bytes);
  return buf.swap16().toString('utf16le');
}
