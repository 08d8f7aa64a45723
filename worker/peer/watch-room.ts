// The watch waiting room: clients waiting for changes to a key, a prefix or a range, served from
// the peer's applied state (worker/README.md: waiting for an event is a waiting room in the peer).
//
// Pull, never push: a watcher is a position (`next`, the first revision it has not been handed)
// over the state machine's key history (kv.eventsFrom), and the room fills its queue from there
// after every Ready and whenever its consumer drains it. So a watch replays and follows with one
// code path: no gap or duplicate at the replay/live boundary, and a snapshot install (which
// replaces the state machine) is followed from the new state's history, or closes with
// `compacted` when that history no longer reaches back to `next`. Nothing is ever skipped: a
// watcher ends with a reason and the revision to resume from instead.
//
// Limits: watchers per peer; events and bytes queued per watcher and bytes queued in the whole
// room. A revision is never split between frames (one frame = every matching change of one
// revision), so an empty queue always takes the next revision whatever its size (bounded by
// the command limits). A watcher still replaying history is paced by its consumer (filled as it
// drains); one that had caught up and cannot take a new revision is too slow: it ends with
// `overflow` and the revision to resume from. Time is ticks (progress, deadlines).

import type { KeyEvent } from '../kv/history.ts';
import type { RevisionProblem } from '../kv/state-machine.ts';
import { isRevisionProblem } from '../kv/state-machine.ts';
import { PeerError } from './errors.ts';

/** Which keys a watcher wants: one key, every key with a prefix, or [start, end) ('' end: no bound). */
export type WatchFilter = { key: string } | { prefix: string } | { start: string; end: string };

export function filterMatches(filter: WatchFilter, key: string): boolean {
  if ('key' in filter) return key === filter.key;
  if ('prefix' in filter) return key.startsWith(filter.prefix);
  return key >= filter.start && (filter.end === '' || key < filter.end);
}

/** Why a watch ended (the last frame it gets). */
export type WatchEndReason =
  /** `next` is below the compacted revision: its history is gone (resume from `compacted`, with a gap). */
  | 'compacted'
  /** The consumer did not keep up with live changes: resume from `resume`. */
  | 'overflow'
  /** This peer was removed from the cluster, is closing, or stopped: resume elsewhere. */
  | 'removed'
  | 'closed'
  | 'failed'
  /** A deadline given at registration passed (blocking reads). */
  | 'deadline';

export type WatchFrame =
  /** Every change of `revision` that matches, in key order. */
  | { kind: 'events'; revision: number; events: KeyEvent[] }
  /** Nothing matched up to and including `revision` (sent after progressTicks of silence). */
  | { kind: 'progress'; revision: number }
  /** The last frame. `resume` is the first revision not handed out (the compacted revision for
   *  `compacted`: what may be asked for now); `revision` is the peer's current revision. */
  | { kind: 'end'; reason: WatchEndReason; resume: number; revision: number; message: string };

export interface WatchLimits {
  /** Watchers registered on one peer (streams and blocking reads); more are refused (429). */
  watchersMax: number;
  /** Events queued for one watcher (at least one revision is always taken). */
  watcherEventsMax: number;
  /** Approximate bytes (keys and values, UTF-16 units, plus a fixed overhead per event) queued for one watcher. */
  watcherBytesMax: number;
  /** The same, summed over every watcher of the peer: the room's memory bound. */
  roomBytesMax: number;
}

export const DEFAULT_WATCH_LIMITS: WatchLimits = {
  watchersMax: 1000,
  watcherEventsMax: 1000,
  watcherBytesMax: 4 * 1024 * 1024,
  roomBytesMax: 32 * 1024 * 1024,
};

/** What the room reads: the peer's current state machine (replaced on a snapshot install). */
export interface WatchSource {
  readonly revision: number;
  eventsFrom(from: number): Iterable<KeyEvent> | RevisionProblem;
}

const EVENT_OVERHEAD_BYTES = 64;

function eventBytes(e: KeyEvent): number {
  return EVENT_OVERHEAD_BYTES + e.key.length + (e.record?.value.length ?? 0) + (e.prev?.value.length ?? 0);
}

export interface WatchStart {
  filter: WatchFilter;
  /** First revision wanted (may be above the current one: the watch waits for it). */
  from: number;
  /** Send a progress frame after this many ticks without one (0: never). */
  progressTicks: number;
  /** End with `deadline` at this tick (0: no deadline). */
  deadlineTick: number;
}

export class Watcher {
  readonly filter: WatchFilter;
  /** The first revision not handed to the queue yet. */
  next: number;
  /** Once caught up with the state (next > revision): from then on a full queue is an overflow. */
  live = false;
  private readonly queue: WatchFrame[] = [];
  queuedEvents = 0;
  queuedBytes = 0;
  /** The end frame was queued (nothing more will be). */
  ended = false;
  /** The consumer left, or took the end frame. */
  closed = false;
  /** The room is filling this watcher (a frame handed to a waiting consumer must not refill it). */
  filling = false;
  lastFrameTick: number;
  readonly progressTicks: number;
  readonly deadlineTick: number;
  private waiter: ((frame: WatchFrame | null) => void) | null = null;
  private readonly room: WatchRoom;

  constructor(room: WatchRoom, start: WatchStart, nowTick: number) {
    this.room = room;
    this.filter = start.filter;
    this.next = start.from;
    this.progressTicks = start.progressTicks;
    this.deadlineTick = start.deadlineTick;
    this.lastFrameTick = nowTick;
  }

  /** A frame queued now, if any (never waits). After the end frame: undefined, and closed. */
  poll(): WatchFrame | undefined {
    const frame = this.queue.shift();
    if (frame === undefined) return undefined;
    if (frame.kind === 'events') {
      this.queuedEvents -= frame.events.length;
      let bytes = 0;
      for (const e of frame.events) bytes += eventBytes(e);
      this.queuedBytes -= bytes;
      this.room.released(bytes);
      // Room again: a replaying watcher is filled as its consumer drains it (not from inside a
      // fill, whose position is not updated yet).
      if (this.queue.length === 0 && !this.ended && !this.filling) this.room.fill(this);
    }
    if (frame.kind === 'end') this.close();
    return frame;
  }

  /** The next frame, waiting for one; null once the watch is over (end frame taken, or closed). */
  take(): Promise<WatchFrame | null> {
    const frame = this.poll();
    if (frame !== undefined) return Promise.resolve(frame);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** The consumer is gone (or done): leave the room and drop what is queued. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.room.remove(this);
    this.room.released(this.queuedBytes);
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.queuedEvents = 0;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.(null);
  }

  /** Queue a frame (the room's side); a waiting consumer gets it at once. */
  push(frame: WatchFrame, bytes: number, nowTick: number): void {
    this.lastFrameTick = nowTick;
    if (frame.kind === 'end') this.ended = true;
    if (frame.kind === 'events') {
      this.queuedEvents += frame.events.length;
      this.queuedBytes += bytes;
    }
    this.queue.push(frame);
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter(this.poll()!);
    }
  }

  get queuedFrames(): number {
    return this.queue.length;
  }
}

export class WatchRoom {
  private readonly watchers = new Set<Watcher>();
  private readonly limits: WatchLimits;
  private readonly source: () => WatchSource;
  private readonly nowTick: () => number;
  private roomBytes = 0;

  constructor(limits: WatchLimits, source: () => WatchSource, nowTick: () => number) {
    this.limits = limits;
    this.source = source;
    this.nowTick = nowTick;
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Watchers with a deadline (blocking reads) that have not ended. */
  get blocking(): number {
    let n = 0;
    for (const w of this.watchers) if (w.deadlineTick > 0 && !w.ended) n++;
    return n;
  }

  /** Bytes queued over every watcher. */
  get bytes(): number {
    return this.roomBytes;
  }

  /** Register a watcher and fill it from history at once; a full room is `too-many-pending`. */
  add(start: WatchStart): Watcher {
    if (this.watchers.size >= this.limits.watchersMax) {
      throw new PeerError('too-many-pending', `more than ${this.limits.watchersMax} watchers on this peer`);
    }
    if (!Number.isSafeInteger(start.from) || start.from < 1)
      throw new PeerError('invalid', `watch start revision ${start.from} is not >= 1`);
    const w = new Watcher(this, start, this.nowTick());
    this.watchers.add(w);
    this.fill(w);
    return w;
  }

  /** The state moved (entries applied, a snapshot installed): fill every watcher. */
  notify(): void {
    if (this.watchers.size === 0) return;
    for (const w of this.watchers) if (!w.ended) this.fill(w);
  }

  /** Progress frames for watchers silent for their interval; deadlines. */
  tick(): void {
    if (this.watchers.size === 0) return;
    const now = this.nowTick();
    const revision = this.source().revision;
    for (const w of this.watchers) {
      if (w.ended) continue;
      if (w.deadlineTick > 0 && now >= w.deadlineTick) {
        this.end(w, 'deadline', w.next, 'the wait elapsed');
        continue;
      }
      // Progress claims "nothing more up to `revision`": only for a watcher handed everything
      // up to this peer's revision, and never below what it started from (a peer behind the
      // client's resume point stays silent rather than send it back).
      if (w.progressTicks > 0 && w.queuedFrames === 0 && w.next === revision + 1 && now - w.lastFrameTick >= w.progressTicks) {
        w.push({ kind: 'progress', revision }, 0, now);
      }
    }
  }

  /** End every watcher (this peer was removed, closes, or stopped). */
  endAll(reason: 'removed' | 'closed' | 'failed', message: string): void {
    for (const w of [...this.watchers]) if (!w.ended) this.end(w, reason, w.next, message);
  }

  /** Hand `w` what history holds for it from `next`, whole revisions, within the limits. */
  fill(w: Watcher): void {
    if (w.ended || w.closed || w.filling) return;
    w.filling = true;
    try {
      this.fillFromHistory(w);
    } finally {
      w.filling = false;
    }
  }

  private fillFromHistory(w: Watcher): void {
    const source = this.source();
    if (w.next > source.revision) {
      w.live = true;
      return;
    }
    const events = source.eventsFrom(w.next);
    if (isRevisionProblem(events)) {
      this.end(
        w,
        'compacted',
        events.compacted,
        `revision ${w.next} has been compacted; the oldest readable revision is ${events.compacted}`,
      );
      return;
    }
    const now = this.nowTick();
    let revision = 0;
    let batch: KeyEvent[] = [];
    let bytes = 0;
    // Queue one revision's matching changes; false when there is no room (the watcher stays at it).
    const flush = (): boolean => {
      if (batch.length > 0) {
        const full =
          w.queuedFrames > 0 &&
          (w.queuedEvents + batch.length > this.limits.watcherEventsMax ||
            w.queuedBytes + bytes > this.limits.watcherBytesMax ||
            this.roomBytes + bytes > this.limits.roomBytesMax);
        if (full) {
          if (w.live)
            this.end(w, 'overflow', revision, `the watcher fell more than its buffer behind at revision ${revision}; resume from it`);
          return false;
        }
        this.roomBytes += bytes;
        w.push({ kind: 'events', revision, events: batch }, bytes, now);
      }
      w.next = revision + 1;
      batch = [];
      bytes = 0;
      return true;
    };
    for (const e of events) {
      if (e.revision !== revision) {
        if (revision !== 0 && !flush()) return;
        revision = e.revision;
      }
      if (filterMatches(w.filter, e.key)) {
        batch.push(e);
        bytes += eventBytes(e);
      }
    }
    if (revision !== 0 && !flush()) return;
    // Revisions without client changes (token commands) move the position too.
    w.next = source.revision + 1;
    w.live = true;
  }

  remove(w: Watcher): void {
    this.watchers.delete(w);
  }

  released(bytes: number): void {
    this.roomBytes -= bytes;
  }

  private end(w: Watcher, reason: WatchEndReason, resume: number, message: string): void {
    w.push({ kind: 'end', reason, resume, revision: this.source().revision, message }, 0, this.nowTick());
  }
}
