// The Worker front door of the edge runtime. It picks the peer that serves a request and hands
// the request to that peer's Durable Object, which answers with the shared router. It makes no
// Raft decision and no API decision:
//   - `?peer=p2` names the peer; otherwise the leader this isolate last heard of, else p1. A
//     name that is neither a bootstrap peer nor a member is refused here (addressable), so no
//     request from outside creates a Durable Object;
//   - the cluster needs no setup call: the peers of the default cluster (CLUSTER_SIZE of them,
//     p1..pN) bootstrap themselves from the same vars on their first start (config.ts);
//   - Raft traffic never passes through here. Peers talk over Durable Object RPC (deliver),
//     which nothing in this file calls, and the paths reserved for peer traffic and host
//     internals (/raft, /_metcd) are refused before any peer sees them.

import { PeerObject } from './edge/peer-object.ts';
import { ConfigError, isPeerId, readConfig } from './edge/config.ts';
import type { EdgeConfig } from './edge/config.ts';
import type { Env } from './edge/env.ts';
import { peerStub } from './edge/env.ts';
import { H, errorResponse } from './api/http.ts';
import type { NodeId } from './raft/types.ts';

export { PeerObject };

/** Paths that belong to peers and hosts, never to clients. */
const INTERNAL_SEGMENTS = new Set(['raft', '_metcd']);

/** Last leader seen per cluster in this isolate: a hint, corrected by every answer. */
const leaderHints = new Map<string, NodeId>();

/** Ids seen in a cluster's membership from this isolate (only ever added: a removed member's
 *  object exists and answers 410 itself). */
const knownMembers = new Map<string, Set<NodeId>>();

/**
 * Whether `id` may be addressed with ?peer=: a bootstrap peer, or a member. Any other name is
 * refused before a stub is made, so no request from outside creates a Durable Object (each new
 * name would be a new object: a cost and storage attack). A name not seen yet is looked up in
 * the membership of a peer that exists (the leader hint, else the first bootstrap peer).
 */
async function addressable(env: Env, config: EdgeConfig, id: NodeId): Promise<boolean> {
  if (config.bootstrapPeers.includes(id)) return true;
  let known = knownMembers.get(config.cluster);
  if (known?.has(id)) return true;
  const asked = leaderHints.get(config.cluster) ?? config.bootstrapPeers[0]!;
  known ??= new Set();
  for (const member of await peerStub(env, config, asked).memberIds()) if (isPeerId(member)) known.add(member);
  knownMembers.set(config.cluster, known);
  return known.has(id);
}

/** The configuration read once per `env` (an isolate's bindings): reading it hashes the root
 *  token, which is no work for every request. */
const configs = new WeakMap<Env, EdgeConfig>();
function configOf(env: Env): EdgeConfig {
  let config = configs.get(env);
  if (config === undefined) configs.set(env, (config = readConfig(env as unknown as Record<string, unknown>)));
  return config;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    let config: EdgeConfig;
    try {
      config = configOf(env);
    } catch (err) {
      const why = err instanceof ConfigError ? err.message : String(err);
      return errorResponse(500, 'internal', `metcd is misconfigured (wrangler.toml [vars]): ${why}`);
    }
    const url = new URL(request.url);
    const firstSegment = url.pathname.split('/')[1] ?? '';
    if (INTERNAL_SEGMENTS.has(firstSegment)) {
      return errorResponse(404, 'not_found', `/${firstSegment} is internal to the cluster and not served here`);
    }
    const named = url.searchParams.getAll('peer');
    if (named.length > 1) return errorResponse(400, 'bad_request', 'query parameter "peer" given more than once');
    const target = named[0] ?? leaderHints.get(config.cluster) ?? config.bootstrapPeers[0]!;
    if (!isPeerId(target)) {
      return errorResponse(
        400,
        'bad_request',
        `peer ${JSON.stringify(target)}: expected a peer id such as p1 (1-64 letters, digits, '.', '-', '_')`,
      );
    }
    let response: Response;
    try {
      if (!(await addressable(env, config, target))) {
        return errorResponse(404, 'not_found', `peer ${target} is not a member of cluster ${config.cluster} (add it with POST /join)`);
      }
      response = await peerStub(env, config, target).fetch(request);
    } catch (err) {
      // The object was reset or is overloaded; the request may not have been seen at all.
      leaderHints.delete(config.cluster);
      return errorResponse(503, 'unavailable', `peer ${target} did not answer: ${err instanceof Error ? err.message : String(err)}`, {
        'Retry-After': '1',
      });
    }
    const leader = response.headers.get(H.leader);
    if (leader !== null && isPeerId(leader)) leaderHints.set(config.cluster, leader);
    // A peer that knows no leader is a poor default (e.g. one removed from the cluster): the
    // next request without ?peer starts over from p1.
    else if (response.status === 503 && named.length === 0) leaderHints.delete(config.cluster);
    return response;
  },
} satisfies ExportedHandler<Env>;
