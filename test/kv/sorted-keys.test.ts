// SortedKeys against a plain sort of the live map, under random creates, deletes and re-creates
// sized to go through every path: binary insertion, the early merge of many pending keys, the
// drain under churn, and the ghost filter.

import { describe, expect, it } from 'vitest';
import { SortedKeys } from '../../worker/kv/sorted-keys.ts';
import { SeededRandom } from '../../worker/raft/random.ts';

function check(seed: number, steps: number, keySpace: number, readEvery: number): void {
  const rnd = new SeededRandom(seed);
  const live = new Map<string, true>();
  const keys = new SortedKeys(live);
  for (let step = 1; step <= steps; step++) {
    const key = `k${rnd.nextInt(keySpace)}`;
    if (live.has(key) && rnd.nextInt(3) === 0) {
      live.delete(key);
      keys.removed();
    } else if (!live.has(key)) {
      live.set(key, true);
      keys.added(key);
    }
    if (step % readEvery === 0) {
      const walked: string[] = [];
      keys.walkFrom('', (k) => (walked.push(k), true));
      expect(walked, `seed ${seed} step ${step}`).toEqual([...live.keys()].sort());
      const from = `k${rnd.nextInt(keySpace)}`;
      const tail: string[] = [];
      keys.walkFrom(from, (k) => (tail.push(k), tail.length < 50));
      expect(tail, `seed ${seed} step ${step} from ${from}`).toEqual(
        [...live.keys()]
          .sort()
          .filter((k) => k >= from)
          .slice(0, 50),
      );
      const copy = keys.orderedCopy().filter((k) => live.has(k));
      expect(copy, `seed ${seed} step ${step} orderedCopy`).toEqual([...live.keys()].sort());
    }
  }
}

describe('SortedKeys', () => {
  it('walks the live keys in order through inserts, early merges, churn and ghost filtering', () => {
    for (const seed of [1, 2, 3]) check(seed, 60_000, 40_000, 9_000); // > PENDING_MERGE_MIN new keys between reads
    for (const seed of [4, 5]) check(seed, 3_000, 200, 7); // small, read often: insertion path
  });
});
