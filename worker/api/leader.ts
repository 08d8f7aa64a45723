// Sending a client to the leader: redirect (307 + Location, the default) or forward
// (proxy: this peer forwards the request and relays the leader's answer).
//
// Redirects cost the client one extra round trip per leader change and keep every request's
// path obvious (one peer answers it); proxying hides leader changes from simple clients at the
// price of a second hop on every follower request. A forwarded request carries
// X-Metcd-Forwarded so it is never forwarded twice (no loops while leadership moves).

import type { NodeId } from '../raft/types.ts';
import { PeerError } from '../peer/errors.ts';
import { ApiError, H, errorReply } from './http.ts';
import { fromFetchResponse, type ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { RETRY_AFTER_SECONDS, peerErrorToApi } from './errors.ts';

const retry = { 'Retry-After': String(RETRY_AFTER_SECONDS) };

export async function toLeader(ctx: ApiContext, leader: NodeId, address: string): Promise<ApiReply> {
  // A client needs the leader: a quiescent follower wakes, and its wake reaches the leader (and
  // the others) before the client does; with the leader gone, the woken group elects another
  // (worker/raft/raft.ts, quiescence). A no-op on an awake follower that knows its leader.
  ctx.peer.wake();
  if (leader === '') throw new ApiError(503, 'no_leader', 'no leader is known right now; retry shortly', retry);
  const forwarded = ctx.request.header(H.forwarded) !== null;
  if (forwarded) {
    // The peer that forwarded this believed we lead; leadership is moving. Let the client retry.
    throw new ApiError(503, 'not_leader', `${ctx.peer.id} is not the leader; ${leader} is`, { ...retry, [H.leader]: leader });
  }
  if (ctx.host.mode === 'proxy' && ctx.host.forward !== undefined) return forward(ctx, leader, address);
  if (address === '') {
    throw new ApiError(503, 'not_leader', `${leader} leads but its address is unknown here`, { ...retry, [H.leader]: leader });
  }
  const location = ctx.host.leaderUrl({ url: ctx.url.href }, leader, address);
  return errorReply(307, 'not_leader', `${ctx.peer.id} is not the leader; follow Location to ${leader}`, {
    Location: location,
    [H.leader]: leader,
  });
}

/** Run a leader-only change; a follower sends the client to the leader. */
export function onLeader(ctx: ApiContext, run: () => Promise<ApiReply>): Promise<ApiReply> {
  return onPeer(ctx, true, run);
}

/** Run on this peer (`leaderOnly`: on the leader only, a follower sends the client there); a
 *  peer that learns meanwhile it does not lead sends the client on too. */
export async function onPeer(ctx: ApiContext, leaderOnly: boolean, run: () => Promise<ApiReply>): Promise<ApiReply> {
  if (leaderOnly && !ctx.peer.isLeader()) {
    const leader = ctx.peer.leaderInfo();
    return toLeader(ctx, leader.id, leader.address);
  }
  try {
    return await run();
  } catch (err) {
    if (err instanceof PeerError && err.code === 'not-leader') return toLeader(ctx, err.leader, err.leaderAddress);
    if (err instanceof PeerError && err.code === 'no-leader') return toLeader(ctx, '', '');
    throw err instanceof PeerError ? peerErrorToApi(err) : err;
  }
}

async function forward(ctx: ApiContext, leader: NodeId, address: string): Promise<ApiReply> {
  const { request } = ctx;
  // Routes that take no body (bodyBytesMax 0) forward none: the leader would ignore it anyway.
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD' && ctx.bodyBytesMax > 0;
  const body = hasBody ? (ctx.body ??= await request.body(ctx.bodyBytesMax)) : null;
  const headers = new Headers(request.headerPairs());
  for (const name of ['Host', 'Content-Length', 'Transfer-Encoding', 'Connection']) headers.delete(name);
  headers.set(H.forwarded, ctx.peer.id);
  const init: RequestInit = { method: request.method, headers };
  if (body !== null) init.body = body;
  try {
    return await fromFetchResponse(await ctx.host.forward!(new Request(ctx.url, init), leader, address));
  } catch (err) {
    throw new ApiError(503, 'unavailable', `could not reach the leader ${leader}: ${err instanceof Error ? err.message : String(err)}`, {
      ...retry,
      [H.leader]: leader,
    });
  }
}
