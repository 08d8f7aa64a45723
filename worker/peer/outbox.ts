// One destination's queue of outgoing Raft messages, bounded in count and bytes, taken in
// batches. Both hosts' transports (HTTP on Node, RPC on the edge) keep one per peer: a slow or
// dead peer can cost at most these bounds in memory, never more. When full, the OLDEST
// messages go first: Raft resends what matters, and the newest messages carry the freshest
// state (a later heartbeat or append supersedes an older one).

import type { Message } from '../raft/types.ts';

export interface OutboxLimits {
  /** Messages waiting per destination. */
  queueMessagesMax: number;
  /** Approximate bytes waiting per destination (one message larger than this still waits, alone). */
  queueBytesMax: number;
  /** Approximate bytes one batch carries (one message larger than this still goes, alone). */
  batchBytesMax: number;
}

/** Rough wire size of a message, for the byte bounds (exactness does not matter). */
export function approxMessageBytes(m: Message): number {
  let n = 64 + (m.context?.length ?? 0);
  if (m.entries) for (const e of m.entries) n += 24 + e.data.byteLength;
  if (m.snapshot) n += 256 + m.snapshot.data.byteLength;
  return n;
}

export class Outbox {
  private readonly limits: OutboxLimits;
  private messages: Message[] = [];
  private bytes = 0;

  constructor(limits: OutboxLimits) {
    this.limits = limits;
  }

  get length(): number {
    return this.messages.length;
  }

  /** Queue `m`; returns how many older messages were dropped to stay within the bounds. */
  push(m: Message): number {
    this.messages.push(m);
    this.bytes += approxMessageBytes(m);
    let dropped = 0;
    while (this.messages.length > this.limits.queueMessagesMax || (this.bytes > this.limits.queueBytesMax && this.messages.length > 1)) {
      this.bytes -= approxMessageBytes(this.messages.shift()!);
      dropped++;
    }
    return dropped;
  }

  /** The oldest messages up to batchBytesMax (at least one when any wait), removed from the queue. */
  takeBatch(): Message[] {
    let n = 0;
    let bytes = 0;
    while (n < this.messages.length) {
      const size = approxMessageBytes(this.messages[n]!);
      if (n > 0 && bytes + size > this.limits.batchBytesMax) break;
      bytes += size;
      n++;
    }
    this.bytes -= bytes;
    return this.messages.splice(0, n);
  }

  /** Drop everything waiting; returns how many messages that was. */
  clear(): number {
    const n = this.messages.length;
    this.messages = [];
    this.bytes = 0;
    return n;
  }
}
