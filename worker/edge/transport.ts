// PeerTransport over Durable Object RPC: Raft messages go to the sibling peer's object through
// its `deliver` method, never over HTTP, so no public route can carry them (see peer-object.ts).
//
// Per destination: one queue, one call in flight (so messages arrive in the order sent), and
// everything queued while a call is in flight leaves as the next batch. Queues are bounded in
// messages and bytes; when one is full the OLDEST messages are dropped and counted (Raft
// retransmits, and the newest heartbeat/append says more than an old one). A failed or slow call
// drops its batch and the cached stub (a stub is broken once its object has been reset).
//
// Replies ride back on the call. While a peer handles a batch from X (PeerObject.deliver), it
// holds what it sends to X (holdReplies) and returns it as the call's result (takeReplies): an
// append's acknowledgement costs no call of its own, and X's pump is not held up by a second
// call into X. The runtime's output gate holds the call's result until the receiver's writes
// made before it are confirmed, exactly as it holds an outgoing call, so an acknowledgement
// still never leaves ahead of the entries it acknowledges. Replies are held only while nothing
// to X is queued or in flight, so they never overtake older messages to X.
//
// An append that carries no entries only tells a follower a new commit index (the leader sends
// one to every follower each time its commit index moves). Alone, it waits up to lazyMs for
// other messages to the same peer and leaves in their call: under a steady stream of client
// writes the commit index rides with the next append, one call per write per follower instead
// of two (each call is a billed request and a turn of both objects). Nothing waits on it: the
// leader answers clients from its own commit index, and every heartbeat (each tick) carries
// the commit index too; a follower's applied state lags by at most lazyMs more.

import type { Message, NodeId } from '../raft/types.ts';
import { mayWaitForCompany, type PeerTransport } from '../peer/ports.ts';
import { encodeMessages } from '../raft/codec.ts';
import { Outbox } from '../peer/outbox.ts';
import type { OutboxLimits } from '../peer/outbox.ts';

/** The receiving side of a peer's RPC surface that the transport uses. It may answer with the
 *  receiver's replies (encodeMessages), which go to the `onReply` handler. */
export interface DeliverTarget {
  deliver(batch: Uint8Array): Promise<unknown>;
}

/** Handles the replies a destination returned from a call (encoded messages). */
export type ReplyHandler = (bytes: Uint8Array) => void;

export interface TransportLimits extends OutboxLimits {
  /** A call not answered within this long is given up (its batch dropped). */
  callTimeoutMs: number;
  /** How long commit-only appends may wait for other messages to the same peer (0: never). */
  lazyMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  queueMessagesMax: 4096,
  queueBytesMax: 16 * 1024 * 1024,
  batchBytesMax: 4 * 1024 * 1024,
  callTimeoutMs: 5_000,
  lazyMs: 20,
};

export type TransportDropReason = 'queueFull' | 'callFailed' | 'callTimeout' | 'encodeFailed';

export interface TransportStats {
  sentMessages: number;
  sentBatches: number;
  /** Batches received as the result of a call, and batches returned as one (held replies). */
  repliesReceived: number;
  repliesReturned: number;
  dropped: Record<TransportDropReason, number>;
}

interface Queue {
  outbox: Outbox;
  pumping: boolean;
  /** Something other than commit-only appends waits: send without waiting for lazyMs. */
  urgent: boolean;
  lazyTimer: ReturnType<typeof setTimeout> | null;
}

/** An append without entries: it only carries the leader's commit index (see the header). */
export class RpcTransport implements PeerTransport {
  private readonly connect: (to: NodeId) => DeliverTarget;
  private readonly limits: TransportLimits;
  private readonly queues = new Map<NodeId, Queue>();
  private readonly targets = new Map<NodeId, DeliverTarget>();
  /** Messages held as the reply to a call from that peer (holdReplies), bounded like a queue. */
  private readonly held = new Map<NodeId, Outbox>();
  private readonly onReply: ReplyHandler;
  private readonly stats_: TransportStats = {
    sentMessages: 0,
    sentBatches: 0,
    repliesReceived: 0,
    repliesReturned: 0,
    dropped: { queueFull: 0, callFailed: 0, callTimeout: 0, encodeFailed: 0 },
  };
  private closed = false;

  /** `connect(to)` returns a fresh stub of peer `to`'s object (with its location hint);
   *  `onReply` gets the replies a destination returns from a call. */
  constructor(connect: (to: NodeId) => DeliverTarget, limits: Partial<TransportLimits> = {}, onReply: ReplyHandler = () => {}) {
    this.connect = connect;
    this.limits = { ...DEFAULT_TRANSPORT_LIMITS, ...limits };
    this.onReply = onReply;
  }

  send(messages: Message[]): void {
    if (this.closed) return;
    for (const msg of messages) {
      const held = this.held.get(msg.to);
      if (held !== undefined) {
        this.stats_.dropped.queueFull += held.push(msg);
        continue;
      }
      let q = this.queues.get(msg.to);
      if (q === undefined) {
        q = { outbox: new Outbox(this.limits), pumping: false, urgent: false, lazyTimer: null };
        this.queues.set(msg.to, q);
      }
      this.stats_.dropped.queueFull += q.outbox.push(msg);
      if (!mayWaitForCompany(msg) || this.limits.lazyMs === 0) q.urgent = true;
    }
    for (const [to, q] of this.queues) {
      if (q.pumping || q.outbox.length === 0) continue;
      if (q.urgent) void this.pump(to, q);
      else this.waitLazy(to, q);
    }
  }

  /**
   * From now until takeReplies(to), messages to `to` are held to be returned as the answer to
   * the call `to` is making. False (nothing held) when messages to `to` are queued or in flight,
   * which the replies must not overtake, or when replies to `to` are held already.
   */
  holdReplies(to: NodeId): boolean {
    if (this.closed || this.held.has(to)) return false;
    const q = this.queues.get(to);
    if (q !== undefined && (q.pumping || q.urgent)) return false;
    const held = new Outbox(this.limits);
    // Commit-only appends waiting for company (older than the replies) lead the answer.
    if (q !== undefined) {
      while (q.outbox.length > 0) for (const m of q.outbox.takeBatch()) this.stats_.dropped.queueFull += held.push(m);
      this.clearLazy(q);
    }
    this.held.set(to, held);
    return true;
  }

  /** Stop holding messages to `to`; returns one batch of them to answer with. Any beyond one
   *  batch are queued for the ordinary sending, after it. */
  takeReplies(to: NodeId): Message[] {
    const held = this.held.get(to);
    if (held === undefined) return [];
    this.held.delete(to);
    const batch = held.takeBatch();
    const rest: Message[] = [];
    while (held.length > 0) rest.push(...held.takeBatch());
    if (rest.length > 0) this.send(rest);
    if (batch.length > 0) {
      this.stats_.repliesReturned++;
      this.stats_.sentBatches++;
      this.stats_.sentMessages += batch.length;
    }
    return batch;
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
    for (const q of this.queues.values()) this.clearLazy(q);
    this.queues.clear();
    this.held.clear();
  }

  private waitLazy(to: NodeId, q: Queue): void {
    q.lazyTimer ??= setTimeout(() => {
      q.lazyTimer = null;
      if (!q.pumping && q.outbox.length > 0 && !this.closed) void this.pump(to, q);
    }, this.limits.lazyMs);
  }

  private clearLazy(q: Queue): void {
    if (q.lazyTimer !== null) clearTimeout(q.lazyTimer);
    q.lazyTimer = null;
  }

  private async pump(to: NodeId, q: Queue): Promise<void> {
    q.pumping = true;
    this.clearLazy(q);
    try {
      for (let first = true; q.outbox.length > 0 && !this.closed; first = false) {
        if (!first && !q.urgent) {
          // Only commit-only appends arrived during the call: let them wait for company.
          this.waitLazy(to, q);
          break;
        }
        const batch = q.outbox.takeBatch();
        if (q.outbox.length === 0) q.urgent = false;
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
      return await Promise.race([target.deliver(bytes).then((reply) => this.reply(reply)), timeout]);
    } catch {
      return 'callFailed';
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  private reply(reply: unknown): 'ok' {
    if (reply instanceof Uint8Array && reply.byteLength > 0 && !this.closed) {
      this.stats_.repliesReceived++;
      try {
        this.onReply(reply);
      } catch {
        // The handler's failure is not the call's: the batch was delivered.
      }
    }
    return 'ok';
  }
}
