// The Worker's bindings and vars, as declared in wrangler.toml, and the typed way to reach a peer.

import type { PeerObject } from './peer-object.ts';
import type { EdgeConfig } from './config.ts';
import type { NodeId } from '../raft/types.ts';
import { peerStubOf } from './stubs.ts';
import type { PeerNamespace } from './stubs.ts';

export interface Env {
  /** One Durable Object per Raft peer, named `<cluster>/<peer-id>`. */
  PEERS: DurableObjectNamespace<PeerObject>;
  /** The dashboard's built files (wrangler.toml [assets]: worker/ui/dist/), fetched by name by
   *  the peer that answers GET /ui (the router decides; run_worker_first keeps it that way). */
  ASSETS?: Fetcher;
  CLUSTER_NAME?: string;
  CLUSTER_SIZE?: string | number;
  FORWARD_MODE?: string;
  LOCATION_HINTS?: string;
  TICK_MS?: string | number;
  SNAPSHOT_EVERY_ENTRIES?: string | number;
  DERIVED_FLUSH_MS?: string | number;
  QUIESCE?: string;
  /** "open": no access control (local development: npm start); unset or "token": tokens. */
  METCD_AUTH?: string;
  /** The root token (a Worker secret: wrangler secret put METCD_ROOT_TOKEN). Without it and
   *  without METCD_AUTH=open, the deployment serves nothing but /health. */
  METCD_ROOT_TOKEN?: string;
  /** "1": check every outgoing Raft message against storage (persist-check.ts). Tests only. */
  CHECK_PERSIST?: string;
  /** Simulated round trips between the peers' regions (latency.ts). Tests only: refused
   *  unless METCD_AUTH=open. */
  TEST_REGION_RTT_MS?: string;
}

/** The stub of peer `id`'s object, created in its configured region on first use. */
export function peerStub(env: Env, config: EdgeConfig, id: NodeId): DurableObjectStub<PeerObject> {
  return peerStubOf(env.PEERS as unknown as PeerNamespace<DurableObjectStub<PeerObject>>, config, id);
}
