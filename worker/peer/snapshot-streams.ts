// Streamed snapshots of a tiered peer, both ends (worker/raft/snapshot.ts has the protocol).
//
// Such a peer's engine table is its state, so it keeps no snapshot bytes: its compactions are
// meta only (snapshot-job.ts), as a leader it streams each transfer from a view of the state
// applied when the transfer began (SnapshotStreams), and as a follower it decodes the chunks as
// they arrive and stages their records in the engine (SnapshotStager), swapped in when the
// last one is in. Neither side ever holds the state: a view walks the disk a slice at a time,
// and a chunk's records go to disk with the Ready that carried it.

import type { KvStateMachine } from '../kv/state-machine.ts';
import { StateChunker } from '../kv/state-chunker.ts';
import { StateStreamDecoder } from '../kv/state-stream-decoder.ts';
import { countRecord, emptySummary } from '../kv/record-summary.ts';
import type { KeyRecord, KvState, RecordSummary } from '../kv/types.ts';
import type { SnapshotPart, SnapshotProvider, SnapshotStream } from '../raft/types.ts';

/** What the leader's streams read from: the peer's state machine and applied index now. */
export interface StreamSource {
  kv(): KvStateMachine;
  applied(): number;
  /** The state is being replaced (an install is saving): no stream can be opened now. */
  replacing(): boolean;
  /** A stream of the state at `index` was opened (counted for /metrics, logged). */
  opened(index: number): void;
}

/** Opens the leader's snapshot streams, and closes whatever is left open when the peer closes or
 *  fails (the core closes each when its transfer ends or it stops leading; this is the
 *  backstop). */
export class SnapshotStreams implements SnapshotProvider {
  private readonly source: StreamSource;
  private readonly openStreams = new Set<SnapshotStream>();

  constructor(source: StreamSource) {
    this.source = source;
  }

  open(): { index: number; stream: SnapshotStream } | null {
    if (this.source.replacing()) return null;
    const chunker = new StateChunker(this.source.kv().beginView());
    const streams = this.openStreams;
    const stream: SnapshotStream = {
      read: (offset, maxBytes) => (streams.has(stream) ? chunker.read(offset, maxBytes) : null),
      close: () => {
        if (!streams.delete(stream)) return;
        chunker.close();
      },
    };
    streams.add(stream);
    const index = this.source.applied();
    this.source.opened(index);
    return { index, stream };
  }

  /** Streams open now (each holds a view: a read transaction on a tiered engine). */
  get active(): number {
    return this.openStreams.size;
  }

  closeAll(): void {
    for (const s of [...this.openStreams]) s.close();
  }
}

/** Records of received chunks for the engine's staging area (SaveBatch.stage). */
export interface StagedRecords {
  reset: boolean;
  records: Array<[string, KeyRecord]>;
}

/** Decodes a snapshot being received, chunk by chunk, into records to stage. Volatile, as the
 *  core's receiver is: a restart begins with a transfer from offset 0, which resets it. */
export class SnapshotStager {
  /** The cluster's session limit: a snapshot never holds more sessions (the decoder refuses). */
  private readonly sessionsMax: number;
  private decoder: StateStreamDecoder | null = null;
  private bytes = 0;
  private summary: RecordSummary = emptySummary();

  constructor(sessionsMax: number) {
    this.sessionsMax = sessionsMax;
  }

  /** The records `parts` complete, and whether the engine drops what it staged first. */
  take(parts: SnapshotPart[]): StagedRecords {
    let reset = false;
    let records: Array<[string, KeyRecord]> = [];
    for (const part of parts) {
      if (part.offset === 0) {
        reset = true;
        records = [];
        this.decoder = new StateStreamDecoder({ sessionsMax: this.sessionsMax });
        this.bytes = 0;
        this.summary = emptySummary();
      }
      if (this.decoder === null || part.offset !== this.bytes) {
        throw new Error(`snapshot part at ${part.offset}, ${this.decoder === null ? 'no transfer' : `${this.bytes} bytes`} staged`);
      }
      this.bytes += part.data.length;
      for (const record of this.decoder.feed(part.data)) {
        countRecord(this.summary, record[0], record[1]);
        records.push(record);
      }
    }
    return { reset, records };
  }

  /** The transfer being staged: its bytes and records so far (null when none is under way). */
  receiving(): { bytes: number; records: number } | null {
    return this.decoder === null ? null : { bytes: this.bytes, records: this.summary.records };
  }

  /** After the last part: the installed state (its records are the staged ones) and their count. */
  finish(): { state: KvState; summary: RecordSummary } {
    if (this.decoder === null) throw new Error('a staged snapshot to install, and no transfer staged');
    const { revision, sessions } = this.decoder.finish();
    const summary = this.summary;
    this.decoder = null;
    this.bytes = 0;
    this.summary = emptySummary();
    return { state: { revision, sessions, records: [] }, summary };
  }
}
