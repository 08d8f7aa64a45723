// Locks, etcd's concurrency.Mutex over HTTP (the recipe is turns.ts):
//   POST   /lock/:name?ttl=60&wait=30s  (or ?lease=ID)  blocks until held → {"key","lease","revision"}
//   DELETE /lock/:name/:id              releases it (id: the last part of the key) → {"deleted","revision"}
// `revision` is the fencing token. The holder keeps the lease alive (POST /lease/:id/keepalive);
// if it dies, the lock is released when the lease expires. A wait that elapses answers 409
// lock_wait_elapsed and leaves nothing behind (the key is deleted, a lease granted for the
// request revoked). Rights: write and read on every key under lock/<name>/.

import { kvRefusalToApi } from './errors.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { ApiError, H, jsonReply } from './http.ts';
import { onLeader } from './leader.ts';
import { queryParams } from './params.ts';
import { enqueue, waitTurn, type Ticket } from './turns.ts';
import { contenderId, contenderLease, turnErrorToApi, turnName } from './turn-params.ts';
import { waitParam } from './watch-route.ts';

export function lockPrefix(name: string): string {
  return `lock/${name}/`;
}

export async function acquireLock(ctx: ApiContext, rawName: string | undefined): Promise<ApiReply> {
  const params = queryParams(ctx.url, ['ttl', 'lease', 'wait']);
  const prefix = lockPrefix(turnName(rawName, 'lock'));
  ctx.grant.requireWritePrefix(prefix);
  ctx.grant.requireRange({ prefix, start: '', end: '' });
  const waitMs = waitParam(params.get('wait'));
  const ttl = params.get('ttl');
  return onLeader(ctx, async () => {
    const lease = await contenderLease(ctx, params.get('lease'), ttl === undefined ? undefined : Number(ttl));
    try {
      const ticket = await enqueueOrLeave(ctx, prefix, lease, '');
      await waitOrLeave(ctx, prefix, ticket, lease, waitMs);
      return jsonReply({ key: ticket.key, lease: String(lease.id), revision: ticket.revision }, 200, { [H.lease]: String(lease.id) });
    } catch (err) {
      throw turnErrorToApi(err, `lock ${prefix}`);
    }
  });
}

/** Queues the contender; if that fails, a lease granted for the request goes too. */
export async function enqueueOrLeave(
  ctx: ApiContext,
  prefix: string,
  lease: { id: number; granted: boolean },
  value: string,
): Promise<Ticket> {
  try {
    return await enqueue(ctx.peer, prefix, lease.id, value);
  } catch (err) {
    if (lease.granted) await ctx.peer.write({ op: 'lease-revoke', id: lease.id }).catch(() => undefined);
    throw err;
  }
}

/** Waits for the turn; a wait that fails leaves the queue (its key, and a lease granted for it). */
export async function waitOrLeave(
  ctx: ApiContext,
  prefix: string,
  ticket: Ticket,
  lease: { id: number; granted: boolean; ttl: number },
  waitMs: number,
): Promise<void> {
  const peer = ctx.peer;
  const now = () => peer.nowMs();
  // A lease granted for this request is kept alive while the request waits (the client takes
  // it over once it holds the turn); one the client gave is the client's to keep alive.
  const keep = lease.granted ? { everyMs: lease.ttl * 333, run: () => peer.keepAlive(lease.id) } : undefined;
  try {
    await waitTurn(peer, prefix, ticket, now() + waitMs, now, keep);
  } catch (err) {
    if (lease.granted) await ctx.peer.write({ op: 'lease-revoke', id: lease.id }).catch(() => undefined);
    else await ctx.peer.write({ op: 'delete', keys: [ticket.key] }).catch(() => undefined);
    throw err;
  }
}

export async function releaseLock(ctx: ApiContext, rawName: string | undefined, rawId: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const key = lockPrefix(turnName(rawName, 'lock')) + contenderId(rawId);
  ctx.grant.requireWrite(key);
  return onLeader(ctx, async () => {
    const result = (await ctx.peer.write({ op: 'delete', keys: [key] })).result;
    if (!result.ok) throw kvRefusalToApi(result);
    const deleted = result.op === 'delete' ? result.deleted : 0;
    if (deleted === 0) throw new ApiError(404, 'not_found', `${key} is not held`);
    return jsonReply({ deleted, revision: result.revision }, 200, { [H.revision]: String(result.revision) });
  });
}
