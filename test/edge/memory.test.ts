// The 128 MB of a Durable Object's isolate: a tiered peer (its SQLite holds the key space,
// worker/edge/memory.ts) filled to a quota larger than that memory stays inside the memory
// budget, full and loaded cold from storage. Measured as the README's numbers are
// (test/bench/edge-memory.ts): `wrangler dev` with one peer, the isolate's JS heap plus its
// ArrayBuffers after a full GC, read through the inspector. Before the tiers, a peer held its
// whole state in memory and the quota had to stay under 40 MiB.

import { describe, expect, it } from 'vitest';
import { EDGE_MEMORY_QUOTA_BYTES, measureEdgeMemory } from '../bench/edge-memory.ts';
import { MEMORY_BUDGET_BYTES, OBJECT_MEMORY_BYTES } from '../../worker/edge/memory.ts';

const MiB = 1024 * 1024;

describe('edge memory', () => {
  it('a peer holding more than its 128 MB stays inside its memory budget, full and restarted', { timeout: 600_000 }, async () => {
    const r = await measureEdgeMemory();
    // It was full: the quota (a disk quota now) refused the next 1 MiB value, and the state is
    // larger than the object's memory.
    expect(r.full.stateBytesMax).toBe(EDGE_MEMORY_QUOTA_BYTES);
    expect(r.full.stateBytes).toBeGreaterThan(r.full.stateBytesMax - MiB - 1024);
    expect(r.full.stateBytes).toBeGreaterThan(OBJECT_MEMORY_BYTES);
    for (const [what, m] of [
      ['full', r.filled],
      ['restarted', r.cold],
    ] as const) {
      const isolate = m.heap.used + m.heap.buffers;
      expect(isolate, what).toBeLessThan(MEMORY_BUDGET_BYTES);
      // The state is not what the heap holds: under a quarter of it is in memory.
      expect(isolate, what).toBeLessThan(r.full.stateBytes / 4);
    }
    // The restarted peer serves the state from its storage: the last value written reads back.
    expect(r.coldRead).toBe(true);
  });
});
