// The 128 MB of a Durable Object's isolate: a peer filled to its space quota (derived from it,
// worker/edge/memory.ts) stays inside the memory budget the quota was derived for, full and
// loaded cold from storage. Measured as the README's numbers are (test/bench/edge-memory.ts):
// `wrangler dev` with one peer, the isolate's JS heap plus its ArrayBuffers after a full GC,
// read through the inspector. With the shared 64 MiB quota this measured 135 MB (README, Memory).

import { describe, expect, it } from 'vitest';
import { measureEdgeMemory } from '../bench/edge-memory.ts';
import { EDGE_MEMORY_LIMITS, MEMORY_RESERVE_BYTES, OBJECT_MEMORY_BYTES } from '../../worker/edge/memory.ts';

const MiB = 1024 * 1024;

describe('edge memory', () => {
  it('a peer filled to its quota stays inside the budget of its 128 MB, full and restarted', { timeout: 300_000 }, async () => {
    const r = await measureEdgeMemory();
    // It was full: the next 1 MiB value did not fit.
    expect(r.full.stateBytesMax).toBe(EDGE_MEMORY_LIMITS.stateBytesMax);
    expect(r.full.stateBytes).toBeGreaterThan(r.full.stateBytesMax - MiB - 1024);
    const budget = OBJECT_MEMORY_BYTES - MEMORY_RESERVE_BYTES;
    for (const [what, m] of [
      ['full', r.filled],
      ['restarted', r.cold],
    ] as const) {
      const isolate = m.heap.used + m.heap.buffers;
      // The state is really held (a heap that did not grow would mean the measure saw nothing).
      expect(isolate, what).toBeGreaterThan(r.full.stateBytes);
      expect(isolate, what).toBeLessThan(budget);
    }
  });
});
