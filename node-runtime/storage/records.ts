// Binary encodings of what the engines store: log entries, hard state, snapshots, KV records,
// sessions, whole KV states and save batches. One format for all three engines so a value
// means the same thing everywhere; `seal`/`unseal` add a CRC32 to a single stored value
// (sqlite rows, leveldb values) so bit rot in a B-tree page or an SSTable is caught on load
// instead of being served.

import { crc32 } from 'node:zlib';
import type { Entry, HardState, Membership, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, KvChanges, KvResult, KvState, RecordSummary, SessionRecord } from '../../worker/kv/types.ts';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import { ByteReader, ByteWriter, FormatError } from './bytes.ts';

export function writeEntry(w: ByteWriter, e: Entry): void {
  w.uint(e.index)
    .uint(e.term)
    .u8(e.type === 'conf' ? 1 : 0)
    .bytes(e.data);
}

export function readEntry(r: ByteReader): Entry {
  const index = r.uint();
  const term = r.uint();
  const t = r.u8();
  if (t > 1) throw new FormatError(`bad entry type ${t}`);
  return { index, term, type: t === 1 ? 'conf' : 'normal', data: r.bytes() };
}

export function writeHardState(w: ByteWriter, h: HardState): void {
  w.uint(h.term).str(h.vote).uint(h.commit);
}

export function readHardState(r: ByteReader): HardState {
  return { term: r.uint(), vote: r.str(), commit: r.uint() };
}

function readMembership(r: ByteReader): Membership {
  const m: unknown = JSON.parse(r.str());
  if (typeof m !== 'object' || m === null) throw new FormatError('membership is not an object');
  const { voters, learners, addresses } = m as Membership;
  if (!Array.isArray(voters) || !Array.isArray(learners) || typeof addresses !== 'object' || addresses === null) {
    throw new FormatError('membership lacks voters/learners/addresses');
  }
  return { voters, learners, addresses };
}

export function writeSnapshot(w: ByteWriter, s: Snapshot): void {
  w.uint(s.meta.index).uint(s.meta.term).str(JSON.stringify(s.meta.membership)).bytes(s.data);
}

export function readSnapshot(r: ByteReader): Snapshot {
  const index = r.uint();
  const term = r.uint();
  const membership = readMembership(r);
  return { meta: { index, term, membership }, data: r.bytes() };
}

export function writeKeyRecord(w: ByteWriter, k: KeyRecord): void {
  w.str(k.value).uint(k.createRevision).uint(k.modRevision).uint(k.version);
}

export function readKeyRecord(r: ByteReader): KeyRecord {
  return { value: r.str(), createRevision: r.uint(), modRevision: r.uint(), version: r.uint() };
}

export function writeRecordSummary(w: ByteWriter, s: RecordSummary): void {
  w.uint(s.records).uint(s.internalRecords).uint(s.bytes);
}

export function readRecordSummary(r: ByteReader): RecordSummary {
  const s = { records: r.uint(), internalRecords: r.uint(), bytes: r.uint() };
  if (s.internalRecords > s.records) throw new FormatError(`summary counts ${s.internalRecords} internal of ${s.records} records`);
  return s;
}

export function writeSession(w: ByteWriter, s: SessionRecord): void {
  w.uint(s.seq).uint(s.lastIndex).str(JSON.stringify(s.result));
}

export function readSession(r: ByteReader): SessionRecord {
  const seq = r.uint();
  const lastIndex = r.uint();
  const result = JSON.parse(r.str()) as KvResult;
  if (typeof result !== 'object' || result === null || typeof result.ok !== 'boolean') {
    throw new FormatError('session result is not a KvResult');
  }
  return { seq, lastIndex, result };
}

export function writeKvState(w: ByteWriter, kv: KvState): void {
  w.uint(kv.revision).uint(kv.records.length);
  for (const [key, rec] of kv.records) writeKeyRecord(w.str(key), rec);
  w.uint(kv.sessions.length);
  for (const [client, s] of kv.sessions) writeSession(w.str(client), s);
}

export function readKvState(r: ByteReader): KvState {
  const revision = r.uint();
  const records: KvState['records'] = [];
  for (let n = r.uint(); n > 0; n--) records.push([r.str(), readKeyRecord(r)]);
  const sessions: KvState['sessions'] = [];
  for (let n = r.uint(); n > 0; n--) sessions.push([r.str(), readSession(r)]);
  return { revision, records, sessions };
}

function writeKvChanges(w: ByteWriter, c: KvChanges): void {
  w.uint(c.revision).uint(c.upserts.length);
  for (const [key, rec] of c.upserts) writeKeyRecord(w.str(key), rec);
  w.uint(c.deletes.length);
  for (const key of c.deletes) w.str(key);
  w.uint(c.sessionUpserts.length);
  for (const [client, s] of c.sessionUpserts) writeSession(w.str(client), s);
  w.uint(c.sessionDeletes.length);
  for (const client of c.sessionDeletes) w.str(client);
}

function readKvChanges(r: ByteReader): KvChanges {
  const revision = r.uint();
  const upserts: KvChanges['upserts'] = [];
  for (let n = r.uint(); n > 0; n--) upserts.push([r.str(), readKeyRecord(r)]);
  const deletes: string[] = [];
  for (let n = r.uint(); n > 0; n--) deletes.push(r.str());
  const sessionUpserts: KvChanges['sessionUpserts'] = [];
  for (let n = r.uint(); n > 0; n--) sessionUpserts.push([r.str(), readSession(r)]);
  const sessionDeletes: string[] = [];
  for (let n = r.uint(); n > 0; n--) sessionDeletes.push(r.str());
  return { revision, upserts, deletes, sessionUpserts, sessionDeletes };
}

// Presence bits of a SaveBatch's optional parts.
const HAS_INSTALL = 1;
const HAS_COMPACT = 2;
const HAS_ENTRIES = 4;
const HAS_HARD = 8;
const HAS_KV = 16;
const HAS_APPLIED = 32;
const HAS_META = 64;

export function writeSaveBatch(w: ByteWriter, b: SaveBatch): void {
  const flags =
    (b.installSnapshot ? HAS_INSTALL : 0) |
    (b.compact ? HAS_COMPACT : 0) |
    (b.entries && b.entries.length > 0 ? HAS_ENTRIES : 0) |
    (b.hardState ? HAS_HARD : 0) |
    (b.kv ? HAS_KV : 0) |
    (b.applied !== undefined ? HAS_APPLIED : 0) |
    (b.meta ? HAS_META : 0);
  w.u8(flags);
  if (b.installSnapshot) {
    writeSnapshot(w, b.installSnapshot.snapshot);
    writeKvState(w, b.installSnapshot.kv);
  }
  if (b.compact) writeSnapshot(w, b.compact);
  if (flags & HAS_ENTRIES) {
    w.uint(b.entries!.length);
    for (const e of b.entries!) writeEntry(w, e);
  }
  if (b.hardState) writeHardState(w, b.hardState);
  if (b.kv) writeKvChanges(w, b.kv);
  if (b.applied !== undefined) w.uint(b.applied);
  if (b.meta) {
    const pairs = Object.entries(b.meta);
    w.uint(pairs.length);
    for (const [k, v] of pairs) w.str(k).str(v);
  }
}

export function readSaveBatch(r: ByteReader): SaveBatch {
  const flags = r.u8();
  if (flags >= 128) throw new FormatError(`unknown save batch flags ${flags}`);
  const b: SaveBatch = {};
  if (flags & HAS_INSTALL) {
    const snapshot = readSnapshot(r);
    b.installSnapshot = { snapshot, kv: readKvState(r) };
  }
  if (flags & HAS_COMPACT) b.compact = readSnapshot(r);
  if (flags & HAS_ENTRIES) {
    const entries: Entry[] = [];
    for (let n = r.uint(); n > 0; n--) entries.push(readEntry(r));
    b.entries = entries;
  }
  if (flags & HAS_HARD) b.hardState = readHardState(r);
  if (flags & HAS_KV) b.kv = readKvChanges(r);
  if (flags & HAS_APPLIED) b.applied = r.uint();
  if (flags & HAS_META) {
    const meta: Record<string, string> = {};
    for (let n = r.uint(); n > 0; n--) meta[r.str()] = r.str();
    b.meta = meta;
  }
  return b;
}

/** One value as [crc32 of payload: u32 LE][payload]. */
export function seal(fill: (w: ByteWriter) => void, w = new ByteWriter(64)): Buffer {
  w.u32(0);
  fill(w);
  const out = w.finish();
  out.writeUInt32LE(crc32(out.subarray(4)), 0);
  return out;
}

/** Verifies and decodes a sealed value; throws FormatError naming the mismatch. */
export function unseal<T>(value: Uint8Array, read: (r: ByteReader) => T): T {
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buf.length < 4) throw new FormatError(`sealed value of ${buf.length} bytes is too short`);
  const want = buf.readUInt32LE(0);
  const got = crc32(buf.subarray(4));
  if (want !== got) throw new FormatError(`checksum mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`);
  const r = new ByteReader(buf, 4);
  const v = read(r);
  r.done();
  return v;
}
