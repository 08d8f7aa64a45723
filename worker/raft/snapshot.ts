// Chunked InstallSnapshot transfer.
//
// The leader sends one chunk of at most snapshotChunkBytes and waits for the follower to
// confirm the bytes it holds (snapshotResp.hintIndex = next offset it expects) before sending
// the next; a chunk unanswered for an election timeout is sent again. The follower keeps the
// chunks of one transfer in memory and hands the whole snapshot to the host once the last one
// arrives. Its buffer is volatile: after a restart it refuses a chunk at a non-zero offset, and
// the leader starts the transfer over from offset 0.

import type { Snapshot, SnapshotChunk } from './types.ts';

/** Refuse to reassemble snapshots larger than this (a misbehaving peer must not exhaust memory). */
export const SNAPSHOT_BYTES_MAX = 4 * 1024 * 1024 * 1024;

export function chunkAt(snapshot: Snapshot, offset: number, chunkBytes: number): SnapshotChunk {
  const end = Math.min(offset + chunkBytes, snapshot.data.length);
  return {
    meta: snapshot.meta,
    offset,
    data: snapshot.data.subarray(offset, end),
    done: end === snapshot.data.length,
  };
}

export type ChunkOutcome =
  | { kind: 'progress'; bytes: number }
  | { kind: 'complete'; snapshot: Snapshot }
  /** Not the chunk we can take next: the leader should continue from `bytes`. */
  | { kind: 'reject'; bytes: number };

export class SnapshotReceiver {
  private meta: Snapshot['meta'] | null = null;
  /** Who sends the transfer in progress: chunks of another leader's copy (whose encoding may
   *  differ byte for byte) must never be spliced into it. */
  private from = '';
  private term = 0;
  private parts: Uint8Array[] = [];
  private bytes = 0;

  /** Accept chunks strictly in order; a chunk at offset 0 (re)starts a transfer. */
  accept(chunk: SnapshotChunk, from: string, term: number): ChunkOutcome {
    const same =
      this.meta !== null &&
      this.from === from &&
      this.term === term &&
      this.meta.index === chunk.meta.index &&
      this.meta.term === chunk.meta.term;
    if (same && chunk.offset < this.bytes) {
      // A duplicate (e.g. a resend whose answer was lost): say how far we are.
      return { kind: 'progress', bytes: this.bytes };
    }
    if (chunk.offset === 0) {
      this.start(chunk, from, term);
    } else if (!same) {
      return { kind: 'reject', bytes: 0 };
    } else if (chunk.offset !== this.bytes) {
      return { kind: 'reject', bytes: this.bytes };
    }
    if (this.bytes + chunk.data.length > SNAPSHOT_BYTES_MAX) {
      this.clear();
      return { kind: 'reject', bytes: 0 };
    }
    if (chunk.data.length > 0) {
      // Kept as views until assembly copies them (decoded messages are never reused).
      this.parts.push(chunk.data);
      this.bytes += chunk.data.length;
    }
    if (!chunk.done) return { kind: 'progress', bytes: this.bytes };
    const data = new Uint8Array(this.bytes);
    let at = 0;
    for (const p of this.parts) {
      data.set(p, at);
      at += p.length;
    }
    const snapshot: Snapshot = { meta: this.meta!, data };
    this.clear();
    return { kind: 'complete', snapshot };
  }

  clear(): void {
    this.meta = null;
    this.from = '';
    this.term = 0;
    this.parts = [];
    this.bytes = 0;
  }

  private start(chunk: SnapshotChunk, from: string, term: number): void {
    this.meta = chunk.meta;
    this.from = from;
    this.term = term;
    this.parts = [];
    this.bytes = 0;
  }
}
