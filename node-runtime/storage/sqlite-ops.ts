// A commit group as the row operations the sqlite writer thread performs, in one buffer. The
// event loop turns the group's SaveBatches into operations whose values are already sealed
// (records.ts `seal` format: [crc32 LE][payload]), so the writer thread only walks the buffer
// and binds views of it: it allocates no objects per row and encodes nothing again. Values
// set once per group (hard state, revision, applied index, record summary, snapshot) are
// written once, the last of each, after the group's other operations. Keys of records travel
// as the `records` table stores them (UTF-16BE, sqlite-key.ts), with their modRevision.

import { crc32 } from 'node:zlib';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import type { HardState, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, RecordSummary } from '../../worker/kv/types.ts';
import { ByteWriter, FormatError } from './bytes.ts';
import { writeEntry, writeHardState, writeKeyRecord, writeRecordSummary, writeSession, writeSnapshot } from './records.ts';
import { encodeKey } from './sqlite-key.ts';
import { summarize } from './record-summary.ts';
import { SUMMARY_ROW } from './sqlite-schema.ts';

const OP_CLEAR = 1; // installSnapshot: empty log, records and sessions
const OP_COMPACT_TO = 2;
const OP_TRUNCATE_FROM = 3;
const OP_PUT_ENTRY = 4;
const OP_PUT_KEY = 5;
const OP_DEL_KEY = 6;
const OP_PUT_SESSION = 7;
const OP_DEL_SESSION = 8;
const OP_PUT_STATE = 9;
const OP_PUT_SNAPSHOT = 10;
const OP_PUT_META = 11;
const OP_DEL_STATE = 12;

/** What the writer does with each operation (sealed values are views into the group buffer). */
export interface OpSink {
  clear(): void;
  compactTo(index: number): void;
  truncateFrom(index: number): void;
  putEntry(index: number, sealed: Uint8Array): void;
  /** `key` as stored (UTF-16BE), `mod` the record's modRevision. */
  putKey(key: Uint8Array, mod: number, sealed: Uint8Array): void;
  delKey(key: Uint8Array): void;
  putSession(client: string, sealed: Uint8Array): void;
  delSession(client: string): void;
  putState(name: string, sealed: Uint8Array): void;
  delState(name: string): void;
  putSnapshot(sealed: Uint8Array): void;
  putMeta(name: string, value: string): void;
}

/**
 * Writes [u32 length][crc32][payload]: a sealed value, sealed in place. With `crcLater` the
 * crc32 is left 0 for the writer thread to fill in (sealInPlace): a snapshot is MBs, and its
 * checksum would be milliseconds of blocked event loop.
 */
function sealed(w: ByteWriter, fill: (w: ByteWriter) => void, crcLater = false): void {
  const at = w.length;
  w.u32(0).u32(0);
  fill(w);
  const end = w.length;
  const v = w.view();
  v.writeUInt32LE(end - at - 4, at);
  if (!crcLater) v.writeUInt32LE(crc32(v.subarray(at + 8, end)), at + 4);
}

/** Completes a value sealed with `crcLater` (its bytes are the thread's own, transferred). */
function sealInPlace(v: Buffer): Buffer {
  v.writeUInt32LE(crc32(v.subarray(4)), 0);
  return v;
}

function putKey(w: ByteWriter, key: string, rec: KeyRecord): void {
  sealed(w.u8(OP_PUT_KEY).bytes(encodeKey(key)).uint(rec.modRevision), (x) => writeKeyRecord(x, rec));
}

/** Encodes a commit group; the result starts at offset 0 of an ArrayBuffer it alone uses (transferable). */
export function encodeGroup(batches: readonly SaveBatch[]): Uint8Array<ArrayBuffer> {
  // Sized for the blobs up front (a snapshot is MBs: no doubling copies).
  const w = new ByteWriter(4096 + blobBytes(batches));
  let hardState: HardState | undefined;
  let revision: number | undefined;
  let applied: number | undefined;
  let snapshot: Snapshot | undefined;
  // The summary after the group: untouched (undefined), unknown (null: a batch of KV changes
  // without one), or the last one set.
  let summary: RecordSummary | null | undefined;
  for (const b of batches) {
    if (b.installSnapshot) {
      const { snapshot: snap, kv } = b.installSnapshot;
      w.u8(OP_CLEAR);
      for (const [key, rec] of kv.records) putKey(w, key, rec);
      for (const [client, s] of kv.sessions) sealed(w.u8(OP_PUT_SESSION).str(client), (x) => writeSession(x, s));
      summary = summarize(kv.records);
      snapshot = snap;
      revision = kv.revision;
      applied = snap.meta.index;
    }
    if (b.compact) {
      w.u8(OP_COMPACT_TO).uint(b.compact.meta.index);
      snapshot = b.compact;
    }
    if (b.entries && b.entries.length > 0) {
      w.u8(OP_TRUNCATE_FROM).uint(b.entries[0]!.index);
      for (const e of b.entries) sealed(w.u8(OP_PUT_ENTRY).uint(e.index), (x) => writeEntry(x, e));
    }
    if (b.hardState) hardState = b.hardState;
    if (b.kv) {
      revision = b.kv.revision;
      for (const [key, rec] of b.kv.upserts) putKey(w, key, rec);
      for (const key of b.kv.deletes) w.u8(OP_DEL_KEY).bytes(encodeKey(key));
      for (const [client, s] of b.kv.sessionUpserts) sealed(w.u8(OP_PUT_SESSION).str(client), (x) => writeSession(x, s));
      for (const client of b.kv.sessionDeletes) w.u8(OP_DEL_SESSION).str(client);
      summary = b.kv.summary ?? null;
    }
    if (b.applied !== undefined) applied = b.applied;
    if (b.meta) for (const [k, v] of Object.entries(b.meta)) w.u8(OP_PUT_META).str(k).str(v);
  }
  if (hardState) {
    const h = hardState;
    sealed(w.u8(OP_PUT_STATE).str('hardState'), (x) => writeHardState(x, h));
  }
  if (revision !== undefined) {
    const r = revision;
    sealed(w.u8(OP_PUT_STATE).str('revision'), (x) => x.uint(r));
  }
  if (applied !== undefined) {
    const a = applied;
    sealed(w.u8(OP_PUT_STATE).str('applied'), (x) => x.uint(a));
  }
  if (summary === null) w.u8(OP_DEL_STATE).str(SUMMARY_ROW);
  else if (summary !== undefined) {
    const s = summary;
    sealed(w.u8(OP_PUT_STATE).str(SUMMARY_ROW), (x) => writeRecordSummary(x, s));
  }
  if (snapshot) {
    const s = snapshot;
    sealed(w.u8(OP_PUT_SNAPSHOT), (x) => writeSnapshot(x, s), true);
  }
  const view = w.view();
  // A buffer larger than Buffer.poolSize is the writer's own (the shared pool is never that
  // large): hand it over as it is, a snapshot's MBs are not copied again. Smaller ones are
  // copied to an exact-size buffer of their own, so detaching it touches nothing else.
  const own = view.buffer;
  if (own instanceof ArrayBuffer && view.byteOffset === 0 && own.byteLength > Buffer.poolSize) return new Uint8Array(own, 0, view.length);
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

/** Bytes of the snapshot and entry payloads in `batches` (most of an encoded group). */
function blobBytes(batches: readonly SaveBatch[]): number {
  let n = 0;
  for (const b of batches) {
    if (b.installSnapshot) n += b.installSnapshot.snapshot.data.length;
    if (b.compact) n += b.compact.data.length;
    if (b.entries) for (const e of b.entries) n += e.data.length + 16;
  }
  return n;
}

/** Walks an encodeGroup() buffer, calling `sink` once per operation, in order. */
export function decodeGroup(group: Uint8Array, sink: OpSink): void {
  const buf = Buffer.from(group.buffer, group.byteOffset, group.byteLength);
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > buf.length) throw new FormatError(`group truncated: need ${n} bytes at ${pos} of ${buf.length}`);
  };
  const uint = (): number => {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      need(1);
      const b = buf[pos++]!;
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return v;
      scale *= 0x80;
    }
    throw new FormatError(`group: uint longer than 8 bytes at ${pos}`);
  };
  const str = (): string => {
    const n = uint();
    need(n);
    const s = buf.toString('utf8', pos, pos + n);
    pos += n;
    return s;
  };
  const blob = (): Buffer => {
    const n = uint();
    need(n);
    const v = buf.subarray(pos, pos + n);
    pos += n;
    return v;
  };
  const seal = (): Buffer => {
    need(4);
    const n = buf.readUInt32LE(pos);
    pos += 4;
    need(n);
    const v = buf.subarray(pos, pos + n);
    pos += n;
    return v;
  };
  while (pos < buf.length) {
    const op = buf[pos++]!;
    switch (op) {
      case OP_CLEAR:
        sink.clear();
        break;
      case OP_COMPACT_TO:
        sink.compactTo(uint());
        break;
      case OP_TRUNCATE_FROM:
        sink.truncateFrom(uint());
        break;
      case OP_PUT_ENTRY: {
        const index = uint();
        sink.putEntry(index, seal());
        break;
      }
      case OP_PUT_KEY: {
        const key = blob();
        const mod = uint();
        sink.putKey(key, mod, seal());
        break;
      }
      case OP_DEL_KEY:
        sink.delKey(blob());
        break;
      case OP_PUT_SESSION: {
        const client = str();
        sink.putSession(client, seal());
        break;
      }
      case OP_DEL_SESSION:
        sink.delSession(str());
        break;
      case OP_PUT_STATE: {
        const name = str();
        sink.putState(name, seal());
        break;
      }
      case OP_DEL_STATE:
        sink.delState(str());
        break;
      case OP_PUT_SNAPSHOT:
        sink.putSnapshot(sealInPlace(seal()));
        break;
      case OP_PUT_META: {
        const name = str();
        sink.putMeta(name, str());
        break;
      }
      default:
        throw new FormatError(`group: unknown operation ${op} at ${pos - 1}`);
    }
  }
}
