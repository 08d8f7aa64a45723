// A small seeded generator (splitmix32) for the hot cache's hash seeds and its admission jitter:
// the same seed gives the same cache decisions, so a simulated run replays exactly. worker/kv/
// imports nothing from the Raft core, hence its own copy of the generator.

export class SplitMix32 {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }
}
