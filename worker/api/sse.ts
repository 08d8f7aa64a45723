// Server-Sent Events for watches: a watcher's frames (worker/peer/watch-room.ts) as
// `text/event-stream` text, and the stream both hosts write out as it comes.
//
// One frame per revision (`event: revision`, `id: <revision>`, `data:` a JSON array of that
// revision's matching changes, in key order), not one SSE event per change: a client that loses
// the connection part-way through a revision then never holds an id for a revision it saw only
// part of, so resuming after its Last-Event-ID can neither skip nor repeat a change. Progress
// frames carry an id too (resume from there without replaying), and so do `overflow` and
// `closed` (the id of the last revision handed out: an EventSource reconnects exactly there).
// `compacted` carries none: the client has to decide whether to accept the gap.

import type { KeyEvent } from '../kv/history.ts';
import type { WatchFrame, Watcher } from '../peer/watch-room.ts';

/** What one change looks like in a `revision` frame. A delete has value null, createRevision and
 *  version 0 and modRevision the delete's revision (as etcd's delete events). `prevValue` is the
 *  value it replaced, when that version is still in the history. */
export interface WatchEventJson {
  type: 'put' | 'delete';
  key: string;
  value: string | null;
  revision: number;
  createRevision: number;
  modRevision: number;
  version: number;
  prevValue?: string;
}

export function eventJson(e: KeyEvent): WatchEventJson {
  const r = e.record;
  const out: WatchEventJson =
    r === undefined
      ? { type: 'delete', key: e.key, value: null, revision: e.revision, createRevision: 0, modRevision: e.revision, version: 0 }
      : {
          type: e.type,
          key: e.key,
          value: r.value,
          revision: e.revision,
          createRevision: r.createRevision,
          modRevision: r.modRevision,
          version: r.version,
        };
  if (e.prev !== undefined) out.prevValue = e.prev.value;
  return out;
}

/** One frame as SSE text (JSON never holds a raw newline, so each data is one line). */
export function sseFrame(frame: WatchFrame): string {
  switch (frame.kind) {
    case 'events':
      return `event: revision\nid: ${frame.revision}\ndata: ${JSON.stringify(frame.events.map(eventJson))}\n\n`;
    case 'progress':
      return `event: progress\nid: ${frame.revision}\ndata: {"revision":${frame.revision}}\n\n`;
    case 'end': {
      const base = { revision: frame.revision, message: frame.message };
      if (frame.reason === 'compacted') return `event: compacted\ndata: ${JSON.stringify({ compactRevision: frame.resume, ...base })}\n\n`;
      const name = frame.reason === 'overflow' ? 'overflow' : 'closed';
      const data = JSON.stringify({ reason: frame.reason, resumeRevision: frame.resume, ...base });
      return `event: ${name}\nid: ${frame.resume - 1}\ndata: ${data}\n\n`;
    }
  }
}

/** Frames ready at once are written together, up to about this much text. */
const COALESCE_CHARS = 64 * 1024;

/**
 * The watcher as a byte stream, pulled by the host as its client takes it (no read-ahead: a
 * client that stops reading leaves frames in the watcher, which ends it with `overflow` once it
 * had caught up). Cancelling (the client went away) closes the watcher and frees its place.
 */
export function sseStream(watcher: Watcher, opening: string): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let opened = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!opened) {
          opened = true;
          controller.enqueue(encoder.encode(opening));
          return;
        }
        const first = await watcher.take();
        if (first === null) return closeQuietly(controller);
        let text = sseFrame(first);
        let ended = first.kind === 'end';
        while (!ended && text.length < COALESCE_CHARS) {
          const more = watcher.poll();
          if (more === undefined) break;
          text += sseFrame(more);
          ended = more.kind === 'end';
        }
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          return; // cancelled meanwhile
        }
        if (ended) closeQuietly(controller);
      },
      cancel() {
        watcher.close();
      },
    },
    { highWaterMark: 0 },
  );
}

function closeQuietly(controller: ReadableStreamDefaultController<Uint8Array>): void {
  try {
    controller.close();
  } catch {
    // already closed or cancelled
  }
}
