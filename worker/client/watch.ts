// Watch as an async iterator: one frame per revision, resumed after any break from the revision
// after the last one delivered, so nothing is skipped and nothing repeated. Its deadline covers
// only the connecting.

import { MetcdError } from './errors.ts';
import { sseFrames } from './sse.ts';
import type { Transport } from './transport.ts';
import type { WatchOptions, WatchEvent, WatchResponse, Watch } from './types.ts';
import { sleep, encodePath, parseJson } from './util.ts';

type Query = Record<string, string | number | undefined>;

/**
 * Every change of a key, a prefix or a range. A broken stream (a peer gone, a connection cut, a
 * peer's `overflow` or `closed`) is resumed on any endpoint (Last-Event-ID). The iterator throws
 * MetcdError `compacted` (details `compactRevision`) when the history it needs is gone, and ends
 * on close() or the signal.
 */
export function watch(t: Transport, opts: WatchOptions): Watch {
  const local = new AbortController();
  const outer = opts.signal;
  const onOuter = () => local.abort(outer?.reason);
  if (outer?.aborted) onOuter();
  outer?.addEventListener('abort', onOuter, { once: true });
  const state = { reconnects: 0 };
  let path = '/watch';
  const query: Query = { progressMs: opts.progressMs, level: opts.level };
  if (opts.key !== undefined) {
    path = `/watch/${encodePath(opts.key)}`;
    if (opts.prefix === true) query['prefix'] = '1';
  } else if (typeof opts.prefix === 'string') query['prefix'] = opts.prefix;
  else if (opts.start !== undefined || opts.end !== undefined) {
    query['start'] = opts.start ?? '';
    query['end'] = opts.end ?? '';
  } else throw new MetcdError(0, 'bad_request', 'watch: give key, prefix, or start/end');

  const iterable = watchLoop(t, path, query, opts, local, state, () => outer?.removeEventListener('abort', onOuter));
  return {
    [Symbol.asyncIterator]: () => iterable,
    close: () => local.abort(),
    get reconnects() {
      return state.reconnects;
    },
  };
}

async function* watchLoop(
  t: Transport,
  path: string,
  query: Query,
  opts: WatchOptions,
  local: AbortController,
  state: { reconnects: number },
  unlink: () => void,
): AsyncGenerator<WatchResponse> {
  let next = opts.fromRevision;
  let backoff = 50;
  try {
    for (;;) {
      if (local.signal.aborted) return;
      let body: ReadableStream<Uint8Array>;
      try {
        const res = await t.open(
          {
            method: 'GET',
            path,
            query,
            retry: 'read',
            stream: true,
            headers: next === undefined ? {} : { 'Last-Event-ID': String(next - 1) },
          },
          { signal: local.signal, timeoutMs: opts.timeoutMs },
        );
        if (next === undefined) {
          const from = res.headers.get('X-Metcd-Watch-From');
          next = from !== null ? Number(from) : Number(res.headers.get('X-Metcd-Revision') ?? 0) + 1;
        }
        body = res.body!;
      } catch (err) {
        if (local.signal.aborted) return;
        // Unreachable everywhere within the deadline: try again while the caller wants it.
        if (err instanceof MetcdError && (err.code === 'timeout' || err.status === 0 || err.status === 503)) {
          await sleep(backoff, local.signal).catch(() => {});
          backoff = Math.min(backoff * 2, 1000);
          state.reconnects++;
          continue;
        }
        throw err;
      }
      backoff = 50;
      let broken = false;
      try {
        for await (const f of sseFrames(body)) {
          if (f.event === 'revision') {
            const revision = Number(f.id);
            if (next !== undefined && revision < next) continue; // already delivered
            next = revision + 1;
            yield { revision, events: parseJson<WatchEvent[]>(f.data) };
          } else if (f.event === 'progress') {
            const revision = Number(f.id);
            if (next === undefined || revision >= next) next = revision + 1;
            if (opts.progress === true) yield { revision, events: [] };
          } else if (f.event === 'compacted') {
            const data = parseJson<Record<string, unknown>>(f.data);
            throw new MetcdError(410, 'compacted', `the watch's start revision ${next} was compacted`, data);
          } else if (f.event === 'overflow' || f.event === 'closed') {
            const data = parseJson<{ resumeRevision?: number }>(f.data);
            if (typeof data.resumeRevision === 'number') next = data.resumeRevision;
            break;
          }
        }
      } catch (err) {
        if (local.signal.aborted) return;
        if (err instanceof MetcdError) throw err;
        broken = true; // the connection broke mid-stream: resume below, on another endpoint
      }
      if (local.signal.aborted) return;
      if (broken) t.markDown();
      state.reconnects++;
    }
  } finally {
    unlink();
    local.abort();
  }
}
