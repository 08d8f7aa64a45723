// UTF-8 helpers for the KV layer. Hand-rolled because they sit on the hot path (every key and
// value of every command passes through them) and because the runtimes' TextEncoder silently
// replaces a lone surrogate with U+FFFD: a key must never change its identity on the way
// through the log, so such strings are refused instead.

/**
 * Exact UTF-8 byte length of `s`, or -1 when `s` holds a lone surrogate (not encodable as
 * UTF-8 without loss).
 */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n <= LENGTH_LOOP_CHARS_MAX) return utf8LengthLoop(s);
  if (!isWellFormed(s)) return -1;
  // Native encoding into a scratch buffer beats a JS loop by far (~20 ns flat against
  // ~3.5 ns per character on Node 24); every UTF-16 unit takes at most 3 bytes, so a chunk of
  // CHUNK_CHARS always fits.
  if (n <= CHUNK_CHARS) return encoder.encodeInto(s, scratch).written;
  let bytes = 0;
  for (let i = 0; i < n;) {
    let end = Math.min(i + CHUNK_CHARS, n);
    const last = s.charCodeAt(end - 1);
    if (end < n && last >= 0xd800 && last <= 0xdbff) end--; // keep surrogate pairs whole
    bytes += encoder.encodeInto(s.substring(i, end), scratch).written;
    i = end;
  }
  return bytes;
}

function utf8LengthLoop(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (c < 0xd800 || c > 0xdfff) {
      bytes += 2;
    } else if (c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d < 0xdc00 || d > 0xdfff) return -1;
      // A surrogate pair: 2 UTF-16 units, 4 UTF-8 bytes.
      bytes += 2;
      i++;
    } else {
      return -1;
    }
  }
  return bytes;
}

/** String.prototype.isWellFormed (ES2024, in every runtime metcd supports), typed here as lib is ES2023. */
function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

const encoder = new TextEncoder();
// fatal: garbage bytes are an error, not U+FFFD. ignoreBOM: a key that starts with U+FEFF
// keeps it (the default would strip it and change the key).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const scratch = new Uint8Array(48 * 1024);
const CHUNK_CHARS = scratch.length / 3;

// Below these lengths a JS loop beats the TextEncoder/TextDecoder call (and subarray)
// overhead; above, the native code wins by far (measured on Node 24: ~100 ns per call
// whatever the length up to ~1 KB, against ~3-6 ns per character for the loops).
const WRITE_LOOP_CHARS_MAX = 16;
const LENGTH_LOOP_CHARS_MAX = 16;
const READ_LOOP_BYTES_MAX = 12;

/**
 * Write `s` (whose UTF-8 length is `byteLength`, from utf8Length) at `offset`.
 * Returns the offset after it.
 */
export function writeUtf8(out: Uint8Array, offset: number, s: string, byteLength: number): number {
  if (byteLength === s.length && byteLength <= WRITE_LOOP_CHARS_MAX) {
    for (let i = 0; i < s.length; i++) out[offset + i] = s.charCodeAt(i);
    return offset + byteLength;
  }
  const { written } = encoder.encodeInto(s, out.subarray(offset, offset + byteLength));
  return offset + written;
}

/** Decode `length` bytes at `offset`; throws TypeError on invalid UTF-8. */
export function readUtf8(bytes: Uint8Array, offset: number, length: number): string {
  if (length <= READ_LOOP_BYTES_MAX) {
    let s = '';
    for (let i = 0; i < length; i++) {
      const b = bytes[offset + i]!;
      if (b >= 0x80) return decoder.decode(bytes.subarray(offset, offset + length));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decoder.decode(bytes.subarray(offset, offset + length));
}
