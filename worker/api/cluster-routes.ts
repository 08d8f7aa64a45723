// Membership, leadership and introspection routes:
//   POST   /join {"id":"p4","learner"?:true,"address"?:"…"}   add a member through Raft
//   GET    /members                                           who is in the cluster (any peer)
//   DELETE /members/:id                                       remove a member
//   POST   /members/:id/promote                               learner → voter
//   POST   /transfer-leader {"id":"p2"}                       hand leadership over
//   GET    /status                                            this peer's view
//   GET    /health                                            200 when a leader is known and this peer is caught up
// Changes go to the leader (307 / proxy from a follower) and answer once applied.

import type { Membership, NodeId } from '../raft/types.ts';
import type { Peer } from '../peer/peer.ts';
import { jsonFields } from './body.ts';
import type { ApiReply } from './exchange.ts';
import { RETRY_AFTER_SECONDS } from './errors.ts';
import { errorReply, jsonReply, badRequest } from './http.ts';
import type { ApiContext } from './host.ts';
import { onLeader } from './leader.ts';
import { memberId, queryParams } from './params.ts';

const ADDRESS_CHARS_MAX = 2048;

export async function join(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax;
  return onLeader(ctx, async () => {
    const body = await jsonFields(ctx, ['id', 'learner', 'address']);
    const id = memberId(body['id']);
    const learner = body['learner'] ?? false;
    if (typeof learner !== 'boolean') throw badRequest('learner must be true or false');
    const given = body['address'];
    if (given !== undefined && (typeof given !== 'string' || given.length === 0 || given.length > ADDRESS_CHARS_MAX)) {
      throw badRequest(`address must be a non-empty string of at most ${ADDRESS_CHARS_MAX} characters`);
    }
    const address = given ?? ctx.host.memberAddress?.(id);
    if (address === undefined) throw badRequest('address is required (the URL other members reach the new one at)');
    return members(ctx.peer, await ctx.peer.addMember(id, address, learner));
  });
}

export function listMembers(ctx: ApiContext): ApiReply {
  queryParams(ctx.url, []);
  const status = ctx.peer.status();
  return jsonReply({ leader: status.leader, members: status.members });
}

export async function removeMember(ctx: ApiContext, pathId: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const id = memberId(pathId ?? '');
  return onLeader(ctx, async () => members(ctx.peer, await ctx.peer.removeMember(id)));
}

export async function promoteMember(ctx: ApiContext, pathId: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const id = memberId(pathId ?? '');
  return onLeader(ctx, async () => members(ctx.peer, await ctx.peer.promoteMember(id)));
}

export async function transferLeader(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax;
  return onLeader(ctx, async () => {
    const body = await jsonFields(ctx, ['id']);
    const to = memberId(body['id']);
    return jsonReply({ leader: await ctx.peer.transferLeader(to) });
  });
}

export function status(ctx: ApiContext): ApiReply {
  queryParams(ctx.url, []);
  const { costs, diskBytes, processMemory } = ctx.host;
  return jsonReply({
    ...ctx.peer.status(),
    ...(diskBytes === undefined ? {} : { diskBytes: diskBytes() }),
    ...(processMemory === undefined ? {} : { memory: processMemory() }),
    ...(costs === undefined ? {} : { cost: costs() }),
  });
}

export function health(ctx: ApiContext): ApiReply {
  queryParams(ctx.url, []);
  const h = ctx.peer.health();
  if (h.ok) return jsonReply({ ok: true });
  // Why is for callers allowed to see the cluster's state; a load balancer needs only the status.
  const why = ctx.grant.refusal('status', {}) === null ? h.reason : 'not healthy';
  return errorReply(503, 'unavailable', why, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
}

function members(peer: Peer, membership: Membership): ApiReply {
  const status = peer.status();
  const match = new Map<NodeId, number | null>(status.members.map((m) => [m.id, m.match]));
  const list = [
    ...membership.voters.map((id) => ({ id, address: membership.addresses[id] ?? '', voter: true, match: match.get(id) ?? null })),
    ...membership.learners.map((id) => ({ id, address: membership.addresses[id] ?? '', voter: false, match: match.get(id) ?? null })),
  ];
  return jsonReply({ leader: status.leader, members: list });
}
