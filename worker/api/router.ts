// The HTTP API, the same on both runtimes (the API layer of worker/README.md): routes, validation, errors,
// redirects. An ApiRequest in, an ApiReply out (exchange.ts), or a standard Request and
// Response through fetch(); the host supplies the peer.
//
// Reserved paths (README: copy this list). These first path segments belong to the API and
// take precedence over metcd-style keys; a key with such a name is reached through /key/<key>:
//
//   /key  /join  /members  /transfer-leader  /status  /health  /metrics  /auth  /compact  /txn  /lease  /watch  /lock  /election  /snapshot   the API routes
//   /ui                                                             the dashboard's static files (ui-route.ts)
//   /raft  /_metcd                                                  reserved for peer traffic and
//                                                                   host internals (never routed here)
//
// Every other path /<key> (the whole path after the first '/', percent-decoded) is a key:
// GET / PUT / DELETE. Unknown paths under a reserved segment answer 404, a known path with an
// unsupported method 405 (with Allow). Every answer carries X-Metcd-Revision and, when a leader
// is known, X-Metcd-Leader (withPeerHeaders); every error is {"error":{"code","message"}}
// (codes in http.ts; learner_behind adds learnerMatch and leaderLastIndex); no input makes it
// answer 500.
//
// Every request is resolved to a route (method, pattern, decoded params, and what the route
// table says it needs: access.ts) and put to the host's authorize hook (authorize.ts) once,
// before its handler runs; the Grant it returns is the handler's ctx.grant. A peer removed from
// the cluster then answers 410 removed to everything but GET /status, /health, /members and /metrics.
// Every answer is counted and timed per method, resolved route pattern and status (metrics.ts).
// Answers to a caller that presented no valid credential carry no X-Metcd-* peer headers.

import { Router } from 'itty-router';
import type { IRequest } from 'itty-router';
import { PeerError } from '../peer/errors.ts';
import type { Peer } from '../peer/peer.ts';
import { postPairs, putRaw, deleteKey, getJson, getRaw, getRange } from './kv-routes.ts';
import { health, join, listMembers, promoteMember, removeMember, status, transferLeader } from './cluster-routes.ts';
import { createToken, listTokens, revokeToken } from './auth-routes.ts';
import { compact } from './compact-route.ts';
import { txn } from './txn-route.ts';
import { grantLease, keepAlive, listLeases, revokeLease, timeToLive } from './lease-routes.ts';
import { watchRoute } from './watch-route.ts';
import { snapshotRoute } from './snapshot-route.ts';
import { restoreRoute } from './restore-route.ts';
import { uiRoute } from './ui-route.ts';
import { acquireLock, releaseLock } from './lock-routes.ts';
import { campaign, electionLeader, observe, proclaim, resign } from './election-routes.ts';
import { Grant, type Need } from './access.ts';
import { peerErrorToApi } from './errors.ts';
import { ApiError, H, badRequest, errorReply } from './http.ts';
import { allowEverything } from './authorize.ts';
import type { ApiRoute } from './authorize.ts';
import { fromFetchRequest, isApiReply, toFetchResponse, type ApiReply, type ApiRequest } from './exchange.ts';
import { DEFAULT_API_LIMITS } from './host.ts';
import { RequestMetrics, UNROUTED, metricsReply } from './metrics.ts';
import type { ApiContext, ApiHost, ApiLimits } from './host.ts';

export type { ApiHost, ApiLimits } from './host.ts';
export type { ApiRoute, AuthSettings, Authorize, RequestHeaders } from './authorize.ts';
export { allowEverything, createAuthorizer, digestOf, ROOT_TOKEN_CHARS_MIN, rootTokenText } from './authorize.ts';
export { DEFAULT_API_LIMITS } from './host.ts';

export const RESERVED_SEGMENTS = [
  'key',
  'join',
  'members',
  'transfer-leader',
  'status',
  'health',
  'metrics',
  'auth',
  'compact',
  'txn',
  'lease',
  'watch',
  'lock',
  'election',
  'snapshot',
  'ui',
  'raft',
  '_metcd',
] as const;

/** Routes any peer answers from its own state, leader or not. */
const LEADERLESS_SEGMENTS: ReadonlySet<string> = new Set(['status', 'health', 'members', 'metrics', 'ui']);

/**
 * Whether answering `request` takes a known leader: everything but introspection reads and
 * stale reads. A host may hold such a request briefly while an election is under way rather
 * than answer 503 at once (the edge does, see worker/edge/peer-object.ts).
 */
export function needsLeader(request: { readonly method: string; readonly url: string }): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return true;
  const url = new URL(request.url);
  const segment = url.pathname.split('/')[1] ?? '';
  if (LEADERLESS_SEGMENTS.has(segment)) return false;
  // A watch is stale unless it asks otherwise (watch-route.ts).
  if (segment === 'watch') return url.searchParams.get('level') === 'consistent';
  return url.searchParams.get('level') !== 'stale';
}

/** A route's work, given the route's parameters percent-decoded (what authorize() saw). */
type Handler = (params: Readonly<Record<string, string>>, ctx: ApiContext) => ApiReply | Promise<ApiReply>;
type Method = 'get' | 'put' | 'post' | 'delete' | 'all';
/** The order methods are registered and named in an Allow header. */
const ALLOW_ORDER = ['get', 'put', 'post', 'delete'] as const;

function notAllowed(allow: string): Handler {
  return (_params, ctx) => {
    throw new ApiError(405, 'method_not_allowed', `${ctx.method} is not supported on this path; use ${allow}`, { Allow: allow });
  };
}

function notFound(): never {
  throw new ApiError(404, 'not_found', 'no such route (reserved path; keys with this name are reached via /key/<key>)');
}

/** A path parameter, percent-decoded; a bad encoding is the client's error. */
function decodeParam(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw badRequest(`${name} is not valid percent-encoded UTF-8`);
  }
}

/** A route's path parameters, percent-decoded. */
function decodeParams(raw: Record<string, string> | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) params[name] = decodeParam(name, value);
  return params;
}

/** Routes a removed peer still answers (what it is, that it is not healthy, who the members are). */
const INTROSPECTION_PATTERNS: ReadonlySet<string> = new Set(['/status', '/health', '/members', '/metrics']);

/** Ask the host's authorize hook about `route`; a refusal is thrown (answered instead). A peer
 *  removed from the cluster answers everything but introspection 410, before any redirect. */
async function authorized(ctx: ApiContext, route: ApiRoute, run: Handler): Promise<ApiReply> {
  const verdict = ctx.authorize(route, ctx.request);
  if (verdict instanceof ApiError) throw verdict;
  ctx.grant = verdict;
  ctx.pattern = route.pattern;
  const removed = ctx.peer.removed();
  if (removed !== null && !(route.method === 'GET' && INTROSPECTION_PATTERNS.has(route.pattern)))
    throw new ApiError(410, 'removed', removed);
  return run(route.params, ctx);
}

function buildRoutes() {
  const router = Router<IRequest, [ApiContext]>();
  // Every handler runs behind authorize(), given the pattern it was registered with and what it
  // needs (access.ts). A route cannot be registered without saying what it needs.
  const on = (method: Method, pattern: string, need: Need, run: Handler): void => {
    router[method](pattern, (r: IRequest, ctx: ApiContext) =>
      authorized(ctx, { method: ctx.method, pattern, params: decodeParams(r.params), need }, run),
    );
  };
  // A path's methods, and 405 for any other with the Allow header they make (asked by a known
  // caller: an anonymous one learns nothing of the routes).
  const methods = (pattern: string, handlers: Partial<Record<Exclude<Method, 'all'>, [Need, Handler]>>): void => {
    for (const method of ALLOW_ORDER) {
      const h = handlers[method];
      if (h !== undefined) on(method, pattern, h[0], h[1]);
    }
    const allow = ALLOW_ORDER.filter((m) => handlers[m] !== undefined)
      .map((m) => m.toUpperCase())
      .join(', ');
    on('all', pattern, 'authenticated', notAllowed(allow));
  };
  // hraftd style
  methods('/key', {
    post: ['keys', (_p, ctx) => postPairs(ctx)],
    get: ['keys', (_p, ctx) => getRange(ctx)],
  });
  methods('/key/:key+', {
    get: ['read-key', (p, ctx) => getJson(ctx, p['key'])],
    put: ['write-key', (p, ctx) => putRaw(ctx, p['key'])],
    delete: ['write-key', (p, ctx) => deleteKey(ctx, p['key'], 'json')],
  });
  // membership and leadership
  methods('/join', {
    post: ['cluster', (_p, ctx) => join(ctx)],
  });
  methods('/members', {
    get: ['status', (_p, ctx) => listMembers(ctx)],
  });
  methods('/members/:id/promote', {
    post: ['cluster', (p, ctx) => promoteMember(ctx, p['id'])],
  });
  methods('/members/:id', {
    delete: ['cluster', (p, ctx) => removeMember(ctx, p['id'])],
  });
  methods('/transfer-leader', {
    post: ['cluster', (_p, ctx) => transferLeader(ctx)],
  });
  // access control
  methods('/auth/tokens', {
    post: ['admin', (_p, ctx) => createToken(ctx)],
    get: ['admin', (_p, ctx) => listTokens(ctx)],
  });
  methods('/auth/tokens/:id', {
    delete: ['admin', (p, ctx) => revokeToken(ctx, p['id'])],
  });
  // transactions
  methods('/txn', {
    post: ['keys', (_p, ctx) => txn(ctx)],
  });
  // history
  methods('/compact', {
    post: ['admin', (_p, ctx) => compact(ctx)],
  });
  // backup (snapshot-route.ts)
  methods('/snapshot', {
    get: ['admin', (_p, ctx) => snapshotRoute(ctx)],
    put: ['admin', (_p, ctx) => restoreRoute(ctx)],
  });
  // leases (lease-routes.ts): any known caller grants and keeps alive; reading and revoking a
  // lease check its keys (the handler, against ctx.grant), as etcd's auth does
  methods('/lease', {
    post: ['authenticated', (_p, ctx) => grantLease(ctx)],
    get: ['authenticated', (_p, ctx) => listLeases(ctx)],
  });
  methods('/lease/:id/keepalive', {
    post: ['authenticated', (p, ctx) => keepAlive(ctx, p['id'])],
  });
  methods('/lease/:id', {
    get: ['keys', (p, ctx) => timeToLive(ctx, p['id'])],
    delete: ['keys', (p, ctx) => revokeLease(ctx, p['id'])],
  });
  // locks and elections (lock-routes.ts, election-routes.ts): rights on their prefixes, checked by the handlers
  methods('/lock/:name', {
    post: ['keys', (p, ctx) => acquireLock(ctx, p['name'])],
  });
  methods('/lock/:name/:id', {
    delete: ['keys', (p, ctx) => releaseLock(ctx, p['name'], p['id'])],
  });
  methods('/election/:name/campaign', {
    post: ['keys', (p, ctx) => campaign(ctx, p['name'])],
  });
  methods('/election/:name/observe', {
    get: ['keys', (p, ctx) => observe(ctx, p['name'])],
  });
  methods('/election/:name/proclaim', {
    post: ['keys', (p, ctx) => proclaim(ctx, p['name'])],
  });
  methods('/election/:name/resign', {
    post: ['keys', (p, ctx) => resign(ctx, p['name'])],
  });
  methods('/election/:name', {
    get: ['keys', (p, ctx) => electionLeader(ctx, p['name'])],
  });
  // watch: read on the key or the whole prefix/range, checked by the handler (watch-route.ts)
  methods('/watch', {
    get: ['keys', (_p, ctx) => watchRoute(ctx, undefined)],
  });
  methods('/watch/:key+', {
    get: ['keys', (p, ctx) => watchRoute(ctx, p['key'])],
  });
  // introspection
  methods('/status', {
    get: ['status', (_p, ctx) => status(ctx)],
  });
  methods('/health', {
    get: ['open', (_p, ctx) => health(ctx)],
  });
  // The Prometheus text format (metrics.ts); the status right covers it (README, Metrics).
  methods('/metrics', {
    get: [
      'status',
      (_p, ctx) =>
        metricsReply(ctx.peer, ctx.requests, {
          costs: ctx.host.costs?.(),
          diskBytes: ctx.host.diskBytes?.(),
          memory: ctx.host.processMemory?.(),
        }),
    ],
  });
  // The dashboard (ui-route.ts): static files, open to anyone; the page sends the user's token.
  methods('/ui', {
    get: ['open', (_p, ctx) => uiRoute(ctx, 'index.html')],
  });
  methods('/ui/:asset', {
    get: ['open', (p, ctx) => uiRoute(ctx, p['asset'] ?? '')],
  });
  // Anything else under a reserved segment is not a key.
  for (const segment of RESERVED_SEGMENTS) on('all', `/${segment}/*`, 'authenticated', notFound);
  // metcd style: the rest of the path is the key
  methods(KEY_PATTERN, {
    get: ['read-key', (p, ctx) => getRaw(ctx, p['key'])],
    put: ['write-key', (p, ctx) => putRaw(ctx, p['key'])],
    delete: ['write-key', (p, ctx) => deleteKey(ctx, p['key'], 'raw')],
  });
  on('all', '/', 'authenticated', () => {
    throw new ApiError(400, 'bad_request', 'empty key; use /<key> or /key/<key>');
  });
  return router;
}

/** The metcd-style key route: the whole path after the first '/' is the key. */
const KEY_PATTERN = '/:key+';
/** What a request runs with until the authorizer grants it more. */
const ANONYMOUS = Grant.anonymous();
/** What the X-Metcd-* peer headers need: any credential the cluster accepts. */
const PEER_HEADERS_ROUTE: ApiRoute = { method: 'GET', pattern: '(peer headers)', params: {}, need: 'authenticated' };
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
export function withPeerHeaders(reply: ApiReply, peer: Pick<Peer, 'revision' | 'leaderId'>): ApiReply {
  const h = reply.headers;
  if (!(H.revision in h) && !(REVISION_LOWER in h)) h[H.revision] = String(peer.revision);
  if (!(H.leader in h) && !(LEADER_LOWER in h)) {
    const leader = peer.leaderId;
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
function keyRoute(path: string, ctx: ApiContext): Promise<ApiReply> | null {
  const method = ctx.method;
  if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE') return null;
  if (path.length < 2) return null;
  const slash = path.indexOf('/', 1);
  if (RESERVED.has(slash < 0 ? path.slice(1) : path.slice(1, slash))) return null;
  const need: Need = method === 'GET' ? 'read-key' : 'write-key';
  const route = { method, pattern: KEY_PATTERN, params: { key: decodeParam('key', path.slice(1)) }, need };
  if (method === 'GET') return authorized(ctx, route, (p) => getRaw(ctx, p['key']));
  if (method === 'PUT') return authorized(ctx, route, (p) => putRaw(ctx, p['key']));
  return authorized(ctx, route, (p) => deleteKey(ctx, p['key'], 'raw'));
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
  const authorize = host.authorize ?? allowEverything;
  const requests = new RequestMetrics();

  async function answer(ctx: ApiContext): Promise<ApiReply> {
    const { request, url, method } = ctx;
    try {
      // itty matches on method and URL only; the routes read the request through ctx.
      const reply: unknown = await (keyRoute(url.pathname, ctx) ?? router.fetch({ method, url: url.href } as IRequest, ctx));
      if (isApiReply(reply)) return reply;
      return errorReply(404, 'not_found', 'no such route');
    } catch (err) {
      if (err instanceof ApiError) return errorReply(err.status, err.code, err.message, err.headers, err.details);
      if (err instanceof PeerError) {
        const api = peerErrorToApi(err);
        return errorReply(api.status, api.code, api.message, api.headers, api.details);
      }
      // A bug, not the client's doing: say so without leaking internals.
      log('error', 'api.internal', {
        method: request.method,
        url: url.href,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
      return errorReply(500, 'internal', 'internal error');
    }
  }

  async function handle(request: ApiRequest): Promise<ApiReply> {
    const startMs = performance.now();
    // HEAD is answered as GET; the host's HTTP layer sends the headers only.
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const ctx: ApiContext = {
      host,
      peer: host.peer,
      request,
      url: request.url,
      method,
      authorize,
      grant: ANONYMOUS,
      limits,
      body: null,
      bodyBytesMax: 0,
      pattern: UNROUTED,
      requests,
    };
    const reply = await answer(ctx);
    requests.observe(method, ctx.pattern, reply.status, (performance.now() - startMs) / 1000);
    // Who leads and how far the state has come is for callers the cluster knows (asked again
    // only when the route did not authenticate the caller: /health, an error before authorize).
    const known = ctx.grant.authenticated || !(authorize(PEER_HEADERS_ROUTE, request) instanceof ApiError);
    return known ? withPeerHeaders(reply, host.peer) : reply;
  }

  return {
    handle,
    async fetch(request: Request): Promise<Response> {
      return toFetchResponse(await handle(fromFetchRequest(request)));
    },
  };
}
