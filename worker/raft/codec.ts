// Binary wire encoding of Raft messages and conf changes.
//
// Layout (all integers are unsigned LEB128 varints limited to safe integers; strings and byte
// arrays are a varint length followed by the bytes):
//   messages   := VERSION count message*
//   message    := typeCode from to term fieldMask [index] [logTerm] [entries] [commit]
//                 [hintIndex] [hintTerm] [context] [snapshot]      (present per fieldMask bit;
//                 reject, transfer and quiesce are bits alone)
//   entries    := count (term index typeCode data)*
//   snapshot   := meta offset data done
//   meta       := index term membership
//   membership := count voter* count learner* count (id address)*
// Decoding checks every length against the bytes left before allocating, rejects trailing
// bytes, and then runs the same semantic validation step() uses (validate.ts), whose string
// limits are in UTF-16 code units (at most 3 UTF-8 bytes each, hence the `* 3` below).

import { MESSAGE_TYPES } from './types.ts';
import type { ConfChange, ConfChangeType, Entry, Membership, Message, MessageType, SnapshotChunk, SnapshotMeta } from './types.ts';
import {
  validateMembership,
  validateMessage,
  validateNodeId,
  NODE_ID_BYTES_MAX,
  ADDRESS_BYTES_MAX,
  CONTEXT_BYTES_MAX,
} from './validate.ts';

export class RaftCodecError extends Error {
  override readonly name = 'RaftCodecError';
}

const MESSAGES_VERSION = 1;
const CONF_CHANGE_VERSION = 1;

const MESSAGE_TYPE_CODES = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));
const CONF_CHANGE_TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'promoteLearner', 'removeNode'];

const F_INDEX = 1 << 0;
const F_LOG_TERM = 1 << 1;
const F_ENTRIES = 1 << 2;
const F_COMMIT = 1 << 3;
const F_REJECT = 1 << 4;
const F_HINT_INDEX = 1 << 5;
const F_HINT_TERM = 1 << 6;
const F_CONTEXT = 1 << 7;
const F_SNAPSHOT = 1 << 8;
const F_TRANSFER = 1 << 9;
const F_QUIESCE = 1 << 10;
const F_ALL = (1 << 11) - 1;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Strings up to this long are read as ASCII by hand when they are (ids), without TextDecoder. */
const ASCII_FAST_MAX = 32;

class Writer {
  buf: Uint8Array;
  pos = 0;

  constructor(sizeHint: number) {
    this.buf = new Uint8Array(Math.max(64, sizeHint));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RaftCodecError(`cannot encode ${v} as an unsigned integer`);
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(s: string): void {
    // Node ids and addresses are short ASCII: written in place, no TextEncoder call (which was
    // 6% of a leader's CPU under write load, for two ids per message).
    const n = s.length;
    if (n < 0x80) {
      this.ensure(1 + n);
      const start = this.pos;
      this.buf[this.pos++] = n;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[this.pos++] = c;
      }
      if (i === n) return;
      this.pos = start;
    }
    this.bytes(utf8Encoder.encode(s));
  }

  /** The encoded bytes; a view when the buffer is mostly used (structured clone and .buffer copy all of it). */
  finish(): Uint8Array {
    return this.pos >= this.buf.length * 0.75 ? this.buf.subarray(0, this.pos) : this.buf.slice(0, this.pos);
  }
}

class Reader {
  readonly buf: Uint8Array;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new RaftCodecError('truncated input');
    return this.buf[this.pos++]!;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new RaftCodecError('integer out of range');
        if (i > 0 && b === 0) throw new RaftCodecError('non-canonical integer');
        return result;
      }
      scale *= 0x80;
    }
    throw new RaftCodecError('integer too long');
  }

  /** A count of items that each take at least `minBytes`: bounded by the bytes left. */
  count(minBytes: number): number {
    const n = this.varint();
    if (n * minBytes > this.remaining()) throw new RaftCodecError('count exceeds input');
    return n;
  }

  /** A view into the input, not a copy (see decodeMessages). */
  bytes(max: number): Uint8Array {
    const n = this.varint();
    if (n > max) throw new RaftCodecError(`field of ${n} bytes exceeds ${max}`);
    if (n > this.remaining()) throw new RaftCodecError('truncated input');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(max: number): string {
    const n = this.varint();
    if (n > max) throw new RaftCodecError(`string of ${n} bytes exceeds ${max}`);
    if (n > this.remaining()) throw new RaftCodecError('truncated input');
    if (n <= ASCII_FAST_MAX) {
      const start = this.pos;
      let s = '';
      for (let i = start; i < start + n; i++) {
        const c = this.buf[i]!;
        if (c >= 0x80) {
          s = '';
          break;
        }
        s += String.fromCharCode(c);
      }
      if (s.length === n) {
        this.pos += n;
        return s;
      }
    }
    let s: string;
    try {
      s = utf8Decoder.decode(this.buf.subarray(this.pos, this.pos + n));
    } catch {
      throw new RaftCodecError('invalid UTF-8');
    }
    this.pos += n;
    return s;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new RaftCodecError('invalid boolean');
    return b === 1;
  }
}

// ---- messages ----

/** Bytes a message will roughly take, so the writer allocates once. */
function sizeHint(m: Message): number {
  let n = 64 + (m.context?.length ?? 0) * 3;
  if (m.entries !== undefined) for (const e of m.entries) n += 10 + e.data.length;
  if (m.snapshot !== undefined) n += 256 + m.snapshot.data.length;
  return n;
}

export function encodeMessages(msgs: Message[]): Uint8Array {
  let hint = 8;
  for (const m of msgs) hint += sizeHint(m);
  const w = new Writer(hint);
  w.u8(MESSAGES_VERSION);
  w.varint(msgs.length);
  for (const m of msgs) writeMessage(w, m);
  return w.finish();
}

/**
 * Entry and snapshot data in the result are views into `bytes` (no copy per entry): the caller
 * hands over `bytes` and must not modify it afterwards.
 */
export function decodeMessages(bytes: Uint8Array): Message[] {
  if (!(bytes instanceof Uint8Array)) throw new RaftCodecError('input is not bytes');
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== MESSAGES_VERSION) throw new RaftCodecError(`unknown messages version ${version}`);
  const n = r.count(5);
  const out: Message[] = [];
  for (let i = 0; i < n; i++) {
    const m = readMessage(r);
    const problem = validateMessage(m);
    if (problem !== null) throw new RaftCodecError(`message ${i}: ${problem}`);
    out.push(m);
  }
  if (r.remaining() !== 0) throw new RaftCodecError('trailing bytes');
  return out;
}

function writeMessage(w: Writer, m: Message): void {
  const code = MESSAGE_TYPE_CODES.get(m.type);
  if (code === undefined) throw new RaftCodecError(`unknown message type ${String(m.type)}`);
  w.u8(code);
  w.string(m.from);
  w.string(m.to);
  w.varint(m.term);
  let mask = 0;
  if (m.index !== undefined) mask |= F_INDEX;
  if (m.logTerm !== undefined) mask |= F_LOG_TERM;
  if (m.entries !== undefined) mask |= F_ENTRIES;
  if (m.commit !== undefined) mask |= F_COMMIT;
  if (m.reject === true) mask |= F_REJECT;
  if (m.hintIndex !== undefined) mask |= F_HINT_INDEX;
  if (m.hintTerm !== undefined) mask |= F_HINT_TERM;
  if (m.context !== undefined) mask |= F_CONTEXT;
  if (m.snapshot !== undefined) mask |= F_SNAPSHOT;
  if (m.transfer === true) mask |= F_TRANSFER;
  if (m.quiesce === true) mask |= F_QUIESCE;
  w.varint(mask);
  if (m.index !== undefined) w.varint(m.index);
  if (m.logTerm !== undefined) w.varint(m.logTerm);
  if (m.entries !== undefined) {
    w.varint(m.entries.length);
    for (const e of m.entries) writeEntry(w, e);
  }
  if (m.commit !== undefined) w.varint(m.commit);
  if (m.hintIndex !== undefined) w.varint(m.hintIndex);
  if (m.hintTerm !== undefined) w.varint(m.hintTerm);
  if (m.context !== undefined) w.string(m.context);
  if (m.snapshot !== undefined) writeChunk(w, m.snapshot);
}

function readMessage(r: Reader): Message {
  const code = r.u8();
  const type = MESSAGE_TYPES[code];
  if (type === undefined) throw new RaftCodecError(`unknown message type code ${code}`);
  const from = r.string(NODE_ID_BYTES_MAX * 3);
  const to = r.string(NODE_ID_BYTES_MAX * 3);
  const term = r.varint();
  const mask = r.varint();
  if ((mask & ~F_ALL) !== 0) throw new RaftCodecError('unknown field bits');
  const m: Message = { type, from, to, term };
  if (mask & F_INDEX) m.index = r.varint();
  if (mask & F_LOG_TERM) m.logTerm = r.varint();
  if (mask & F_ENTRIES) {
    const n = r.count(4);
    const entries: Entry[] = new Array(n);
    for (let i = 0; i < n; i++) entries[i] = readEntry(r);
    m.entries = entries;
  }
  if (mask & F_COMMIT) m.commit = r.varint();
  if (mask & F_REJECT) m.reject = true;
  if (mask & F_HINT_INDEX) m.hintIndex = r.varint();
  if (mask & F_HINT_TERM) m.hintTerm = r.varint();
  if (mask & F_CONTEXT) m.context = r.string(CONTEXT_BYTES_MAX * 3);
  if (mask & F_SNAPSHOT) m.snapshot = readChunk(r);
  if (mask & F_TRANSFER) m.transfer = true;
  if (mask & F_QUIESCE) m.quiesce = true;
  return m;
}

function writeEntry(w: Writer, e: Entry): void {
  w.varint(e.term);
  w.varint(e.index);
  w.u8(e.type === 'conf' ? 1 : 0);
  w.bytes(e.data);
}

function readEntry(r: Reader): Entry {
  const term = r.varint();
  const index = r.varint();
  const t = r.u8();
  if (t > 1) throw new RaftCodecError(`unknown entry type ${t}`);
  const data = r.bytes(Number.MAX_SAFE_INTEGER);
  return { term, index, type: t === 1 ? 'conf' : 'normal', data };
}

function writeChunk(w: Writer, c: SnapshotChunk): void {
  writeMeta(w, c.meta);
  w.varint(c.offset);
  w.bytes(c.data);
  w.u8(c.done ? 1 : 0);
}

function readChunk(r: Reader): SnapshotChunk {
  const meta = readMeta(r);
  const offset = r.varint();
  const data = r.bytes(Number.MAX_SAFE_INTEGER);
  const done = r.bool();
  return { meta, offset, data, done };
}

function writeMeta(w: Writer, meta: SnapshotMeta): void {
  w.varint(meta.index);
  w.varint(meta.term);
  writeMembership(w, meta.membership);
}

function readMeta(r: Reader): SnapshotMeta {
  const index = r.varint();
  const term = r.varint();
  const membership = readMembership(r);
  return { index, term, membership };
}

function writeMembership(w: Writer, m: Membership): void {
  w.varint(m.voters.length);
  for (const v of m.voters) w.string(v);
  w.varint(m.learners.length);
  for (const l of m.learners) w.string(l);
  const ids = Object.keys(m.addresses);
  w.varint(ids.length);
  for (const id of ids) {
    w.string(id);
    w.string(m.addresses[id]!);
  }
}

function readMembership(r: Reader): Membership {
  const voters: string[] = [];
  for (let n = r.count(1), i = 0; i < n; i++) voters.push(r.string(NODE_ID_BYTES_MAX * 3));
  const learners: string[] = [];
  for (let n = r.count(1), i = 0; i < n; i++) learners.push(r.string(NODE_ID_BYTES_MAX * 3));
  // A null-prototype record so an id like "__proto__" is an ordinary key.
  const addresses: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let n = r.count(2), i = 0; i < n; i++) {
    const id = r.string(NODE_ID_BYTES_MAX * 3);
    if (Object.hasOwn(addresses, id)) throw new RaftCodecError('duplicate address');
    addresses[id] = r.string(ADDRESS_BYTES_MAX * 3);
  }
  const m = { voters, learners, addresses };
  const problem = validateMembership(m);
  if (problem !== null) throw new RaftCodecError(problem);
  return m;
}

// ---- conf changes (the data of 'conf' entries) ----

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const code = CONF_CHANGE_TYPES.indexOf(cc.type);
  if (code < 0) throw new RaftCodecError(`unknown conf change type ${String(cc.type)}`);
  const w = new Writer(16 + cc.node.length * 3 + (cc.address?.length ?? 0) * 3);
  w.u8(CONF_CHANGE_VERSION);
  w.u8(code);
  w.string(cc.node);
  if (cc.address !== undefined) {
    w.u8(1);
    w.string(cc.address);
  } else {
    w.u8(0);
  }
  return w.finish();
}

/** The conf change in a 'conf' entry, or null when the bytes are not a valid one. */
export function decodeConfChange(bytes: Uint8Array): ConfChange | null {
  try {
    const r = new Reader(bytes);
    if (r.u8() !== CONF_CHANGE_VERSION) return null;
    const type = CONF_CHANGE_TYPES[r.u8()];
    if (type === undefined) return null;
    const node = r.string(NODE_ID_BYTES_MAX * 3);
    if (validateNodeId(node) !== null) return null;
    const cc: ConfChange = { type, node };
    if (r.bool()) {
      cc.address = r.string(ADDRESS_BYTES_MAX * 3);
      if (cc.address.length > ADDRESS_BYTES_MAX) return null;
    }
    if (r.remaining() !== 0) return null;
    return cc;
  } catch (e) {
    if (e instanceof RaftCodecError) return null;
    throw e;
  }
}
