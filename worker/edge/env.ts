// The Worker's bindings and vars, as declared in wrangler.toml, and the one way to reach a peer.

import type { PeerObject } from './peer-object.ts';
import type { EdgeConfig } from './config.ts';
import { peerObjectName } from './config.ts';
import type { NodeId } from '../raft/types.ts';

export interface Env {
  /** One Durable Object per Raft peer, named `<cluster>/<peer-id>`. */
  PEERS: DurableObjectNamespace<PeerObject>;
  CLUSTER_NAME?: string;
  CLUSTER_SIZE?: string | number;
  FORWARD_MODE?: string;
  LOCATION_HINTS?: string;
  TICK_MS?: string | number;
  SNAPSHOT_EVERY_ENTRIES?: string | number;
  /** "1": check every outgoing Raft message against storage (persist-check.ts). Tests only. */
  CHECK_PERSIST?: string;
}

/** The stub of peer `id`'s object, created in its configured region on first use. */
export function peerStub(env: Env, config: EdgeConfig, id: NodeId): DurableObjectStub<PeerObject> {
  const objectId = env.PEERS.idFromName(peerObjectName(config.cluster, id));
  const hint = config.locationHints[id];
  return hint === undefined ? env.PEERS.get(objectId) : env.PEERS.get(objectId, { locationHint: hint });
}
