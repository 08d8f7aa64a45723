// The edge's memory budget. A Durable Object runs in an isolate with 128 MB of memory (the
// platform's limit; objects of one class may even share an isolate and its 128 MB). Over it the
// object is reset.
//
// The peer's storage is tiered (storage.ts, records.ts): the object's SQLite holds the key
// space, and the size of the state no longer sets the memory. What a peer holds (worker/peer,
// worker/kv/tiered-records.ts): a bounded cache of hot records (EDGE_CACHE_BYTES, entries
// weighed with their overhead, record-tier.ts), the log between compactions (a tiered peer
// compacts every EDGE_SNAPSHOT_EVERY_BYTES to the point one interval back, so it holds up to
// twice that), the changes not yet saved and the key history's revisions, plus what is in
// flight (request bodies up to 4 MiB, append batches, a snapshot chunk, queues) and the
// runtime's own. Cache and log are sized so that three peers in one isolate (as local workerd
// runs a cluster) fit the budget together; measured under workerd with a 3-peer cluster
// holding 1 GB (test/bench/edge-scale.ts, README "Performance").
//
// The space quota is a disk quota now (QUOTA_BYTES, config.ts): etcd's 2 GiB by default, at
// most what one SQLite-backed object may store.

import type { PeerLimits } from '../peer/options.ts';

/** The platform's memory per Durable Object isolate. */
export const OBJECT_MEMORY_BYTES = 128_000_000;

/** Kept free for what is in flight (requests, append batches, queues) and the runtime. */
export const MEMORY_RESERVE_BYTES = 24_000_000;

/** What the peers of one isolate may hold between them. */
export const MEMORY_BUDGET_BYTES = OBJECT_MEMORY_BYTES - MEMORY_RESERVE_BYTES;

/** The hot-record cache of one peer by default (CACHE_BYTES), and the most a peer may be given:
 *  at that, one peer's cache and log take half the budget. */
export const EDGE_CACHE_BYTES = 16 * 1024 * 1024;
export const EDGE_CACHE_BYTES_MAX = 48 * 1024 * 1024;

/** Log between a tiered peer's compactions (it holds up to twice this). */
export const EDGE_SNAPSHOT_EVERY_BYTES = 4 * 1024 * 1024;

/** Peers whose cache and log must fit the budget together (a cluster's three in one isolate). */
const PEERS_PER_ISOLATE = 3;
if (PEERS_PER_ISOLATE * (EDGE_CACHE_BYTES + 2 * EDGE_SNAPSHOT_EVERY_BYTES) > MEMORY_BUDGET_BYTES) {
  throw new Error('edge memory: the cache and log of three peers exceed the budget');
}

/** The space quota's default (etcd's) and most (a SQLite-backed Durable Object stores 10 GB). */
export const EDGE_QUOTA_BYTES_DEFAULT = 2 * 1024 ** 3;
export const EDGE_QUOTA_BYTES_MAX = 10_000_000_000;

/** The peer limits the budget sets (the quota is the deployment's: config.ts QUOTA_BYTES). */
export const EDGE_MEMORY_LIMITS: Pick<PeerLimits, 'snapshotEveryBytes'> = {
  snapshotEveryBytes: EDGE_SNAPSHOT_EVERY_BYTES,
};
