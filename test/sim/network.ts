// The simulated network between Raft peers: seeded loss, duplication, delay (whose jitter
// reorders), symmetric and asymmetric partitions, healing. Time is the simulator's tick.
// Optionally every message crosses the real wire codec, so a receiver never shares objects
// with the sender (as on a real network) and the codec is exercised on every send.

import type { Message, NodeId } from '../../worker/raft/types.ts';
import { decodeMessages, encodeMessages } from '../../worker/raft/codec.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';

export interface LinkFaults {
  dropPercent: number;
  duplicatePercent: number;
  delayTicksMax: number;
}

/** Upper bound on messages in flight; beyond it new messages are dropped (and counted). */
const IN_FLIGHT_MAX = 100_000;

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  cut: number;
  duplicated: number;
}

type Payload = Message | Uint8Array;

export class SimNetwork {
  private readonly random: SeededRandom;
  private readonly wire: boolean;
  private faults: LinkFaults;
  /** Directed links that are cut, as "from>to". */
  private readonly cutLinks = new Set<string>();
  /** Messages by delivery tick. */
  private readonly buckets = new Map<number, Payload[]>();
  private inFlight = 0;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, cut: 0, duplicated: 0 };

  constructor(random: SeededRandom, faults: LinkFaults, wire: boolean) {
    this.random = random;
    this.faults = faults;
    this.wire = wire;
  }

  setFaults(faults: LinkFaults): void {
    this.faults = faults;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cutLinks.has(`${from}>${to}`);
  }

  /** Cut every link between the two groups, both directions. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a)
      for (const y of b) {
        this.cutLinks.add(`${x}>${y}`);
        this.cutLinks.add(`${y}>${x}`);
      }
  }

  /** Cut one direction only: `from` can no longer reach `to`, the reverse still works. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cutLinks.add(`${from}>${to}`);
  }

  heal(): void {
    this.cutLinks.clear();
  }

  cutCount(): number {
    return this.cutLinks.size;
  }

  send(messages: Message[], nowTick: number): void {
    for (const msg of messages) {
      this.stats.sent++;
      if (this.isCut(msg.from, msg.to)) {
        this.stats.cut++;
        continue;
      }
      if (this.faults.dropPercent > 0 && this.random.nextInt(100) < this.faults.dropPercent) {
        this.stats.dropped++;
        continue;
      }
      const payload: Payload = this.wire ? encodeMessages([msg]) : msg;
      this.enqueue(payload, nowTick);
      if (this.faults.duplicatePercent > 0 && this.random.nextInt(100) < this.faults.duplicatePercent) {
        this.stats.duplicated++;
        this.enqueue(payload, nowTick);
      }
    }
  }

  /** Messages due at `nowTick`, in a seeded order; messages on links cut meanwhile are lost. */
  take(nowTick: number): Message[] {
    const bucket = this.buckets.get(nowTick);
    if (bucket === undefined) return [];
    this.buckets.delete(nowTick);
    this.inFlight -= bucket.length;
    shuffle(bucket, this.random);
    const out: Message[] = [];
    for (const payload of bucket) {
      const msgs = payload instanceof Uint8Array ? decodeMessages(payload) : [payload];
      for (const msg of msgs) {
        if (this.isCut(msg.from, msg.to)) {
          this.stats.cut++;
          continue;
        }
        this.stats.delivered++;
        out.push(msg);
      }
    }
    return out;
  }

  private enqueue(payload: Payload, nowTick: number): void {
    if (this.inFlight >= IN_FLIGHT_MAX) {
      this.stats.dropped++;
      return;
    }
    const delay = 1 + this.random.nextInt(Math.max(1, this.faults.delayTicksMax));
    const at = nowTick + delay;
    let bucket = this.buckets.get(at);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(at, bucket);
    }
    bucket.push(payload);
    this.inFlight++;
  }
}

function shuffle<T>(items: T[], random: SeededRandom): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}
