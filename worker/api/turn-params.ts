// What the lock and election routes share: their names, the prefix each keeps its contenders
// under, the contender's lease (given, or granted for the request), and how a failed turn answers.

import { PeerError } from '../peer/errors.ts';
import { peerErrorToApi } from './errors.ts';
import type { ApiContext } from './host.ts';
import { ApiError, badRequest } from './http.ts';
import { grant, leaseIdParam, ttlValue } from './lease-routes.ts';
import { TurnError } from './turns.ts';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A contender's id in a path: its lease in hex, as in its key. */
const CONTENDER_PATTERN = /^[0-9a-f]{1,14}$/;
/** etcd's concurrency sessions default to a 60 s TTL. */
export const TURN_TTL_DEFAULT_S = 60;

export function turnName(raw: string | undefined, what: string): string {
  if (raw === undefined || !NAME_PATTERN.test(raw)) throw badRequest(`${what} name must be 1..128 of letters, digits, '.', '_' or '-'`);
  return raw;
}

export function contenderId(raw: string | undefined): string {
  if (raw === undefined || !CONTENDER_PATTERN.test(raw))
    throw badRequest('a contender is named by its lease id in hex (the last part of its key)');
  return raw;
}

/** The lease to contend with: ?lease=ID (the caller keeps it alive), else one granted now with
 *  `ttl` seconds (default 60), which is revoked again if the turn is not taken. */
export async function contenderLease(
  ctx: ApiContext,
  lease: string | undefined,
  ttl: unknown,
): Promise<{ id: number; granted: boolean; ttl: number }> {
  if (lease !== undefined && ttl !== undefined) throw badRequest('give lease or ttl, not both');
  if (lease !== undefined) return { id: leaseIdParam(lease), granted: false, ttl: 0 };
  const g = await grant(ctx, ttlValue(ctx, ttl ?? TURN_TTL_DEFAULT_S));
  return { id: g.id, granted: true, ttl: g.ttl };
}

/** A failed turn, as the client sees it. */
export function turnErrorToApi(err: unknown, what: string): unknown {
  if (err instanceof TurnError) {
    if (err.reason === 'lease-not-found') return new ApiError(404, 'lease_not_found', err.message);
    if (err.reason === 'timeout') return new ApiError(409, 'lock_wait_elapsed', `${what}: the wait elapsed (${err.message})`);
    return new ApiError(409, 'lock_lost', `${what}: ${err.message}`);
  }
  return err instanceof PeerError ? peerErrorToApi(err) : err;
}
