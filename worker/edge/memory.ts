// The edge's memory budget. A Durable Object runs in an isolate with 128 MB of memory (the
// platform's limit; objects of one class may even share an isolate and its 128 MB). Over it the
// object is reset, and a peer whose state does not fit would be reset again on every load: the
// space quota must keep a full peer inside the limit, so it is derived from it here.
//
// What a peer holds, as measured under workerd with the quota filled (test/bench/edge-memory.ts,
// worker/edge/README.md "Memory"): its KV state in the JS heap (about stateBytes: values are
// strings of at most their UTF-8 size), the last snapshot as bytes (about the state's size
// again, kept to send to a follower that needs it), and the log since that snapshot (at most
// snapshotEveryBytes before the next snapshot compacts it), plus what is in flight: request
// bodies (up to 4 MiB), append batches and transport queues, code and the runtime's own. With
// the shared default of 64 MiB for both, a full peer measured 135-139 MB: over the limit.

import type { PeerLimits } from '../peer/options.ts';

/** The platform's memory per Durable Object isolate. */
export const OBJECT_MEMORY_BYTES = 128_000_000;

/** Kept free for what is in flight (requests, append batches, queues) and the runtime. */
export const MEMORY_RESERVE_BYTES = 24_000_000;

const BUDGET_BYTES = OBJECT_MEMORY_BYTES - MEMORY_RESERVE_BYTES;

/**
 * The peer limits the memory budget sets: the state twice (the state, and its snapshot) and
 * the log since the snapshot once, in five equal parts: state and snapshot two each, the log one.
 */
export const EDGE_MEMORY_LIMITS: Pick<PeerLimits, 'stateBytesMax' | 'snapshotEveryBytes'> = {
  stateBytesMax: Math.floor((BUDGET_BYTES * 2) / 5),
  snapshotEveryBytes: Math.floor(BUDGET_BYTES / 5),
};
