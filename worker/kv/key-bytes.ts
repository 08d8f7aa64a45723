// A key as the bytes a SQLite table stores it in: its UTF-16 code units, big-endian, two bytes
// each (lone surrogates included, as they are), in a BLOB. SQLite compares BLOBs with memcmp,
// and memcmp of big-endian code units is JavaScript's string order (sorted-keys.ts), so
// `ORDER BY k` and `k >= ?` range exactly as the state machine does on every engine. A TEXT
// column (UTF-8) would not: UTF-8 sorts U+E000..U+FFFF before the supplementary planes,
// JavaScript after (their surrogates, 0xD800..0xDFFF, are below 0xE000).
//
// Pure (no Node Buffer): the edge's Durable Object storage runs in workerd without nodejs_compat.
// The sqlite engine on Node has its own Buffer-based copy (node-runtime/storage/sqlite-key.ts),
// byte for byte the same (test/kv/key-bytes.test.ts).

/** The key's UTF-16 code units, big-endian. */
export function encodeKey(key: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(2 * key.length);
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    out[2 * i] = unit >> 8;
    out[2 * i + 1] = unit & 0xff;
  }
  return out;
}

/** Code units turned into a string per call of String.fromCharCode (an argument list's size). */
const UNITS_PER_CALL = 4096;

/** The key stored as `bytes` (an even number of them). */
export function decodeKey(bytes: Uint8Array): string {
  if (bytes.length % 2 !== 0) throw new RangeError(`a stored key has an even number of bytes, not ${bytes.length}`);
  const units = bytes.length / 2;
  let out = '';
  const chunk: number[] = [];
  for (let i = 0; i < units; i++) {
    chunk.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
    if (chunk.length === UNITS_PER_CALL || i === units - 1) {
      out += String.fromCharCode(...chunk);
      chunk.length = 0;
    }
  }
  return out;
}
