// The lease routes (etcd's Lease API over JSON), and the ?lease= / ?ttl= options of key writes:
//   POST   /lease {"ttl":N}        grant        → {"id","ttl"}   (ttl raised to the minimum, as etcd)
//   POST   /lease/:id/keepalive    keep alive   → {"id","ttl"}   (leader only, no log entry)
//   GET    /lease[?limit=N&after=ID] list      → {"leases":[{"id","grantedTtl"}],"more"}  (by id)
//   GET    /lease/:id              time to live → {"id","ttl","grantedTtl","keys"}
//   DELETE /lease/:id              revoke       → {"deleted","revision"} (its keys, in one revision)
// Ids are decimal strings in JSON (etcd's gateway writes its int64 ids so). An unknown lease is
// 404 lease_not_found. Rights (etcd's): any caller the cluster knows may grant and keep alive;
// reading a lease needs read on each of its keys, revoking needs write on each (they are deleted),
// attaching a key is a write of that key.

import { LEASE_TTL_MAX_SECONDS, LEASE_TTL_MIN_SECONDS } from '../kv/leases.ts';
import { jsonFields } from './body.ts';
import { kvRefusalToApi } from './errors.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { ApiError, H, badRequest, jsonReply } from './http.ts';
import { onLeader } from './leader.ts';
import { queryParams } from './params.ts';

/** The query parameters a key write accepts for its lease. */
export const LEASE_WRITE_PARAMS = ['lease', 'ttl'] as const;

const ID_PATTERN = /^[1-9][0-9]{0,15}$/;

/** A lease id from a path or a query: a positive decimal integer below 2^53. */
export function leaseIdParam(raw: string | undefined): number {
  const id = Number(raw);
  if (raw === undefined || !ID_PATTERN.test(raw) || !Number.isSafeInteger(id))
    throw badRequest('lease id must be a positive decimal integer');
  return id;
}

/** A TTL in whole seconds within the bounds, raised to the peer's minimum (etcd's minLeaseTTL). */
export function ttlValue(ctx: ApiContext, ttl: unknown): number {
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < LEASE_TTL_MIN_SECONDS || ttl > LEASE_TTL_MAX_SECONDS) {
    throw badRequest(`ttl must be an integer of ${LEASE_TTL_MIN_SECONDS}..${LEASE_TTL_MAX_SECONDS} seconds`);
  }
  return Math.max(ttl, ctx.peer.leaseTtlMinSeconds);
}

/** Grant a lease (on the leader); its id and granted TTL. */
export async function grant(ctx: ApiContext, ttl: number): Promise<{ id: number; ttl: number; revision: number }> {
  // A lease granted with an API token counts against that token's quota (leasesPerOwnerMax).
  const owner = ctx.grant.tokenId;
  const result = (await ctx.peer.write(owner === undefined ? { op: 'lease-grant', ttl } : { op: 'lease-grant', ttl, owner })).result;
  if (!result.ok) throw kvRefusalToApi(result);
  if (result.op !== 'lease-grant') throw new Error(`lease-grant answered ${result.op}`);
  return { id: result.id, ttl: result.ttl, revision: result.revision };
}

function notFound(id: number): ApiError {
  return new ApiError(404, 'lease_not_found', `lease ${id} not found`);
}

/** POST /lease {"ttl":N} */
export async function grantLease(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax;
  return onLeader(ctx, async () => {
    const body = await jsonFields(ctx, ['ttl']);
    const g = await grant(ctx, ttlValue(ctx, body['ttl']));
    return jsonReply({ id: String(g.id), ttl: g.ttl }, 200, { [H.revision]: String(g.revision) });
  });
}

/** POST /lease/:id/keepalive */
export async function keepAlive(ctx: ApiContext, rawId: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const id = leaseIdParam(rawId);
  return onLeader(ctx, async () => {
    const kept = await ctx.peer.keepAlive(id);
    if (kept === null) throw notFound(id);
    return jsonReply({ id: String(id), ttl: kept.ttl });
  });
}

/** Most leases one GET /lease answers (and its default page). */
export const LEASE_LIST_LIMIT_MAX = 10_000;
const LEASE_LIST_LIMIT_DEFAULT = 1000;

/** GET /lease: lease ids and granted TTLs in id order, a page at a time (etcd's LeaseLeases).
 *  The time left and the keys are GET /lease/:id's (which checks read on them). */
export async function listLeases(ctx: ApiContext): Promise<ApiReply> {
  const params = queryParams(ctx.url, ['limit', 'after']);
  const rawLimit = params.get('limit');
  const limit = rawLimit === undefined ? LEASE_LIST_LIMIT_DEFAULT : Number(rawLimit);
  if (rawLimit !== undefined && (!/^[1-9][0-9]{0,5}$/.test(rawLimit) || limit > LEASE_LIST_LIMIT_MAX)) {
    throw badRequest(`limit must be an integer of 1..${LEASE_LIST_LIMIT_MAX}`);
  }
  const after = params.has('after') ? leaseIdParam(params.get('after')) : 0;
  return onLeader(ctx, async () => {
    const read = await ctx.peer.read('default', (kv) => {
      const all = [...kv.leases.ttls()].filter(([id]) => id > after).sort((a, b) => a[0] - b[0]);
      return { page: all.slice(0, limit), more: all.length > limit };
    });
    const { page, more } = read.value;
    const leases = page.map(([id, ttl]) => ({ id: String(id), grantedTtl: ttl }));
    return jsonReply({ leases, more }, 200, { [H.revision]: String(read.revision) });
  });
}

/** GET /lease/:id */
export async function timeToLive(ctx: ApiContext, rawId: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const id = leaseIdParam(rawId);
  return onLeader(ctx, async () => {
    const lease = await ctx.peer.leaseTimeToLive(id);
    if (lease === null) throw notFound(id);
    for (const key of lease.keys) ctx.grant.requireRead(key);
    return jsonReply({ id: String(id), ttl: lease.ttl, grantedTtl: lease.grantedTtl, keys: lease.keys });
  });
}

/** DELETE /lease/:id */
export async function revokeLease(ctx: ApiContext, rawId: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const id = leaseIdParam(rawId);
  return onLeader(ctx, async () => {
    const lease = (await ctx.peer.read('default', (kv) => kv.leases.get(id))).value;
    if (lease === undefined) throw notFound(id);
    for (const key of lease.keys) ctx.grant.requireWrite(key);
    const result = (await ctx.peer.write({ op: 'lease-revoke', id })).result;
    if (!result.ok) throw kvRefusalToApi(result);
    const deleted = result.op === 'delete' ? result.deleted : 0;
    return jsonReply({ deleted, revision: result.revision }, 200, { [H.revision]: String(result.revision) });
  });
}

/**
 * A key write's lease, from ?lease=ID or ?ttl=N (which grants one first, on the leader: its id is
 * answered in X-Metcd-Lease; should the write then fail, the new lease simply expires). Undefined
 * when the write names none (a put without a lease detaches its keys, as etcd).
 */
export async function writeLease(
  ctx: ApiContext,
  params: Map<string, string>,
  headers: Record<string, string>,
): Promise<number | undefined> {
  const raw = params.get('lease');
  const ttl = params.get('ttl');
  if (raw !== undefined && ttl !== undefined) throw badRequest('give lease or ttl, not both');
  if (raw === '0') return undefined;
  if (raw !== undefined) return leaseIdParam(raw);
  if (ttl === undefined) return undefined;
  const g = await grant(ctx, ttlValue(ctx, /^[0-9]{1,10}$/.test(ttl) ? Number(ttl) : ttl));
  headers[H.lease] = String(g.id);
  return g.id;
}
