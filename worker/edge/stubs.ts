// The one way to reach a peer's Durable Object: by its name `<cluster>/<peer-id>`, created in
// its configured region the first time. Structural types, so it can be tested off-workerd.

import type { NodeId } from '../raft/types.ts';
import type { EdgeConfig, LocationHint } from './config.ts';
import { peerObjectName } from './config.ts';

/** The slice of a DurableObjectNamespace used here. */
export interface PeerNamespace<Stub> {
  idFromName(name: string): unknown;
  get(id: never, options?: { locationHint?: LocationHint }): Stub;
}

export function peerStubOf<Stub>(namespace: PeerNamespace<Stub>, config: EdgeConfig, id: NodeId): Stub {
  const objectId = namespace.idFromName(peerObjectName(config.cluster, id)) as never;
  const hint = config.locationHints[id];
  return hint === undefined ? namespace.get(objectId) : namespace.get(objectId, { locationHint: hint });
}
