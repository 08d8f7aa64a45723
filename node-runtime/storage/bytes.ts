// A minimal binary writer/reader for the storage engines' own formats: unsigned LEB128
// integers (safe integers up to 2^53, so no 32-bit bit tricks above 2^31), UTF-8 strings and
// byte strings with a length prefix. Readers never trust a length: every read is bounds-checked
// and a short or malformed buffer throws FormatError, which callers turn into a corruption
// report naming the file.

export class FormatError extends Error {
  override name = 'FormatError';
}

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.pos;
  }

  private reserve(bytes: number): void {
    const need = this.pos + bytes;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.reserve(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`uint out of range: ${v}`);
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  bytes(v: Uint8Array): this {
    this.uint(v.length);
    this.reserve(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  str(v: string): this {
    const n = Buffer.byteLength(v, 'utf8');
    this.uint(n);
    this.reserve(n);
    this.buf.write(v, this.pos, n, 'utf8');
    this.pos += n;
    return this;
  }

  /** A view of the bytes written so far (valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of the bytes written so far. */
  finish(): Buffer {
    return Buffer.from(this.view());
  }
}

export class ByteReader {
  private readonly buf: Buffer;
  private pos: number;
  private readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(bytes: number): void {
    if (this.pos + bytes > this.end) {
      throw new FormatError(`truncated: need ${bytes} bytes at ${this.pos}, have ${this.end - this.pos}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  uint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw new FormatError(`uint beyond 2^53 at ${this.pos}`);
        return result;
      }
      scale *= 0x80;
    }
    throw new FormatError(`uint longer than 8 bytes at ${this.pos}`);
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new FormatError(`bad boolean ${b} at ${this.pos - 1}`);
    return b === 1;
  }

  /** A copy, so the result outlives the (possibly reused) source buffer. */
  bytes(): Uint8Array {
    const n = this.uint();
    this.need(n);
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  str(): string {
    const n = this.uint();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** Asserts the whole input was consumed (trailing bytes mean a format mismatch). */
  done(): void {
    if (this.pos !== this.end) throw new FormatError(`${this.end - this.pos} trailing bytes at ${this.pos}`);
  }
}
