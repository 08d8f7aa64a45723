// Who is asking, and may they do what they ask: the one hook both runtimes' routers call, once
// per request, before any route handler runs. It sees the route the router resolved the request
// to, not the raw URL, so every spelling of one resource (`/key/a`, `/key/%61`, `/members/p3/`)
// is judged as the same thing, and what it allowed is exactly what the handler then acts on.
//
// Credentials are `Authorization: Bearer <token>`: the root token (a secret the host is given:
// may do everything), an API token created through /auth/tokens (the replicated state holds
// its SHA-256 and its rules: kv/tokens.ts, so every peer judges it alike and a revocation takes
// effect on each peer as it applies it), or, on Node, the cluster token (peers' credential: it
// may change membership and leadership, which a joining node asks for). Secrets are compared as
// SHA-256 digests, the root and cluster tokens in constant time.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { TokenView } from '../kv/tokens.ts';
import { Grant, type Need } from './access.ts';
import type { ApiRequest } from './exchange.ts';
import { ApiError } from './http.ts';

/** A request as the router resolved it. */
export interface ApiRoute {
  /** The request method; HEAD is answered as GET and judged as GET. */
  method: string;
  /** The route pattern that matched, as written in the route table (router.ts): '/key/:key+',
   *  '/members/:id', '/:key+' (a metcd-style key), '/raft/*' (a refused path)… */
  pattern: string;
  /** The pattern's parameters, percent-decoded: what the handler acts on. */
  params: Readonly<Record<string, string>>;
  /** What the route table says this route needs (access.ts). */
  need: Need;
}

/** The request's headers (case-insensitive lookup). */
export type RequestHeaders = Pick<ApiRequest, 'header' | 'headerPairs'>;

/** The rights the request runs with, or the ApiError (401, 403) answered instead of the route. */
export type Authorize = (route: ApiRoute, headers: RequestHeaders) => Grant | ApiError;

/** Every request may do everything: a cluster in open mode (local development, tests). */
export const allowEverything: Authorize = () => Grant.everything('open mode');

export interface AuthSettings {
  /** tokens: every request but GET /health needs a credential. locked: no root token was
   *  configured and open mode was not asked for, so nothing but GET /health is served (safe by
   *  default: a deployment that forgot its secret is closed, not open). open: anyone may do
   *  anything (development), except change membership or leadership without the cluster token
   *  when there is one. */
  mode: 'tokens' | 'locked' | 'open';
  /** SHA-256 of the root token (tokens mode). */
  rootDigest?: Uint8Array;
  /** SHA-256 of the peers' cluster token, which may change membership and leadership. */
  clusterDigest?: Uint8Array;
  /** What a locked cluster tells every caller: how to give it a root token. */
  lockedHint?: string;
  /** Milliseconds since the epoch, for token expiry. */
  now: () => number;
}

/** Longest credential looked at (a root token is the operator's choice; API tokens are ~50). */
const TOKEN_CHARS_MAX = 4096;

/** Root tokens shorter than this are refused: a secret anyone may guess protects nothing. */
export const ROOT_TOKEN_CHARS_MIN = 16;

/** A configured root token, trimmed; null when it is too weak (short, or with spaces inside).
 *  The host's error names where it came from, never the value. */
export function rootTokenText(raw: string): string | null {
  const token = raw.trim();
  return token.length < ROOT_TOKEN_CHARS_MIN || /\s/.test(token) ? null : token;
}

export function digestOf(secret: string): Uint8Array {
  return sha256(new TextEncoder().encode(secret));
}

/** Equal digests, in time independent of where they differ. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function unauthenticated(message: string, error?: 'invalid_token'): ApiError {
  const challenge = error === undefined ? 'Bearer realm="metcd"' : `Bearer realm="metcd", error="${error}"`;
  return new ApiError(401, 'unauthenticated', message, { 'WWW-Authenticate': challenge });
}

/** The secret of `Authorization: Bearer <secret>`, null when the header is absent, or the 401. */
function bearer(headers: RequestHeaders): string | null | ApiError {
  const header = headers.header('authorization');
  if (header === null) return null;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (match === null || match[1]!.length > TOKEN_CHARS_MAX) {
    return unauthenticated('malformed Authorization header; expected "Authorization: Bearer <token>"', 'invalid_token');
  }
  return match[1]!;
}

/** The authorizer of a cluster, over the tokens of the applied state. */
export function createAuthorizer(settings: AuthSettings, tokens: () => TokenView): Authorize {
  if (settings.mode === 'tokens' && settings.rootDigest === undefined) throw new Error('tokens mode needs a root token');
  return (route, headers) => {
    const grant = authenticate(headers, settings, tokens);
    // An open route serves anyone; a credential that checks out still counts (details in /health).
    if (route.need === 'open') return grant instanceof ApiError ? Grant.anonymous() : grant;
    if (grant instanceof ApiError) return grant;
    if (settings.mode === 'open' && route.need === 'cluster' && grant.refusal('cluster', route.params) !== null) {
      return unauthenticated('membership and leadership changes need the cluster token: send "Authorization: Bearer <token>"');
    }
    return grant.refusal(route.need, route.params) ?? grant;
  };
}

/** Who the request's credential says it is: a Grant, or the 401 to answer. */
function authenticate(headers: RequestHeaders, settings: AuthSettings, tokens: () => TokenView): Grant | ApiError {
  if (settings.mode === 'locked') return unauthenticated(settings.lockedHint ?? 'this cluster serves nothing without a root token');
  const secret = bearer(headers);
  if (settings.mode === 'open') {
    // Anyone may do anything, but change membership or leadership without the cluster token.
    const cluster =
      settings.clusterDigest === undefined || (typeof secret === 'string' && sameDigest(digestOf(secret), settings.clusterDigest));
    return new Grant('open mode', { all: true, status: true, cluster });
  }
  if (secret instanceof ApiError) return secret;
  if (secret === null) return unauthenticated('this cluster needs a token: send "Authorization: Bearer <token>"');
  return grantFor(secret, settings, tokens());
}

function grantFor(secret: string, settings: AuthSettings, tokens: TokenView): Grant | ApiError {
  const digest = digestOf(secret);
  if (settings.rootDigest !== undefined && sameDigest(digest, settings.rootDigest)) return Grant.everything('the root token');
  if (settings.clusterDigest !== undefined && sameDigest(digest, settings.clusterDigest)) {
    return new Grant('the cluster token', { cluster: true, status: true });
  }
  const token = tokens.byHash(bytesToHex(digest));
  if (token === undefined) return unauthenticated('unknown or revoked token', 'invalid_token');
  if (token.expiresAt !== null && token.expiresAt <= settings.now()) {
    return unauthenticated(`token ${token.name} (${token.id}) has expired`, 'invalid_token');
  }
  return new Grant(`token ${token.name} (${token.id})`, { rules: token.rules, admin: token.admin, status: token.status }, true, token.id);
}
