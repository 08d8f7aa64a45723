// The token routes; the route table lets only admin credentials (root, or a token with
// "admin": true) reach them. Tokens are commands in the log (kv/tokens.ts): created and revoked
// on the leader, enforced by every peer once applied.
//
//   POST   /auth/tokens      {"name","rules":[{"prefix","access"}],"admin","status","ttl"}
//                            → 201 {"id","token",…}: the secret is shown this once, never again
//   GET    /auth/tokens      → {"tokens":[{"id","name","rules","admin","status","createdAt","expiresAt","expired"}]}
//   DELETE /auth/tokens/:id  → {"revoked","revision"}; 404 when there is no such token

import { TOKEN_ID_PATTERN } from '../kv/tokens.ts';
import type { KvResult, TokenRecord } from '../kv/types.ts';
import { digestOf } from './authorize.ts';
import { jsonFields, onlyFields } from './body.ts';
import { kvRefusalToApi } from './errors.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { ApiError, H, badRequest, jsonReply } from './http.ts';
import { onLeader } from './leader.ts';
import { queryParams } from './params.ts';

/** Longest lifetime a token may be given: ten years, in seconds. */
export const TOKEN_TTL_SECONDS_MAX = 10 * 365 * 24 * 3600;
const SECRET_PREFIX = 'metcd_';

export async function createToken(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax;
  return onLeader(ctx, async () => {
    const body = await jsonFields(ctx, ['name', 'rules', 'admin', 'status', 'ttl']);
    if (typeof body['name'] !== 'string') throw badRequest('name is required: a label for the token (1..128 printable ASCII)');
    const rules = body['rules'] ?? [];
    if (!Array.isArray(rules)) throw badRequest('rules must be an array of {"prefix","access"}');
    for (const rule of rules as unknown[]) {
      if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) throw badRequest('each rule must be {"prefix","access"}');
      onlyFields(rule as Record<string, unknown>, ['prefix', 'access']);
    }
    const admin = body['admin'] ?? false;
    const status = body['status'] ?? false;
    if (typeof admin !== 'boolean' || typeof status !== 'boolean') throw badRequest('admin and status must be true or false');
    const ttl = body['ttl'];
    if (ttl !== undefined && !(Number.isSafeInteger(ttl) && (ttl as number) >= 1 && (ttl as number) <= TOKEN_TTL_SECONDS_MAX)) {
      throw badRequest(`ttl must be a whole number of seconds in [1, ${TOKEN_TTL_SECONDS_MAX}]`);
    }
    const now = (ctx.host.now ?? Date.now)();
    const secret = SECRET_PREFIX + base64url(randomBytes(32));
    const token: TokenRecord = {
      id: hex(randomBytes(8)),
      name: body['name'],
      hash: hexDigest(secret),
      rules: rules as TokenRecord['rules'],
      admin,
      status,
      expiresAt: ttl === undefined ? null : now + (ttl as number) * 1000,
      createdAt: now,
    };
    const result = written((await ctx.peer.write({ op: 'token-put', token })).result);
    return jsonReply({ ...describe(token, now), token: secret, revision: result.revision }, 201, {
      'Cache-Control': 'no-store',
      [H.revision]: String(result.revision),
    });
  });
}

export async function listTokens(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  return onLeader(ctx, async () => {
    const outcome = await ctx.peer.read('default', (kv) => kv.tokens.list());
    const now = (ctx.host.now ?? Date.now)();
    return jsonReply({ tokens: outcome.value.map((t) => describe(t, now)) }, 200, { [H.revision]: String(outcome.revision) });
  });
}

export async function revokeToken(ctx: ApiContext, pathId: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const id = pathId ?? '';
  if (!TOKEN_ID_PATTERN.test(id)) throw badRequest('a token id is 16 lowercase hex digits (see GET /auth/tokens)');
  return onLeader(ctx, async () => {
    const result = written((await ctx.peer.write({ op: 'token-delete', id })).result);
    if (result.op === 'delete' && result.deleted === 0) throw new ApiError(404, 'not_found', `no token ${id}`);
    return jsonReply({ revoked: id, revision: result.revision }, 200, { [H.revision]: String(result.revision) });
  });
}

/** A token as listed: everything but its digest. */
function describe(t: TokenRecord, now: number) {
  return {
    id: t.id,
    name: t.name,
    rules: t.rules,
    admin: t.admin,
    status: t.status,
    createdAt: new Date(t.createdAt).toISOString(),
    expiresAt: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
    expired: t.expiresAt !== null && t.expiresAt <= now,
  };
}

function written(result: KvResult): Extract<KvResult, { ok: true }> {
  if (!result.ok) throw kvRefusalToApi(result);
  return result;
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function hexDigest(secret: string): string {
  return hex(digestOf(secret));
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}
