// GET /watch/:key+ (one key; ?prefix=1: every key under it) and GET /watch?prefix=P or
// ?start=&end= (a range, '' end: no bound): a Server-Sent Events stream of the changes (sse.ts),
// served from the peer's waiting room (worker/peer/watch-room.ts). And the Consul-style blocking
// read on the same room: GET /:key?waitIndex=N&wait=30s (kv-routes.ts calls blockUntilChanged).
//
// Where it starts: ?fromRevision=N replays from N; a Last-Event-ID header (an EventSource
// reconnecting, which keeps the URL) resumes after that id and wins over fromRevision; neither:
// the changes after the revision the peer serves now. A start below the compacted revision
// answers 200 with one `compacted` event.
//
// Levels: `stale` (the default) is served by any peer from its applied state, so a follower's
// stream trails the leader by its apply lag and a watch keeps working through elections.
// `consistent` is the leader's: it waits for a ReadIndex round and for apply to reach it before
// it starts, so a watch without fromRevision starts no earlier than every write acknowledged
// before the request; a follower sends the client to the leader (the core's ReadIndex is the
// leader's), as for reads.
//
// Authorization: read on the key, or on the whole prefix or range (as GET /key ranges), checked
// here once against ctx.grant before the watcher is registered.

import { PeerError } from '../peer/errors.ts';
import type { WatchFilter } from '../peer/watch-room.ts';
import type { ApiReply } from './exchange.ts';
import { peerErrorToApi } from './errors.ts';
import type { ApiContext } from './host.ts';
import { H, badRequest } from './http.ts';
import { onPeer } from './leader.ts';
import { checkKey, intParam, queryParams } from './params.ts';
import { sseStream } from './sse.ts';

export const PROGRESS_MS_DEFAULT = 10_000;
export const PROGRESS_MS_MIN = 100;
export const PROGRESS_MS_MAX = 600_000;
/** Blocking reads: `wait` when absent, and its ceiling (Consul: 5 min default and max 10). */
export const WAIT_MS_DEFAULT = 30_000;
export const WAIT_MS_MAX = 300_000;

const WATCH_PARAMS = ['prefix', 'start', 'end', 'fromRevision', 'progressMs', 'level'] as const;

/** GET /watch/:key+ (pathKey) or GET /watch (none: the query names a prefix or a range). */
export async function watchRoute(ctx: ApiContext, pathKey: string | undefined): Promise<ApiReply> {
  const params = queryParams(ctx.url, WATCH_PARAMS);
  const keyBytesMax = ctx.peer.kvLimits.keyBytesMax;
  let filter: WatchFilter;
  if (pathKey !== undefined) {
    if (params.has('start') || params.has('end')) throw badRequest('start/end name a range: use GET /watch?start=&end=');
    const key = checkKey(pathKey, keyBytesMax);
    const prefix = flag(params.get('prefix'));
    filter = prefix ? { prefix: key } : { key };
    if (prefix) ctx.grant.requireRange({ prefix: key, start: '', end: '' });
    else ctx.grant.requireRead(key);
  } else {
    const prefix = params.get('prefix');
    const start = params.get('start');
    const end = params.get('end');
    if (prefix !== undefined && (start !== undefined || end !== undefined)) throw badRequest('give prefix, or start/end, not both');
    if (prefix === undefined && start === undefined) throw badRequest('GET /watch needs ?prefix= or ?start=&end= (or use /watch/<key>)');
    for (const k of [prefix, start, end]) if (k !== undefined && k !== '') checkKey(k, keyBytesMax);
    filter = prefix !== undefined ? { prefix } : { start: start ?? '', end: end ?? '' };
    ctx.grant.requireRange({ prefix: prefix ?? '', start: start ?? '', end: end ?? '' });
  }
  const level = params.get('level') ?? 'stale';
  if (level !== 'stale' && level !== 'consistent')
    throw badRequest(`a watch's level is stale (the default) or consistent, not ${JSON.stringify(level)}`);
  const progressMs = intParam(params, 'progressMs', PROGRESS_MS_MIN) ?? PROGRESS_MS_DEFAULT;
  if (progressMs > PROGRESS_MS_MAX) throw badRequest(`progressMs must be at most ${PROGRESS_MS_MAX}`);
  let from = intParam(params, 'fromRevision', 1);
  const lastId = ctx.request.header('Last-Event-ID');
  if (lastId !== null) {
    if (!/^\d{1,16}$/.test(lastId.trim())) throw badRequest('Last-Event-ID must be a revision (what this stream sent as id)');
    from = Number(lastId.trim()) + 1;
  }

  return onPeer(ctx, level === 'consistent', async () => {
    if (level === 'consistent') {
      const seen = await ctx.peer.read('consistent', (kv) => kv.revision);
      from ??= seen.revision + 1;
    }
    const headers: Record<string, string> = {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-store',
      'X-Accel-Buffering': 'no', // proxies must pass events on as they come
      [H.readLevel]: level,
    };
    // HEAD: the headers a watch would have, and no watcher.
    if (ctx.request.method === 'HEAD') return { status: 200, headers, body: null };
    // Where this watch starts, read before the room fills it with history (its position moves
    // past what it queued): a client that loses the stream before its first frame resumes here.
    const start = from ?? ctx.peer.revision + 1;
    const watcher = ctx.peer.watch(filter, { from: start, progressMs });
    headers['X-Metcd-Watch-From'] = String(start);
    const opening = `: metcd watch from revision ${start}\nretry: 1000\n\n`;
    return { status: 200, headers, body: sseStream(watcher, opening) };
  });
}

/**
 * Block until `key` changed at a revision above `waitIndex`, or `wait` elapsed (the answer is
 * then the current value either way). A follower does not wait for a read it has to send to the
 * leader: the caller's read redirects at once. Returns when the read may go ahead.
 */
export async function blockUntilChanged(
  ctx: ApiContext,
  key: string,
  waitIndex: number,
  wait: string | undefined,
  stale: boolean,
): Promise<void> {
  const waitMs = waitParam(wait);
  if (!stale && !ctx.peer.isLeader()) return;
  let watcher;
  try {
    watcher = ctx.peer.watch({ key }, { from: waitIndex + 1, waitMs });
  } catch (err) {
    throw err instanceof PeerError ? peerErrorToApi(err) : err;
  }
  try {
    await watcher.take(); // a change, the deadline, or an end (compacted, removed…: the read says)
  } finally {
    watcher.close();
  }
}

/** `wait` as Consul spells it: 30s, 500ms, 2m (absent: WAIT_MS_DEFAULT). */
export function waitParam(wait: string | undefined): number {
  if (wait === undefined) return WAIT_MS_DEFAULT;
  const m = /^(\d{1,9})(ms|s|m)$/.exec(wait);
  if (m === null) throw badRequest(`wait must be a duration such as 30s, 500ms or 2m, got ${JSON.stringify(wait)}`);
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
  if (ms < 1 || ms > WAIT_MS_MAX) throw badRequest(`wait must be between 1ms and ${WAIT_MS_MAX / 1000}s`);
  return ms;
}

function flag(value: string | undefined): boolean {
  if (value === undefined || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true' || value === '') return true;
  throw badRequest(`prefix on /watch/<key> is a flag (1 or true); to name a prefix use GET /watch?prefix=`);
}
