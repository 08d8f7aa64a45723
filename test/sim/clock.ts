// Node clocks that drift. Real hosts tick from their own timers, so ticks are not in lockstep.
// A skewed node is slow (skips one tick) or fast (ticks twice once) in every window of
// ELECTION_TICKS global ticks, at its own phase. Over any such window a node therefore ticks
// ELECTION_TICKS ± 1 times, and two nodes differ by at most 2 ticks — exactly the
// LEASE_DRIFT_TICKS bound the core's lease is documented to tolerate (worker/raft/types.ts
// RaftConfig.leaseDriftTicks). Lease reads must stay linearizable under it.

import type { SeededRandom } from '../../worker/raft/random.ts';
import { ELECTION_TICKS, LEASE_DRIFT_TICKS } from './options.ts';

export type ClockKind = 'steady' | 'slow' | 'fast';

// Slow vs fast differ by 2 ticks per window; the bound the core is configured with must cover it.
if (LEASE_DRIFT_TICKS < 2) throw new Error('clock.ts skew needs LEASE_DRIFT_TICKS >= 2');

export class NodeClock {
  readonly kind: ClockKind;
  private readonly phase: number;

  constructor(random: SeededRandom, skewPercent: number) {
    const skewed = skewPercent > 0 && random.nextInt(100) < skewPercent;
    this.kind = !skewed ? 'steady' : random.nextInt(2) === 0 ? 'slow' : 'fast';
    this.phase = random.nextInt(ELECTION_TICKS);
  }

  /** How many times the node ticks during global tick `tick`: 0, 1 or 2. */
  ticksAt(tick: number): number {
    if (this.kind === 'steady' || (tick + this.phase) % ELECTION_TICKS !== 0) return 1;
    return this.kind === 'slow' ? 0 : 2;
  }
}
