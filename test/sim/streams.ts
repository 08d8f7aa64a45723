// Independent random streams derived from the run seed, one per concern (network, faults,
// clients, each node incarnation). Separate streams keep a run replayable AND keep a change in
// one concern (say, one more client op) from reshuffling every other random choice.

import { SeededRandom } from '../../worker/raft/random.ts';

/** FNV-1a over the label, mixed with the seed: a stable 32-bit seed per (run, label). */
export function deriveSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // One splitmix round so nearby seeds give unrelated streams.
  return new SeededRandom(h ^ Math.imul(seed >>> 0, 0x9e3779b1)).nextU32();
}

export function stream(seed: number, label: string): SeededRandom {
  return new SeededRandom(deriveSeed(seed, label));
}

/** FNV-1a over bytes: a cheap digest for comparing entries and states across nodes. */
export function digestBytes(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function digestString(text: string, h = 0x811c9dc5): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
