// The HTTP API, the same on both runtimes (the API layer of worker/README.md): routes, validation, errors,
// redirects. An ApiRequest in, an ApiReply out (exchange.ts), or a standard Request and
// Response through fetch(); the host supplies the peer.
//
// Reserved paths (README: copy this list). These first path segments belong to the API and
// take precedence over metcd-style keys; a key with such a name is reached through /key/<key>:
//
//   /key  /join  /members  /transfer-leader  /status  /health     the API routes
//   /raft  /_metcd                                                  reserved for peer traffic and
//                                                                   host internals (never routed here)
//
// Every other path /<key> (the whole path after the first '/', percent-decoded) is a key:
// GET / PUT / DELETE. Unknown paths under a reserved segment answer 404, a known path with an
// unsupported method 405 (with Allow). Every answer carries X-Metcd-Revision and, when a leader
// is known, X-Metcd-Leader (withPeerHeaders); every error is
// {"error":{"code","message"}} (codes in http.ts); no input makes it answer 500.

import { Router } from 'itty-router';
import type { IRequest } from 'itty-router';
import { PeerError } from '../peer/errors.ts';
import type { Peer } from '../peer/peer.ts';
import { postPairs, putRaw, deleteKey, getJson, getRaw, getRange } from './kv-routes.ts';
import { health, join, listMembers, promoteMember, removeMember, status, transferLeader } from './cluster-routes.ts';
import { peerErrorToApi } from './errors.ts';
import { ApiError, H, errorReply } from './http.ts';
import { fromFetchRequest, isApiReply, toFetchResponse, type ApiReply, type ApiRequest } from './exchange.ts';
import { DEFAULT_API_LIMITS } from './host.ts';
import type { ApiContext, ApiHost, ApiLimits } from './host.ts';

export type { ApiHost, ApiLimits } from './host.ts';
export { DEFAULT_API_LIMITS } from './host.ts';

export const RESERVED_SEGMENTS = ['key', 'join', 'members', 'transfer-leader', 'status', 'health', 'raft', '_metcd'] as const;

/** Routes any peer answers from its own state, leader or not. */
const LEADERLESS_SEGMENTS: ReadonlySet<string> = new Set(['status', 'health', 'members']);

/**
 * Whether answering `request` takes a known leader: everything but introspection reads and
 * stale reads. A host may hold such a request briefly while an election is under way rather
 * than answer 503 at once (the edge does, see worker/edge/peer-object.ts).
 */
export function needsLeader(request: { readonly method: string; readonly url: string }): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return true;
  const url = new URL(request.url);
  if (LEADERLESS_SEGMENTS.has(url.pathname.split('/')[1] ?? '')) return false;
  return url.searchParams.get('level') !== 'stale';
}

/** Whether `request` changes membership or leadership (hosts guard these with the cluster token). */
export function changesCluster(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  return path === '/join' || path === '/transfer-leader' || path.startsWith('/members/');
}

type Handler = (request: IRequest, ctx: ApiContext) => ApiReply | Promise<ApiReply>;

function notAllowed(allow: string): Handler {
  return (request) => {
    throw new ApiError(405, 'method_not_allowed', `${request.method} is not supported on this path; use ${allow}`, { Allow: allow });
  };
}

function notFound(): never {
  throw new ApiError(404, 'not_found', 'no such route (reserved path; keys with this name are reached via /key/<key>)');
}

function buildRoutes() {
  const router = Router<IRequest, [ApiContext]>();
  router
    // hraftd style
    .post('/key', (_r, ctx) => postPairs(ctx))
    .get('/key', (_r, ctx) => getRange(ctx))
    .all('/key', notAllowed('GET, POST'))
    .get('/key/:key+', (r, ctx) => getJson(ctx, r.params['key']))
    .put('/key/:key+', (r, ctx) => putRaw(ctx, r.params['key']))
    .delete('/key/:key+', (r, ctx) => deleteKey(ctx, r.params['key'], 'json'))
    .all('/key/:key+', notAllowed('GET, PUT, DELETE'))
    // membership and leadership
    .post('/join', (_r, ctx) => join(ctx))
    .all('/join', notAllowed('POST'))
    .get('/members', (_r, ctx) => listMembers(ctx))
    .all('/members', notAllowed('GET'))
    .post('/members/:id/promote', (r, ctx) => promoteMember(ctx, r.params['id']))
    .all('/members/:id/promote', notAllowed('POST'))
    .delete('/members/:id', (r, ctx) => removeMember(ctx, r.params['id']))
    .all('/members/:id', notAllowed('DELETE'))
    .post('/transfer-leader', (_r, ctx) => transferLeader(ctx))
    .all('/transfer-leader', notAllowed('POST'))
    // introspection
    .get('/status', (_r, ctx) => status(ctx))
    .all('/status', notAllowed('GET'))
    .get('/health', (_r, ctx) => health(ctx))
    .all('/health', notAllowed('GET'));
  // Anything else under a reserved segment is not a key.
  for (const segment of RESERVED_SEGMENTS) router.all(`/${segment}/*`, notFound);
  router
    // metcd style: the rest of the path is the key
    .get('/:key+', (r, ctx) => getRaw(ctx, r.params['key']))
    .put('/:key+', (r, ctx) => putRaw(ctx, r.params['key']))
    .delete('/:key+', (r, ctx) => deleteKey(ctx, r.params['key'], 'raw'))
    .all('/:key+', notAllowed('GET, PUT, DELETE'))
    .all('/', () => {
      throw new ApiError(400, 'bad_request', 'empty key; use /<key> or /key/<key>');
    });
  return router;
}

const RESERVED: ReadonlySet<string> = new Set(RESERVED_SEGMENTS);
const REVISION_LOWER = H.revision.toLowerCase();
const LEADER_LOWER = H.leader.toLowerCase();

/**
 * The headers every answer from a peer carries, on both runtimes, whoever made the answer (a
 * route, or a host's own refusal at its front door): X-Metcd-Revision, the peer's KV revision,
 * and X-Metcd-Leader, the leader it knows of (absent while it knows none), so a client or the
 * edge Worker can go straight to the leader next time. A proxied reply keeps the leader's own
 * (lower-cased names); a route that names a leader (a redirect, a stale read) keeps its own.
 */
export function withPeerHeaders(reply: ApiReply, peer: Pick<Peer, 'revision' | 'leaderInfo'>): ApiReply {
  const h = reply.headers;
  if (!(H.revision in h) && !(REVISION_LOWER in h)) h[H.revision] = String(peer.revision);
  if (!(H.leader in h) && !(LEADER_LOWER in h)) {
    const leader = peer.leaderInfo().id;
    if (leader !== '') h[H.leader] = leader;
  }
  return reply;
}

/**
 * The metcd-style key routes — GET / PUT / DELETE /<key> — carry nearly all traffic. They are
 * answered here without walking the route table (itty tries every route's pattern in turn),
 * for exactly the paths the table's '/:key+' routes would take: a first segment that is not
 * reserved. Everything else, including other methods on those paths, goes through the table.
 */
function keyRoute(method: string, path: string, ctx: ApiContext): Promise<ApiReply> | null {
  if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE') return null;
  if (path.length < 2) return null;
  const slash = path.indexOf('/', 1);
  if (RESERVED.has(slash < 0 ? path.slice(1) : path.slice(1, slash))) return null;
  const key = path.slice(1);
  if (method === 'GET') return getRaw(ctx, key);
  if (method === 'PUT') return putRaw(ctx, key);
  return deleteKey(ctx, key, 'raw');
}

export interface ApiRouter {
  /** The API over the host's own request/reply (no web Request/Response built). */
  handle(request: ApiRequest): Promise<ApiReply>;
  /** The API over standard fetch types. */
  fetch(request: Request): Promise<Response>;
}

export function createApiRouter(host: ApiHost): ApiRouter {
  const router = buildRoutes();
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...host.limits };
  const log = host.log ?? (() => {});

  async function answer(request: ApiRequest): Promise<ApiReply> {
    const url = request.url;
    const ctx: ApiContext = { host, peer: host.peer, request, url, limits, body: null, bodyBytesMax: 0 };
    // HEAD is answered as GET; the host's HTTP layer sends the headers only.
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    try {
      // itty matches on method and URL only; the routes read the request through ctx.
      const reply: unknown = await (keyRoute(method, url.pathname, ctx) ??
        router.fetch({ method, url: url.href } as IRequest, ctx));
      if (isApiReply(reply)) return reply;
      return errorReply(404, 'not_found', 'no such route');
    } catch (err) {
      if (err instanceof ApiError) return errorReply(err.status, err.code, err.message, err.headers);
      if (err instanceof PeerError) {
        const api = peerErrorToApi(err);
        return errorReply(api.status, api.code, api.message, api.headers);
      }
      // A bug, not the client's doing: say so without leaking internals.
      log('error', 'api.internal', { method: request.method, url: url.href, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      return errorReply(500, 'internal', 'internal error');
    }
  }

  async function handle(request: ApiRequest): Promise<ApiReply> {
    return withPeerHeaders(await answer(request), host.peer);
  }

  return {
    handle,
    async fetch(request: Request): Promise<Response> {
      return toFetchResponse(await handle(fromFetchRequest(request)));
    },
  };
}
