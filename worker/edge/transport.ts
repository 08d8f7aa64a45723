// PeerTransport over Durable Object RPC: Raft messages go to the sibling peer's object through
// its `deliver` method, never over HTTP, so no public route can carry them (see peer-object.ts).
//
// Per destination: one queue, one call in flight (so messages arrive in the order sent), and
// everything queued while a call is in flight leaves as the next batch. Queues are bounded in
// messages and bytes; when one is full the OLDEST messages are dropped and counted (Raft
// retransmits, and the newest heartbeat/append says more than an old one). A failed or slow call
// drops its batch and the cached stub (a stub is broken once its object has been reset).

import type { Message, NodeId } from '../raft/types.ts';
import type { PeerTransport } from '../peer/ports.ts';
import { encodeMessages } from '../raft/codec.ts';

/** The receiving side of a peer's RPC surface that the transport uses. */
export interface DeliverTarget {
  deliver(batch: Uint8Array): Promise<unknown>;
}

export interface TransportLimits {
  /** Messages queued per destination. */
  queueMessagesMax: number;
  /** Approximate bytes queued per destination. */
  queueBytesMax: number;
  /** Approximate bytes in one RPC call (one message larger than this still goes, alone). */
  batchBytesMax: number;
  /** A call not answered within this long is given up (its batch dropped). */
  callTimeoutMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  queueMessagesMax: 4096,
  queueBytesMax: 16 * 1024 * 1024,
  batchBytesMax: 4 * 1024 * 1024,
  callTimeoutMs: 5_000,
};

export type TransportDropReason = 'queueFull' | 'callFailed' | 'callTimeout' | 'encodeFailed';

export interface TransportStats {
  sentMessages: number;
  sentBatches: number;
  dropped: Record<TransportDropReason, number>;
}

interface Queue {
  messages: Message[];
  bytes: number;
  pumping: boolean;
}

export class RpcTransport implements PeerTransport {
  private readonly connect: (to: NodeId) => DeliverTarget;
  private readonly limits: TransportLimits;
  private readonly queues = new Map<NodeId, Queue>();
  private readonly targets = new Map<NodeId, DeliverTarget>();
  private readonly stats_: TransportStats = {
    sentMessages: 0,
    sentBatches: 0,
    dropped: { queueFull: 0, callFailed: 0, callTimeout: 0, encodeFailed: 0 },
  };
  private closed = false;

  /** `connect(to)` returns a fresh stub of peer `to`'s object (with its location hint). */
  constructor(connect: (to: NodeId) => DeliverTarget, limits: Partial<TransportLimits> = {}) {
    this.connect = connect;
    this.limits = { ...DEFAULT_TRANSPORT_LIMITS, ...limits };
  }

  send(messages: Message[]): void {
    if (this.closed) return;
    for (const msg of messages) {
      let q = this.queues.get(msg.to);
      if (q === undefined) {
        q = { messages: [], bytes: 0, pumping: false };
        this.queues.set(msg.to, q);
      }
      q.messages.push(msg);
      q.bytes += approxBytes(msg);
      while (q.messages.length > this.limits.queueMessagesMax || (q.bytes > this.limits.queueBytesMax && q.messages.length > 1)) {
        q.bytes -= approxBytes(q.messages.shift()!);
        this.stats_.dropped.queueFull++;
      }
    }
    for (const [to, q] of this.queues) {
      if (!q.pumping && q.messages.length > 0) void this.pump(to, q);
    }
  }

  stats(): TransportStats {
    return { ...this.stats_, dropped: { ...this.stats_.dropped } };
  }

  /** Messages waiting (not in flight), per destination. */
  queued(): Record<NodeId, number> {
    const out: Record<NodeId, number> = {};
    for (const [to, q] of this.queues) out[to] = q.messages.length;
    return out;
  }

  /** Stop sending; queued messages are dropped (the object is going away). */
  close(): void {
    this.closed = true;
    this.queues.clear();
  }

  private async pump(to: NodeId, q: Queue): Promise<void> {
    q.pumping = true;
    try {
      while (q.messages.length > 0 && !this.closed) {
        const batch = this.takeBatch(q);
        let bytes: Uint8Array;
        try {
          bytes = encodeMessages(batch);
        } catch {
          this.stats_.dropped.encodeFailed += batch.length;
          continue;
        }
        const outcome = await this.call(to, bytes);
        if (outcome === 'ok') {
          this.stats_.sentBatches++;
          this.stats_.sentMessages += batch.length;
        } else {
          this.stats_.dropped[outcome] += batch.length;
          this.targets.delete(to);
        }
      }
    } finally {
      q.pumping = false;
    }
  }

  private takeBatch(q: Queue): Message[] {
    let n = 0;
    let bytes = 0;
    while (n < q.messages.length) {
      const size = approxBytes(q.messages[n]!);
      if (n > 0 && bytes + size > this.limits.batchBytesMax) break;
      bytes += size;
      n++;
    }
    q.bytes -= bytes;
    return q.messages.splice(0, n);
  }

  private async call(to: NodeId, bytes: Uint8Array): Promise<'ok' | 'callFailed' | 'callTimeout'> {
    let target = this.targets.get(to);
    if (target === undefined) {
      target = this.connect(to);
      this.targets.set(to, target);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<'callTimeout'>((resolve) => {
      timer = setTimeout(() => resolve('callTimeout'), this.limits.callTimeoutMs);
    });
    try {
      return await Promise.race([target.deliver(bytes).then(() => 'ok' as const), timeout]);
    } catch {
      return 'callFailed';
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

/** Rough wire size of a message, for the byte bounds (exactness does not matter). */
export function approxBytes(m: Message): number {
  let n = 64 + (m.context?.length ?? 0);
  if (m.entries) for (const e of m.entries) n += 24 + e.data.byteLength;
  if (m.snapshot) n += 256 + m.snapshot.data.byteLength;
  return n;
}
