// The event loop's side of a commit group (format: sqlite-ops.ts): turns the group's SaveBatches
// into row operations whose values are already sealed, in one transferable buffer. Values set
// once per group (hard state, revision, applied index, record summary, snapshot) are written
// once, the last of each, after the group's other operations.

import { crc32 } from 'node:zlib';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import type { HardState, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, RecordSummary } from '../../worker/kv/types.ts';
import { ByteWriter } from './bytes.ts';
import { writeEntry, writeHardState, writeKeyRecord, writeRecordSummary, writeSession, writeSnapshot } from './records.ts';
import { encodeKey } from './sqlite-key.ts';
import { summarize } from '../../worker/kv/record-summary.ts';
import { SUMMARY_ROW } from './sqlite-schema.ts';
import { OP } from './sqlite-ops.ts';

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

/** A record for the records table (PUT_KEY) or the staging table (STAGE_KEY). */
function putKey(w: ByteWriter, key: string, rec: KeyRecord, op: typeof OP.PUT_KEY | typeof OP.STAGE_KEY = OP.PUT_KEY): void {
  sealed(w.u8(op).bytes(encodeKey(key)).uint(rec.modRevision), (x) => writeKeyRecord(x, rec));
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
    if (b.stage) {
      if (b.stage.reset) w.u8(OP.STAGE_RESET);
      for (const [key, rec] of b.stage.records) putKey(w, key, rec, OP.STAGE_KEY);
    }
    if (b.installSnapshot) {
      const { snapshot: snap, kv, staged } = b.installSnapshot;
      if (staged !== undefined) {
        // The save queue admitted it (checkStaging): kv.records is empty.
        w.u8(OP.INSTALL_STAGED);
        summary = staged;
      } else {
        w.u8(OP.CLEAR);
        for (const [key, rec] of kv.records) putKey(w, key, rec);
        summary = summarize(kv.records);
      }
      for (const [client, s] of kv.sessions) sealed(w.u8(OP.PUT_SESSION).str(client), (x) => writeSession(x, s));
      snapshot = snap;
      revision = kv.revision;
      applied = snap.meta.index;
    }
    if (b.compact) {
      w.u8(OP.COMPACT_TO).uint(b.compact.meta.index);
      snapshot = b.compact;
    }
    if (b.entries && b.entries.length > 0) {
      w.u8(OP.TRUNCATE_FROM).uint(b.entries[0]!.index);
      for (const e of b.entries) sealed(w.u8(OP.PUT_ENTRY).uint(e.index), (x) => writeEntry(x, e));
    }
    if (b.hardState) hardState = b.hardState;
    if (b.kv) {
      revision = b.kv.revision;
      for (const [key, rec] of b.kv.upserts) putKey(w, key, rec);
      for (const key of b.kv.deletes) w.u8(OP.DEL_KEY).bytes(encodeKey(key));
      for (const [client, s] of b.kv.sessionUpserts) sealed(w.u8(OP.PUT_SESSION).str(client), (x) => writeSession(x, s));
      for (const client of b.kv.sessionDeletes) w.u8(OP.DEL_SESSION).str(client);
      summary = b.kv.summary ?? null;
    }
    if (b.applied !== undefined) applied = b.applied;
    if (b.meta) for (const [k, v] of Object.entries(b.meta)) w.u8(OP.PUT_META).str(k).str(v);
  }
  if (hardState) {
    const h = hardState;
    sealed(w.u8(OP.PUT_STATE).str('hardState'), (x) => writeHardState(x, h));
  }
  if (revision !== undefined) {
    const r = revision;
    sealed(w.u8(OP.PUT_STATE).str('revision'), (x) => x.uint(r));
  }
  if (applied !== undefined) {
    const a = applied;
    sealed(w.u8(OP.PUT_STATE).str('applied'), (x) => x.uint(a));
  }
  if (summary === null) w.u8(OP.DEL_STATE).str(SUMMARY_ROW);
  else if (summary !== undefined) {
    const s = summary;
    sealed(w.u8(OP.PUT_STATE).str(SUMMARY_ROW), (x) => writeRecordSummary(x, s));
  }
  if (snapshot) {
    const s = snapshot;
    sealed(w.u8(OP.PUT_SNAPSHOT), (x) => writeSnapshot(x, s), true);
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
