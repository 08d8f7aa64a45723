// Variable-length unsigned integers (LEB128, little-endian groups of 7 bits) for the KV codec.
// Numbers go up to Number.MAX_SAFE_INTEGER (2^53 - 1, at most 8 bytes), so the arithmetic uses
// division rather than 32-bit bit operations above 2^31.

import { KvCodecError, KvCodecTruncatedError } from './errors.ts';

/** Longest varuint: ceil(53 / 7) bytes. */
export const VARUINT_BYTES_MAX = 8;

/** Encoded size of a non-negative safe integer. */
export function varuintBytes(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x20_0000) return 3;
  if (n < 0x1000_0000) return 4;
  let bytes = 4;
  let rest = Math.floor(n / 0x1000_0000);
  while (rest > 0) {
    bytes++;
    rest = Math.floor(rest / 0x80);
  }
  return bytes;
}

/** Write `n` (a non-negative safe integer) at `offset`; returns the offset after it. */
export function writeVaruint(out: Uint8Array, offset: number, n: number): number {
  while (n >= 0x80) {
    out[offset++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[offset++] = n;
  return offset;
}

/**
 * A cursor over bytes being decoded. Every read checks bounds and throws KvCodecError: a
 * KvCodecTruncatedError where the bytes end too soon (more of them could complete the read).
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  offset: number;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.offset = 0;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  u8(): number {
    if (this.offset >= this.bytes.length) throw new KvCodecTruncatedError('truncated', this.offset + 1);
    return this.bytes[this.offset++]!;
  }

  varuint(): number {
    const bytes = this.bytes;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < VARUINT_BYTES_MAX; i++) {
      if (this.offset >= bytes.length) throw new KvCodecTruncatedError('truncated varuint', this.offset + 1);
      const b = bytes[this.offset++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        // Reject non-minimal encodings (a trailing zero group) so every number has exactly
        // one encoding and decode(encode(x)) round-trips byte for byte.
        if (b === 0 && i > 0) throw new KvCodecError('non-minimal varuint');
        if (result > Number.MAX_SAFE_INTEGER) throw new KvCodecError('varuint above 2^53');
        return result;
      }
      scale *= 0x80;
    }
    throw new KvCodecError('varuint too long');
  }

  /** A length that must fit in the remaining bytes (guards allocations against garbage). */
  length(): number {
    const n = this.varuint();
    if (n > this.remaining) throw new KvCodecTruncatedError(`length ${n} beyond the end of the input`, this.offset + n);
    return n;
  }

  /** A count of items that each take at least `itemBytesMin` bytes. */
  count(itemBytesMin: number): number {
    const n = this.varuint();
    if (n * itemBytesMin > this.remaining)
      throw new KvCodecTruncatedError(`count ${n} beyond the end of the input`, this.offset + n * itemBytesMin);
    return n;
  }
}
