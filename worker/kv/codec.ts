// Binary encodings of KV commands (the bytes of every normal Raft entry: the hot path) and of
// the whole KV state (snapshot bytes). Hand-rolled rather than JSON: for a stamped put of a
// 30-byte key and a 100-byte value, 144 bytes instead of 199, decoding ~2x and encoding ~1.3x
// faster (Node 24; measure with node_modules/.bin/node test/kv/bench.ts). Encoding is bound by
// the allocation of the output: Node puts a Uint8Array over 64 bytes off-heap at ~0.5 µs.
// (A shared slab would avoid that, but a view pins its whole slab, and structured clone,
// as Durable Object storage uses, copies the whole slab: not worth the trap.)
//
// The codec checks structure only (every field present, in range, valid UTF-8, nothing
// trailing); what a command means and whether it is within limits is validate.ts's job, so a
// structurally valid command that breaks a limit still decodes and is answered `invalid` by
// apply. Numbers are varuints (bytes.ts), strings are a varuint byte length then UTF-8.
//
// Command, version 1:
//   u8 version=1, u8 flags (bit0 delete, bit1 compare, bit2 stamp; others zero)
//   [stamp]   string client, varuint seq
//   [compare] string key, varuint modRevision
//   varuint count, then count × (string key [, string value when put])
//
// Command, version 2 (the rare commands: tokens, compaction, leases, a put with a lease): u8 version=2, then the
// command as UTF-8 JSON. The codec checks it is a JSON object with a string op; apply's
// validation judges the rest.
//
// State, version 1 (records strictly sorted by key, sessions strictly sorted by client, so
// the same state always gives the same bytes):
//   u8 'S', u8 version=1, varuint revision
//   varuint records, each: string key, string value, varuint createRevision, modRevision, version
//   varuint sessions, each: string client, varuint seq, varuint lastIndex, result
//   result: u8 tag (0 put, 1 delete, 2 compare-failed, 3 session-expired, 4 invalid, 5 txn,
//           6 lease-not-found), varuint revision, then: delete → varuint deleted;
//           compare-failed → varuint actual; session-expired / invalid / lease-not-found → string
//           message; txn → string JSON {succeeded, results}

import type { KeyRecord, KvCommand, KvResult, KvState, SessionRecord, TxnOpResult } from './types.ts';
import { ByteReader, varuintBytes, writeVaruint } from './bytes.ts';
import { KvCodecError } from './errors.ts';
import { readUtf8, utf8Length, writeUtf8 } from './utf8.ts';

export { KvCodecError } from './errors.ts';

export const COMMAND_FORMAT_VERSION = 1;
const JSON_COMMAND_FORMAT_VERSION = 2;
/** The version byte before a JSON command. */
export const JSON_COMMAND_HEADER_BYTES = 1;
export const STATE_FORMAT_VERSION = 1;
const STATE_MAGIC = 0x53; // 'S': a state can never be mistaken for a command

/** Version and flags bytes. */
export const COMMAND_HEADER_BYTES = 2;
const FLAG_DELETE = 1;
const FLAG_COMPARE = 2;
const FLAG_STAMP = 4;
const FLAGS_KNOWN = FLAG_DELETE | FLAG_COMPARE | FLAG_STAMP;

// UTF-8 lengths measured in encodeCommand's first pass, reused by its second: no per-call
// allocation beyond the output itself.
const scratchLengths: number[] = [];

function measured(s: string, what: string): number {
  const n = utf8Length(s);
  if (n < 0) throw new KvCodecError(`${what} is not valid UTF-16 (lone surrogate)`);
  return n;
}

/** Encode a command (structurally valid: run validateCommand first). */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  if ((cmd.op !== 'put' && cmd.op !== 'delete') || (cmd.op === 'put' && cmd.lease !== undefined)) return encodeJsonCommand(cmd);
  const lengths = scratchLengths;
  let li = 0;
  let bytes = COMMAND_HEADER_BYTES;
  let flags = 0;
  const stamp = cmd.stamp;
  if (stamp !== undefined) {
    flags |= FLAG_STAMP;
    const n = (lengths[li++] = measured(stamp.client, 'client id'));
    bytes += varuintBytes(n) + n + varuintBytes(stamp.seq);
  }
  const compare = cmd.compare;
  if (compare !== undefined) {
    flags |= FLAG_COMPARE;
    const n = (lengths[li++] = measured(compare.key, 'compare key'));
    bytes += varuintBytes(n) + n + varuintBytes(compare.modRevision);
  }
  if (cmd.op === 'put') {
    const pairs = cmd.pairs;
    bytes += varuintBytes(pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i]!;
      const k = (lengths[li++] = measured(pair[0], 'key'));
      const v = (lengths[li++] = measured(pair[1], 'value'));
      bytes += varuintBytes(k) + k + varuintBytes(v) + v;
    }
  } else {
    flags |= FLAG_DELETE;
    const keys = cmd.keys;
    bytes += varuintBytes(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const k = (lengths[li++] = measured(keys[i]!, 'key'));
      bytes += varuintBytes(k) + k;
    }
  }

  const out = new Uint8Array(bytes);
  out[0] = COMMAND_FORMAT_VERSION;
  out[1] = flags;
  let o = COMMAND_HEADER_BYTES;
  li = 0;
  if (stamp !== undefined) {
    o = writeString(out, o, stamp.client, lengths[li++]!);
    o = writeVaruint(out, o, stamp.seq);
  }
  if (compare !== undefined) {
    o = writeString(out, o, compare.key, lengths[li++]!);
    o = writeVaruint(out, o, compare.modRevision);
  }
  if (cmd.op === 'put') {
    const pairs = cmd.pairs;
    o = writeVaruint(out, o, pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i]!;
      o = writeString(out, o, pair[0], lengths[li++]!);
      o = writeString(out, o, pair[1], lengths[li++]!);
    }
  } else {
    const keys = cmd.keys;
    o = writeVaruint(out, o, keys.length);
    for (let i = 0; i < keys.length; i++) o = writeString(out, o, keys[i]!, lengths[li++]!);
  }
  // Do not keep references to huge scratch arrays after a huge command.
  if (scratchLengths.length > 4096) scratchLengths.length = 0;
  return out;
}

function encodeJsonCommand(cmd: KvCommand): Uint8Array {
  const json = JSON.stringify(cmd);
  const n = measured(json, 'command');
  const out = new Uint8Array(JSON_COMMAND_HEADER_BYTES + n);
  out[0] = JSON_COMMAND_FORMAT_VERSION;
  writeUtf8(out, JSON_COMMAND_HEADER_BYTES, json, n);
  return out;
}

function decodeJsonCommand(bytes: Uint8Array): KvCommand {
  let cmd: unknown;
  try {
    cmd = JSON.parse(readUtf8(bytes, JSON_COMMAND_HEADER_BYTES, bytes.length - JSON_COMMAND_HEADER_BYTES));
  } catch (e) {
    if (e instanceof SyntaxError) throw new KvCodecError('a JSON command that is not JSON');
    throw e;
  }
  if (typeof cmd !== 'object' || cmd === null || Array.isArray(cmd) || typeof (cmd as { op?: unknown }).op !== 'string') {
    throw new KvCodecError('a JSON command must be an object with a string op');
  }
  return cmd as KvCommand;
}

function writeString(out: Uint8Array, offset: number, s: string, byteLength: number): number {
  offset = writeVaruint(out, offset, byteLength);
  return writeUtf8(out, offset, s, byteLength);
}

function readString(r: ByteReader): string {
  const n = r.length();
  const s = readUtf8(r.bytes, r.offset, n);
  r.offset += n;
  return s;
}

/** Decode a command; throws KvCodecError on anything but a well-formed encoding. */
export function decodeCommand(bytes: Uint8Array): KvCommand {
  try {
    return decodeCommandOrThrow(bytes);
  } catch (e) {
    throw asCodecError(e);
  }
}

function decodeCommandOrThrow(bytes: Uint8Array): KvCommand {
  const r = new ByteReader(bytes);
  const version = r.u8();
  if (version === JSON_COMMAND_FORMAT_VERSION) return decodeJsonCommand(bytes);
  if (version !== COMMAND_FORMAT_VERSION) throw new KvCodecError(`unknown command format version ${version}`);
  const flags = r.u8();
  if ((flags & ~FLAGS_KNOWN) !== 0) throw new KvCodecError(`unknown command flags ${flags}`);
  let stamp: { client: string; seq: number } | undefined;
  if ((flags & FLAG_STAMP) !== 0) {
    const client = readString(r);
    stamp = { client, seq: r.varuint() };
  }
  let compare: { key: string; modRevision: number } | undefined;
  if ((flags & FLAG_COMPARE) !== 0) {
    const key = readString(r);
    compare = { key, modRevision: r.varuint() };
  }
  let cmd: KvCommand;
  if ((flags & FLAG_DELETE) === 0) {
    const count = r.count(2);
    const pairs: Array<[string, string]> = new Array(count);
    for (let i = 0; i < count; i++) {
      const key = readString(r);
      pairs[i] = [key, readString(r)];
    }
    cmd = { op: 'put', pairs };
  } else {
    const count = r.count(1);
    const keys: string[] = new Array(count);
    for (let i = 0; i < count; i++) keys[i] = readString(r);
    cmd = { op: 'delete', keys };
  }
  if (r.remaining !== 0) throw new KvCodecError(`${r.remaining} trailing bytes after the command`);
  if (compare !== undefined) cmd.compare = compare;
  if (stamp !== undefined) cmd.stamp = stamp;
  return cmd;
}

/** `e` as a KvCodecError (a TypeError is malformed UTF-8); anything else is rethrown. */
export function asCodecError(e: unknown): KvCodecError {
  if (e instanceof KvCodecError) return e;
  // TextDecoder with fatal: true throws a TypeError on malformed UTF-8.
  if (e instanceof TypeError) return new KvCodecError('invalid UTF-8');
  throw e;
}

// ---- state (snapshots) -------------------------------------------------------------------

const TAG_PUT = 0;
const TAG_DELETE = 1;
const TAG_COMPARE_FAILED = 2;
const TAG_SESSION_EXPIRED = 3;
const TAG_INVALID = 4;
const TAG_TXN = 5;
const TAG_LEASE_NOT_FOUND = 6;

function byFirst<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Entries strictly sorted by their string key, sorting a copy only when needed. */
function canonical<T>(entries: Array<[string, T]>, what: string): Array<[string, T]> {
  let sorted = true;
  for (let i = 1; i < entries.length; i++) {
    if (!(entries[i - 1]![0] < entries[i]![0])) {
      sorted = false;
      break;
    }
  }
  if (sorted) return entries;
  const copy = entries.slice().sort(byFirst);
  for (let i = 1; i < copy.length; i++) {
    if (copy[i - 1]![0] === copy[i]![0]) throw new KvCodecError(`duplicate ${what} ${JSON.stringify(copy[i]![0])}`);
  }
  return copy;
}

function stringBytes(s: string, what: string): number {
  const n = measured(s, what);
  return varuintBytes(n) + n;
}

function resultBytes(res: KvResult): number {
  let bytes = 1 + varuintBytes(res.revision);
  if (res.ok && (res.op === 'compact' || res.op === 'lease-grant')) throw new KvCodecError(`a ${res.op} result is never kept in a session`);
  if (res.ok) {
    if (res.op === 'delete') bytes += varuintBytes(res.deleted);
    if (res.op === 'txn') bytes += stringBytes(txnResultJson(res), 'transaction result');
  } else if (res.code === 'compare-failed') {
    bytes += varuintBytes(res.actual);
  } else {
    bytes += stringBytes(res.message, 'message');
  }
  return bytes;
}

/** Encode a whole state. Deterministic: the same state always gives the same bytes. */
export function encodeState(state: KvState): Uint8Array {
  const encoder = new StateEncoder(state.revision);
  encoder.add(canonical(state.records, 'key'));
  return encoder.finish(state.sessions);
}

/**
 * Encodes a state a slice of records at a time (from a StateView), to exactly the bytes
 * encodeState gives for the same state: add() records in strictly increasing key order over
 * any number of calls, then finish() with the sessions.
 */
export class StateEncoder {
  private readonly revision: number;
  private readonly chunks: Uint8Array[] = [];
  private chunkBytes = 0;
  private records = 0;
  private lastKey: string | null = null;

  constructor(revision: number) {
    this.revision = revision;
  }

  add(records: ReadonlyArray<readonly [string, KeyRecord]>): void {
    const slice = encodeRecords(records, this.lastKey);
    if (slice === null) return;
    this.chunks.push(slice.bytes);
    this.chunkBytes += slice.bytes.length;
    this.records += records.length;
    this.lastKey = slice.lastKey;
  }

  finish(sessionsIn: Array<[string, SessionRecord]>): Uint8Array {
    const head = encodeStateHead(this.revision, this.records);
    const tail = encodeSessions(sessionsIn);
    const out = new Uint8Array(head.length + this.chunkBytes + tail.length);
    out.set(head, 0);
    let o = head.length;
    for (const chunk of this.chunks) {
      out.set(chunk, o);
      o += chunk.length;
    }
    out.set(tail, o);
    this.chunks.length = 0;
    return out;
  }
}

/**
 * Encodes a state as a sequence of byte chunks that, concatenated, are exactly encodeState's
 * bytes for the same state, without holding them all: for streaming a backup from a StateView
 * (worker/backup/). The record count comes first in the encoding, so it must be known up front
 * (StateView.recordCount); slice() takes records in strictly increasing key order, and tail()
 * refuses a count that does not match.
 */
export class StateStreamEncoder {
  private readonly recordCount: number;
  private records = 0;
  private lastKey: string | null = null;

  constructor(recordCount: number) {
    this.recordCount = recordCount;
  }

  /** The bytes before the records. */
  static head(revision: number, recordCount: number): Uint8Array {
    return encodeStateHead(revision, recordCount);
  }

  /** The next records' bytes (empty for none). */
  slice(records: ReadonlyArray<readonly [string, KeyRecord]>): Uint8Array {
    const slice = encodeRecords(records, this.lastKey);
    if (slice === null) return new Uint8Array(0);
    this.records += records.length;
    if (this.records > this.recordCount) throw new KvCodecError(`more than the ${this.recordCount} records announced`);
    this.lastKey = slice.lastKey;
    return slice.bytes;
  }

  /** The sessions: the bytes after the records. */
  tail(sessions: Array<[string, SessionRecord]>): Uint8Array {
    if (this.records !== this.recordCount) throw new KvCodecError(`${this.records} records encoded, ${this.recordCount} announced`);
    return encodeSessions(sessions);
  }
}

function encodeStateHead(revision: number, recordCount: number): Uint8Array {
  const out = new Uint8Array(2 + varuintBytes(revision) + varuintBytes(recordCount));
  out[0] = STATE_MAGIC;
  out[1] = STATE_FORMAT_VERSION;
  writeVaruint(out, writeVaruint(out, 2, revision), recordCount);
  return out;
}

/** Records in strictly increasing key order after `lastKey`; null for none. */
function encodeRecords(
  records: ReadonlyArray<readonly [string, KeyRecord]>,
  lastKey: string | null,
): { bytes: Uint8Array; lastKey: string } | null {
  if (records.length === 0) return null;
  const lengths = new Array<number>(2 * records.length);
  let bytes = 0;
  let last = lastKey;
  for (let i = 0; i < records.length; i++) {
    const [key, rec] = records[i]!;
    if (last !== null && !(last < key)) {
      throw new KvCodecError(last === key ? `duplicate key ${JSON.stringify(key)}` : 'state records out of key order');
    }
    last = key;
    const k = measured(key, 'key');
    const v = measured(rec.value, 'value');
    lengths[2 * i] = k;
    lengths[2 * i + 1] = v;
    bytes += varuintBytes(k) + k + varuintBytes(v) + v;
    bytes += varuintBytes(rec.createRevision) + varuintBytes(rec.modRevision) + varuintBytes(rec.version);
  }
  const out = new Uint8Array(bytes);
  let o = 0;
  for (let i = 0; i < records.length; i++) {
    const [key, rec] = records[i]!;
    o = writeString(out, o, key, lengths[2 * i]!);
    o = writeString(out, o, rec.value, lengths[2 * i + 1]!);
    o = writeVaruint(out, o, rec.createRevision);
    o = writeVaruint(out, o, rec.modRevision);
    o = writeVaruint(out, o, rec.version);
  }
  if (o !== bytes) throw new Error(`StateEncoder: wrote ${o} bytes, measured ${bytes}`);
  return { bytes: out, lastKey: last! };
}

/** The session count and the sessions, sorted by client. */
function encodeSessions(sessionsIn: Array<[string, SessionRecord]>): Uint8Array {
  const sessions = canonical(sessionsIn, 'client');
  let bytes = varuintBytes(sessions.length);
  for (const [client, s] of sessions) {
    bytes += stringBytes(client, 'client id') + varuintBytes(s.seq) + varuintBytes(s.lastIndex) + resultBytes(s.result);
  }
  const out = new Uint8Array(bytes);
  let o = writeVaruint(out, 0, sessions.length);
  for (const [client, s] of sessions) {
    o = writeString(out, o, client, utf8Length(client));
    o = writeVaruint(out, o, s.seq);
    o = writeVaruint(out, o, s.lastIndex);
    o = writeResult(out, o, s.result);
  }
  if (o !== bytes) throw new Error(`StateEncoder: wrote ${o} bytes, measured ${bytes}`);
  return out;
}

/** A transaction's answer in a session: its outcome and results, as JSON (they are nested). */
function txnResultJson(res: Extract<KvResult, { op: 'txn' }>): string {
  return JSON.stringify({ succeeded: res.succeeded, results: res.results });
}

function writeResult(out: Uint8Array, o: number, res: KvResult): number {
  if (res.ok && res.op === 'txn') {
    out[o++] = TAG_TXN;
    o = writeVaruint(out, o, res.revision);
    const json = txnResultJson(res);
    return writeString(out, o, json, utf8Length(json));
  }
  if (res.ok) {
    out[o++] = res.op === 'put' ? TAG_PUT : TAG_DELETE;
    o = writeVaruint(out, o, res.revision);
    if (res.op === 'delete') o = writeVaruint(out, o, res.deleted);
    return o;
  }
  if (res.code === 'compare-failed') {
    out[o++] = TAG_COMPARE_FAILED;
    o = writeVaruint(out, o, res.revision);
    return writeVaruint(out, o, res.actual);
  }
  out[o++] = res.code === 'session-expired' ? TAG_SESSION_EXPIRED : res.code === 'lease-not-found' ? TAG_LEASE_NOT_FOUND : TAG_INVALID;
  o = writeVaruint(out, o, res.revision);
  return writeString(out, o, res.message, utf8Length(res.message));
}

/** Decode a state; throws KvCodecError on garbage or on a state that breaks its invariants. */
export function decodeState(bytes: Uint8Array): KvState {
  try {
    return decodeStateOrThrow(bytes);
  } catch (e) {
    throw asCodecError(e);
  }
}

function decodeStateOrThrow(bytes: Uint8Array): KvState {
  const r = new ByteReader(bytes);
  const revision = readStateHead(r);
  const recordCount = r.count(5);
  const records: Array<[string, KeyRecord]> = new Array(recordCount);
  let prevKey: string | null = null;
  for (let i = 0; i < recordCount; i++) {
    const record = readStateRecord(r, revision, prevKey);
    records[i] = record;
    prevKey = record[0];
  }
  const sessionCount = r.count(5);
  const sessions: Array<[string, SessionRecord]> = new Array(sessionCount);
  let prevClient: string | null = null;
  for (let i = 0; i < sessionCount; i++) {
    const session = readStateSession(r, prevClient);
    sessions[i] = session;
    prevClient = session[0];
  }
  if (r.remaining !== 0) throw new KvCodecError(`${r.remaining} trailing bytes after the state`);
  return { revision, records, sessions };
}

// The state's parts, read one at a time by decodeState and by a stream decoder
// (state-stream-decoder.ts), which reads the record and session counts as plain varuints: it
// cannot check them against bytes that have not arrived yet.

/** Magic, version and revision (the bytes before the record count); returns the revision. */
export function readStateHead(r: ByteReader): number {
  if (r.u8() !== STATE_MAGIC) throw new KvCodecError('not a KV state (bad magic byte)');
  const version = r.u8();
  if (version !== STATE_FORMAT_VERSION) throw new KvCodecError(`unknown state format version ${version}`);
  return r.varuint();
}

/** One record of a state at `revision`, whose key must follow `prevKey` (null for the first). */
export function readStateRecord(r: ByteReader, revision: number, prevKey: string | null): [string, KeyRecord] {
  const key = readString(r);
  if (prevKey !== null && !(prevKey < key)) throw new KvCodecError('records not strictly sorted by key');
  const value = readString(r);
  const createRevision = r.varuint();
  const modRevision = r.varuint();
  const version = r.varuint();
  if (!(createRevision >= 1 && createRevision <= modRevision && modRevision <= revision && version >= 1)) {
    throw new KvCodecError(`record ${JSON.stringify(key)} breaks the revision invariants`);
  }
  return [key, { value, createRevision, modRevision, version }];
}

/** One session, whose client must follow `prevClient` (null for the first). */
export function readStateSession(r: ByteReader, prevClient: string | null): [string, SessionRecord] {
  const client = readString(r);
  if (prevClient !== null && !(prevClient < client)) throw new KvCodecError('sessions not strictly sorted by client');
  const seq = r.varuint();
  const lastIndex = r.varuint();
  const result = readResult(r);
  if (seq < 1 || lastIndex < 1) throw new KvCodecError(`session ${JSON.stringify(client)} has seq or lastIndex 0`);
  return [client, { seq, result, lastIndex }];
}

function readResult(r: ByteReader): KvResult {
  const tag = r.u8();
  const revision = r.varuint();
  switch (tag) {
    case TAG_PUT:
      return { ok: true, op: 'put', revision };
    case TAG_DELETE:
      return { ok: true, op: 'delete', revision, deleted: r.varuint() };
    case TAG_COMPARE_FAILED:
      return { ok: false, code: 'compare-failed', revision, actual: r.varuint() };
    case TAG_SESSION_EXPIRED:
      return { ok: false, code: 'session-expired', revision, message: readString(r) };
    case TAG_INVALID:
      return { ok: false, code: 'invalid', revision, message: readString(r) };
    case TAG_TXN: {
      let parsed: { succeeded?: unknown; results?: unknown };
      try {
        parsed = JSON.parse(readString(r)) as typeof parsed;
      } catch (e) {
        if (e instanceof SyntaxError) throw new KvCodecError('a transaction result that is not JSON');
        throw e;
      }
      if (parsed === null || typeof parsed.succeeded !== 'boolean' || !Array.isArray(parsed.results))
        throw new KvCodecError('malformed transaction result');
      return { ok: true, op: 'txn', revision, succeeded: parsed.succeeded, results: parsed.results as TxnOpResult[] };
    }
    case TAG_LEASE_NOT_FOUND:
      return { ok: false, code: 'lease-not-found', revision, message: readString(r) };
    default:
      throw new KvCodecError(`unknown result tag ${tag}`);
  }
}
