// The lessor: when leases expire (etcd's lessor, leader side). Only the leader keeps deadlines,
// in its own ticks: a keep-alive moves a deadline here without a log entry (etcd's design), and
// a lease past its deadline is revoked by proposing lease-revoke, so every replica deletes the
// same keys at the same revision (worker/kv/leases.ts). Nothing here runs in apply.
//
// A peer that becomes leader gives every lease its full TTL plus an election timeout before
// expiring any (etcd's Promote with its extend): the old leader may have acknowledged a
// keep-alive just before it lost touch, and the election took at most about that long, so a
// kept-alive lease is never expired by a leader change. A paused or slow leader's ticks stop
// with it, so it never expires a lease early either.

import type { LeaseView } from '../kv/leases.ts';

/** etcd's leaseRevokeRate: revokes proposed per second at most. */
export const LEASE_REVOKES_PER_SECOND = 1000;

export class Lessor {
  /** Lease id → the tick it expires at; empty unless leading. */
  private readonly deadlines = new Map<number, number>();
  /** Leases whose revoke is proposed and not settled: not proposed twice. */
  private readonly revoking = new Set<number>();
  private leading = false;
  private readonly tickMs: number;
  private readonly electionTicks: number;
  private readonly revokesPerTick: number;

  constructor(tickMs: number, electionTicks: number) {
    this.tickMs = tickMs;
    this.electionTicks = electionTicks;
    this.revokesPerTick = Math.max(1, Math.ceil((LEASE_REVOKES_PER_SECOND * tickMs) / 1000));
  }

  get isLeading(): boolean {
    return this.leading;
  }

  /** Ticks a TTL of `ttl` seconds lasts (rounded up: never shorter than granted). */
  ticksFor(ttl: number): number {
    return Math.ceil((ttl * 1000) / this.tickMs);
  }

  /** This peer became leader at tick `now`: every lease gets its TTL plus an election timeout. */
  promote(now: number, leases: LeaseView): void {
    this.leading = true;
    this.deadlines.clear();
    for (const [id, ttl] of leases.ttls()) this.deadlines.set(id, now + this.ticksFor(ttl) + this.electionTicks);
  }

  /** No longer leader: the next leader decides. */
  demote(): void {
    this.leading = false;
    this.deadlines.clear();
    this.revoking.clear();
  }

  /** A grant applied here. */
  granted(id: number, ttl: number, now: number): void {
    if (this.leading) this.deadlines.set(id, now + this.ticksFor(ttl));
  }

  /** A revoke applied here. */
  revoked(id: number): void {
    this.deadlines.delete(id);
    this.revoking.delete(id);
  }

  /** A keep-alive: the lease lives `ttl` seconds from `now`. False when it already expired here
   *  (its revoke is due or under way: etcd answers not found then too) or is not tracked. */
  renew(id: number, ttl: number, now: number): boolean {
    const deadline = this.deadlines.get(id);
    if (!this.leading || deadline === undefined || deadline <= now || this.revoking.has(id)) return false;
    this.deadlines.set(id, now + this.ticksFor(ttl));
    return true;
  }

  /** Seconds left (rounded down), or null when not tracked here. */
  remainingSeconds(id: number, now: number): number | null {
    const deadline = this.deadlines.get(id);
    if (!this.leading || deadline === undefined) return null;
    return Math.max(0, Math.floor(((deadline - now) * this.tickMs) / 1000));
  }

  /** Leases past their deadline whose revoke is not under way, at most revokesPerTick; they are
   *  marked under way (call settled() when the proposal is answered either way). */
  due(now: number): number[] {
    const out: number[] = [];
    if (!this.leading) return out;
    for (const [id, deadline] of this.deadlines) {
      if (out.length >= this.revokesPerTick) break;
      if (deadline <= now && !this.revoking.has(id)) out.push(id);
    }
    for (const id of out) this.revoking.add(id);
    return out;
  }

  /** A proposed revoke was answered (or failed): if the lease is still here it may be proposed again. */
  settled(id: number): void {
    this.revoking.delete(id);
  }

  /** The earliest deadline (a tick), or null when none is tracked. */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const deadline of this.deadlines.values()) if (next === null || deadline < next) next = deadline;
    return next;
  }

  /** `ticks` went by without being ticked (the leader slept with its group, quiescence.ts): every
   *  deadline comes that much closer. Whole ticks only, rounded down: never early. */
  elapse(ticks: number): void {
    if (ticks <= 0) return;
    for (const [id, deadline] of this.deadlines) this.deadlines.set(id, deadline - ticks);
  }
}
