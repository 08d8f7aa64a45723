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
import { Outbox } from '../peer/outbox.ts';
import type { OutboxLimits } from '../peer/outbox.ts';

/** The receiving side of a peer's RPC surface that the transport uses. */
export interface DeliverTarget {
  deliver(batch: Uint8Array): Promise<unknown>;
}

export interface TransportLimits extends OutboxLimits {
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
  outbox: Outbox;
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
        q = { outbox: new Outbox(this.limits), pumping: false };
        this.queues.set(msg.to, q);
      }
      this.stats_.dropped.queueFull += q.outbox.push(msg);
    }
    for (const [to, q] of this.queues) {
      if (!q.pumping && q.outbox.length > 0) void this.pump(to, q);
    }
  }

  stats(): TransportStats {
    return { ...this.stats_, dropped: { ...this.stats_.dropped } };
  }

  /** Messages waiting (not in flight), per destination. */
  queued(): Record<NodeId, number> {
    const out: Record<NodeId, number> = {};
    for (const [to, q] of this.queues) out[to] = q.outbox.length;
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
      while (q.outbox.length > 0 && !this.closed) {
        const batch = q.outbox.takeBatch();
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

