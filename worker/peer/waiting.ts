// The peer's waiting rooms: client operations parked until the log, a ReadIndex round or a
// leadership change answers them. Both are bounded (the caller checks hasRoom() before adding) and every waiter
// carries a deadline in ticks, so nothing waits forever and nothing grows without limit.

import type { KvResult } from '../kv/types.ts';
import type { NodeId } from '../raft/types.ts';
import { PeerError } from './errors.ts';

export interface AppliedOutcome {
  index: number;
  /** The KV answer for a normal entry; null for a membership change. */
  result: KvResult | null;
}

export interface ProposalWaiter {
  term: number;
  deadlineTick: number;
  resolve(outcome: AppliedOutcome): void;
  reject(err: PeerError): void;
}

/** Proposals keyed by the log index the leader gave them; answered when that index applies. */
export class ProposalRoom {
  private readonly byIndex = new Map<number, ProposalWaiter>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.byIndex.size;
  }

  hasRoom(): boolean {
    return this.byIndex.size < this.max;
  }

  add(index: number, waiter: ProposalWaiter, lost: () => PeerError): void {
    // An older waiter at this index was proposed in an earlier term (this peer lost and regained
    // leadership between two readies); its entry was overwritten, so its outcome is unknown.
    const older = this.byIndex.get(index);
    this.byIndex.set(index, waiter);
    older?.reject(lost());
  }

  /** The entry at `index` (of `term`) was applied. Only the proposer of that very entry wins. */
  applied(index: number, term: number, result: KvResult | null, lost: () => PeerError): void {
    const waiter = this.byIndex.get(index);
    if (waiter === undefined) return;
    this.byIndex.delete(index);
    if (waiter.term === term) waiter.resolve({ index, result });
    else waiter.reject(lost());
  }

  /** Fail every waiter at or below `index` (a snapshot replaced those entries). */
  failUpTo(index: number, err: () => PeerError): void {
    for (const [i, waiter] of this.byIndex) {
      if (i <= index) {
        this.byIndex.delete(i);
        waiter.reject(err());
      }
    }
  }

  failAll(err: () => PeerError): void {
    const waiters = [...this.byIndex.values()];
    this.byIndex.clear();
    for (const w of waiters) w.reject(err());
  }

  expire(nowTick: number, err: () => PeerError): void {
    for (const [i, waiter] of this.byIndex) {
      if (waiter.deadlineTick <= nowTick) {
        this.byIndex.delete(i);
        waiter.reject(err());
      }
    }
  }
}

export interface ReadWaiter {
  /** Unique per read; the ReadIndex context. */
  ctx: string;
  /** Applied index the read must wait for; -1 until the core released it. */
  index: number;
  /** True once the core accepted readIndex(ctx); false means ask again on the next turn. */
  requested: boolean;
  deadlineTick: number;
  serve(): void;
  reject(err: PeerError): void;
}

/** Reads waiting for their index to be confirmed (ReadIndex) and then applied. */
export class ReadRoom {
  private readonly byCtx = new Map<string, ReadWaiter>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.byCtx.size;
  }

  hasRoom(): boolean {
    return this.byCtx.size < this.max;
  }

  add(waiter: ReadWaiter): void {
    this.byCtx.set(waiter.ctx, waiter);
  }

  /** The core confirmed `ctx` at `index` (a ReadState). Unknown contexts (expired) are ignored. */
  release(ctx: string, index: number): void {
    const waiter = this.byCtx.get(ctx);
    if (waiter !== undefined && waiter.index < 0) waiter.index = index;
  }

  /** Serve every read whose index is confirmed and applied. */
  serveUpTo(applied: number): void {
    for (const [ctx, waiter] of this.byCtx) {
      if (waiter.index >= 0 && waiter.index <= applied) {
        this.byCtx.delete(ctx);
        waiter.serve();
      }
    }
  }

  /** Reads the core has not yet accepted (leader without a commit in its term yet). */
  unrequested(): ReadWaiter[] {
    const out: ReadWaiter[] = [];
    for (const waiter of this.byCtx.values()) if (!waiter.requested) out.push(waiter);
    return out;
  }

  remove(ctx: string): void {
    this.byCtx.delete(ctx);
  }

  /** Fail reads whose index is not yet known (they depend on a leadership that is gone). */
  failUnreleased(err: () => PeerError): void {
    for (const [ctx, waiter] of this.byCtx) {
      if (waiter.index < 0) {
        this.byCtx.delete(ctx);
        waiter.reject(err());
      }
    }
  }

  failAll(err: () => PeerError): void {
    const waiters = [...this.byCtx.values()];
    this.byCtx.clear();
    for (const w of waiters) w.reject(err());
  }

  expire(nowTick: number, err: () => PeerError): void {
    for (const [ctx, waiter] of this.byCtx) {
      if (waiter.deadlineTick <= nowTick) {
        this.byCtx.delete(ctx);
        waiter.reject(err());
      }
    }
  }
}

/** The one leadership transfer a client waits on: answered once this peer sees the target
 *  lead, failed when another takes over or the deadline passes. */
export class TransferRoom {
  private waiter: { to: NodeId; deadlineTick: number; resolve(leader: NodeId): void; reject(err: PeerError): void } | null = null;

  /** The target of the transfer under way, or null. */
  get pendingTo(): NodeId | null {
    return this.waiter?.to ?? null;
  }

  add(to: NodeId, deadlineTick: number): Promise<NodeId> {
    return new Promise<NodeId>((resolve, reject) => {
      this.waiter = { to, deadlineTick, resolve, reject };
    });
  }

  /** Judge the transfer against what this peer now sees (`leader` '' when none is known). */
  check(leader: NodeId, isLeader: boolean, now: number): void {
    const t = this.waiter;
    if (t === null) return;
    if (leader === t.to) {
      this.waiter = null;
      t.resolve(t.to);
    } else if (now >= t.deadlineTick) {
      this.fail(new PeerError('timeout', `leadership did not move to ${t.to} in time`));
    } else if (!isLeader && leader !== '' && leader !== t.to) {
      this.fail(new PeerError('leadership-lost', `${leader} took over instead of ${t.to}`));
    }
  }

  fail(err: PeerError): void {
    const t = this.waiter;
    this.waiter = null;
    t?.reject(err);
  }
}

/** Members being added as voters, waiting for their learner to hold the log up to the entry
 *  that added it (so it knows the configuration and can vote) before they are promoted. */
export class CatchUpRoom {
  private readonly waiters: Array<{ id: NodeId; index: number; deadlineTick: number; resolve(): void; reject(err: PeerError): void }> = [];

  get size(): number {
    return this.waiters.length;
  }

  add(id: NodeId, index: number, deadlineTick: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.waiters.push({ id, index, deadlineTick, resolve, reject }));
  }

  /** `match(id)`: the leader's match index for `id` (null when this peer does not lead). */
  check(match: (id: NodeId) => number | null, now: number): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      const m = match(w.id);
      if (m !== null && m >= w.index) w.resolve();
      else if (m === null)
        w.reject(new PeerError('leadership-lost', `leadership moved before ${w.id} caught up; add it again to promote it`));
      else if (now >= w.deadlineTick) w.reject(new PeerError('timeout', `${w.id} did not catch up in time; add it again to promote it`));
      else continue;
      this.waiters.splice(i, 1);
    }
  }

  fail(err: PeerError): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
