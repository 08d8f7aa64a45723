// Chunked InstallSnapshot transfer.
//
// The leader sends one chunk of at most snapshotChunkBytes and waits for the follower to
// confirm the bytes it holds (snapshotResp.hintIndex = next offset it expects) before sending
// the next; a chunk unanswered for an election timeout is sent again. The chunks come from the
// snapshot's bytes, or, for a host that produces its snapshot on demand, from its stream
// (types.ts SnapshotStream), which only reads forward.
//
// The follower keeps the chunks of one transfer in memory and hands the whole snapshot to the
// host once the last one arrives — or, for a host that stages snapshots (a state larger than
// memory), hands each chunk's bytes on as it accepts them and keeps none. Either way its
// progress is volatile: after a restart it refuses a chunk at a non-zero offset, and the
// leader starts the transfer over from offset 0.

import type { Snapshot, SnapshotChunk, SnapshotPart } from './types.ts';

/** Refuse to receive snapshots larger than this (a misbehaving peer must not exhaust memory). */
export const SNAPSHOT_BYTES_MAX = 4 * 1024 * 1024 * 1024;

/** The chunk at `offset`, or null when the snapshot's stream cannot serve it (a new transfer
 *  must begin). */
export function chunkAt(snapshot: Snapshot, offset: number, chunkBytes: number): SnapshotChunk | null {
  if (snapshot.stream !== undefined) {
    const read = snapshot.stream.read(offset, chunkBytes);
    if (read === null) return null;
    return { meta: snapshot.meta, offset, data: read.data, done: read.done };
  }
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
  /** Hand accepted bytes to the host (`parts`) instead of keeping them (RawNode.stageSnapshots). */
  staging = false;
  /** Accepted bytes not yet taken by the host (staging only), in order. */
  parts: SnapshotPart[] = [];
  private meta: Snapshot['meta'] | null = null;
  /** Who sends the transfer in progress: chunks of another leader's copy (whose encoding may
   *  differ byte for byte) must never be spliced into it. */
  private from = '';
  private term = 0;
  private held: Uint8Array[] = [];
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
    if (this.staging) {
      // Offset 0 tells the host to drop what it staged of any earlier transfer.
      if (chunk.data.length > 0 || chunk.offset === 0 || chunk.done) {
        this.parts.push({ offset: chunk.offset, data: chunk.data, done: chunk.done });
      }
      this.bytes += chunk.data.length;
    } else if (chunk.data.length > 0) {
      // Kept as views until assembly copies them (decoded messages are never reused).
      this.held.push(chunk.data);
      this.bytes += chunk.data.length;
    }
    if (!chunk.done) return { kind: 'progress', bytes: this.bytes };
    const snapshot: Snapshot = this.staging
      ? { meta: this.meta!, data: new Uint8Array(0), staged: true }
      : { meta: this.meta!, data: this.assemble() };
    this.clear();
    return { kind: 'complete', snapshot };
  }

  /** A transfer is under way (begun, neither complete nor dropped). */
  get active(): boolean {
    return this.meta !== null;
  }

  /** Parts accepted since the last call (staging), for the next Ready. */
  takeParts(): SnapshotPart[] {
    const parts = this.parts;
    this.parts = [];
    return parts;
  }

  clear(): void {
    this.meta = null;
    this.from = '';
    this.term = 0;
    this.held = [];
    this.bytes = 0;
  }

  private assemble(): Uint8Array {
    const data = new Uint8Array(this.bytes);
    let at = 0;
    for (const p of this.held) {
      data.set(p, at);
      at += p.length;
    }
    return data;
  }

  private start(chunk: SnapshotChunk, from: string, term: number): void {
    this.meta = chunk.meta;
    this.from = from;
    this.term = term;
    this.held = [];
    this.bytes = 0;
  }
}
