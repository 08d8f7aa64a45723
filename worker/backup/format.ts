// The backup file (GET /snapshot, metcd --restore): a consistent copy of the KV state, the same on
// both runtimes. Version 1:
//
//   header   8 bytes magic "METCDSNP"
//            u8 format version = 1
//            varuint revision         the KV revision the backup is of
//            varuint applied index    the Raft log index that state reflects on the source
//            string cluster id        the source's cluster (informational: a restore may rename)
//            varuint record count     records in the body, metcd's own (U+0001 keys) included
//            varuint created at       milliseconds since the epoch, by the source peer's clock
//   body     the KV state, exactly as codec.ts encodes it (state version 1): every record with
//            its createRevision, modRevision and version, and the client sessions
//   trailer  8 bytes "METCDEND", then the 32-byte SHA-256 of every byte before the trailer
//
// Varuints and strings as codec.ts (kv/bytes.ts). The body is written as it is encoded, from a
// StateView, so a backup never holds the peer up for the whole state nor stops writes; its record
// count is known up front (the view's). The checksum covers header and body: one flipped byte is
// refused, and a file that stops early lacks its trailer.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { ByteReader, varuintBytes, writeVaruint } from '../kv/bytes.ts';
import { KvCodecError, StateStreamEncoder, decodeState } from '../kv/codec.ts';
import type { StateView } from '../kv/state-view.ts';
import type { KvState } from '../kv/types.ts';
import { readUtf8, utf8Length, writeUtf8 } from '../kv/utf8.ts';

export const BACKUP_FORMAT_VERSION = 1;
const MAGIC = new TextEncoder().encode('METCDSNP');
const TRAILER_MAGIC = new TextEncoder().encode('METCDEND');
const CHECKSUM_BYTES = 32;
const TRAILER_BYTES = TRAILER_MAGIC.length + CHECKSUM_BYTES;
export const BACKUP_CONTENT_TYPE = 'application/octet-stream';

/** What a backup says about itself. */
export interface BackupHeader {
  version: number;
  revision: number;
  appliedIndex: number;
  clusterId: string;
  recordCount: number;
  createdAtMs: number;
}

/** A file that is not a whole, intact backup this metcd can read: the message is one line. */
export class BackupFormatError extends Error {
  override name = 'BackupFormatError';
}

function encodeHeader(h: Omit<BackupHeader, 'version'>): Uint8Array {
  const cluster = utf8Length(h.clusterId);
  const bytes =
    MAGIC.length +
    1 +
    varuintBytes(h.revision) +
    varuintBytes(h.appliedIndex) +
    varuintBytes(cluster) +
    cluster +
    varuintBytes(h.recordCount) +
    varuintBytes(h.createdAtMs);
  const out = new Uint8Array(bytes);
  out.set(MAGIC, 0);
  out[MAGIC.length] = BACKUP_FORMAT_VERSION;
  let o = writeVaruint(out, MAGIC.length + 1, h.revision);
  o = writeVaruint(out, o, h.appliedIndex);
  o = writeUtf8(out, writeVaruint(out, o, cluster), h.clusterId, cluster);
  o = writeVaruint(out, o, h.recordCount);
  o = writeVaruint(out, o, h.createdAtMs);
  if (o !== bytes) throw new Error(`backup header: wrote ${o} bytes, measured ${bytes}`);
  return out;
}

/** Records per slice of the body, and key + value characters at which a slice stops early. */
const SLICE_RECORDS = 2000;
const SLICE_CHARS = 1024 * 1024;

/** What a backup is taken of: a view of the applied state (closed by the stream when it ends
 *  or is cancelled), the applied index it reflects, the cluster, and when. */
export interface BackupSource {
  view: StateView;
  applied: number;
  cluster: string;
  nowMs: number;
}

/**
 * The backup as a byte stream, one slice of records per pull (the host pulls as its client
 * takes the bytes, so a slow client holds only the view's copy-on-write records, not the file).
 */
export function backupStream(src: BackupSource): ReadableStream<Uint8Array> {
  const { view } = src;
  const hash = sha256.create();
  const encoder = new StateStreamEncoder(view.recordCount);
  let stage: 'header' | 'records' | 'done' = 'header';
  const emit = (controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array): void => {
    if (bytes.length === 0) return;
    hash.update(bytes);
    controller.enqueue(bytes);
  };
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        try {
          if (stage === 'header') {
            stage = 'records';
            const header = encodeHeader({
              revision: view.revision,
              appliedIndex: src.applied,
              clusterId: src.cluster,
              recordCount: view.recordCount,
              createdAtMs: src.nowMs,
            });
            emit(controller, concatBytes(header, StateStreamEncoder.head(view.revision, view.recordCount)));
            return;
          }
          if (stage !== 'records') return;
          if (!view.done) {
            emit(controller, encoder.slice(view.next(SLICE_RECORDS, SLICE_CHARS)));
            if (!view.done) return;
          }
          stage = 'done';
          const tail = encoder.tail(view.sessions);
          view.close();
          emit(controller, tail);
          const trailer = new Uint8Array(TRAILER_BYTES);
          trailer.set(TRAILER_MAGIC, 0);
          trailer.set(hash.digest(), TRAILER_MAGIC.length);
          controller.enqueue(trailer);
          controller.close();
        } catch (err) {
          view.close();
          stage = 'done';
          controller.error(err);
        }
      },
      cancel() {
        view.close();
        stage = 'done';
      },
    },
    { highWaterMark: 0 },
  );
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Check a whole backup file and decode it: magic, format version, trailer, checksum, then the
 * header and the state (their agreement too). Throws BackupFormatError with a one-line reason.
 */
export function readBackup(bytes: Uint8Array): { header: BackupHeader; state: KvState } {
  if (bytes.length < MAGIC.length || !equalBytes(bytes.subarray(0, MAGIC.length), MAGIC)) {
    throw new BackupFormatError('not a metcd backup (bad magic: the file does not start with METCDSNP)');
  }
  if (bytes.length < MAGIC.length + 1) throw new BackupFormatError('truncated backup: it ends inside the header');
  const version = bytes[MAGIC.length]!;
  if (version !== BACKUP_FORMAT_VERSION) {
    throw new BackupFormatError(`unsupported backup format version ${version} (this metcd reads version ${BACKUP_FORMAT_VERSION})`);
  }
  const bodyEnd = bytes.length - TRAILER_BYTES;
  if (bodyEnd < MAGIC.length + 1 || !equalBytes(bytes.subarray(bodyEnd, bodyEnd + TRAILER_MAGIC.length), TRAILER_MAGIC)) {
    throw new BackupFormatError(`truncated backup: no trailer at the end of its ${bytes.length} bytes (an interrupted download?)`);
  }
  const want = bytes.subarray(bodyEnd + TRAILER_MAGIC.length);
  const got = sha256(bytes.subarray(0, bodyEnd));
  if (!equalBytes(got, want)) {
    throw new BackupFormatError(
      `checksum mismatch: the backup is corrupted (SHA-256 ${bytesToHex(got).slice(0, 16)}…, trailer says ${bytesToHex(want).slice(0, 16)}…)`,
    );
  }
  // The checksum holds: what follows fails only for a file written by something else.
  try {
    const r = new ByteReader(bytes.subarray(0, bodyEnd));
    r.offset = MAGIC.length + 1;
    const revision = r.varuint();
    const appliedIndex = r.varuint();
    const n = r.length();
    const clusterId = readUtf8(r.bytes, r.offset, n);
    r.offset += n;
    const recordCount = r.varuint();
    const createdAtMs = r.varuint();
    const header: BackupHeader = { version, revision, appliedIndex, clusterId, recordCount, createdAtMs };
    const state = decodeState(r.bytes.subarray(r.offset));
    if (state.revision !== revision) throw new BackupFormatError(`header says revision ${revision}, the state ${state.revision}`);
    if (state.records.length !== recordCount) {
      throw new BackupFormatError(`header says ${recordCount} records, the state holds ${state.records.length}`);
    }
    for (const [client, s] of state.sessions) {
      if (s.lastIndex > appliedIndex) throw new BackupFormatError(`session ${client} is past the applied index ${appliedIndex}`);
    }
    return { header, state };
  } catch (err) {
    if (err instanceof BackupFormatError) throw new BackupFormatError(`malformed backup: ${err.message}`);
    if (err instanceof KvCodecError || err instanceof RangeError || err instanceof TypeError) {
      throw new BackupFormatError(`malformed backup: ${err.message}`);
    }
    throw err;
  }
}
