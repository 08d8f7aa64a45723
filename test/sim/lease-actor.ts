// A client of leases (worker/kv/leases.ts, worker/peer/lessor.ts) under the run's faults: it
// grants leases, attaches a key to each, keeps some alive (a keep-alive every ttl/4) for a while
// and abandons the others, through whichever node it believes leads. What it checks:
//   - a kept lease, and its key, never vanish while kept alive: from a keep-alive a leader
//     acknowledged at tick a (sent at a: the leader renewed it at or after that), no node that
//     applied the grant (the lease's id is the grant's index) and the attach may lack either
//     before a + ttl (less a tenth for a fast clock and two ticks);
//   - after healing every lease is abandoned, and once members converge every lease and every
//     key of one is gone on every member within the lease's ttl plus an election timeout of a
//     stable leader (checked by the run: drained());
//   - every member deletes the same keys at the same revision: the convergence digest compares
//     the history and every member's lease table (host.ts stateDigest).

import type { SeededRandom } from '../../worker/raft/random.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import type { NodeCounters } from './counters.ts';
import type { SimCluster } from './cluster.ts';
import type { NodeAnswer, NodeRequest, SimHost } from './host.ts';
import { ELECTION_TICKS, SIM_TICK_MS } from './options.ts';
import { violation } from './violation.ts';

const SLOTS = 4;
/** An unanswered request is given up after this long (as the clients' attempts). */
const ATTEMPT_TICKS = 3 * ELECTION_TICKS;
const GRANT_PER_MILLE = 40;
const TTL_SECONDS = [2, 3, 5] as const;
/** The longest TTL in ticks: the run bounds the drain after healing with it. */
export const LEASE_TTL_TICKS_MAX = (5 * 1000) / SIM_TICK_MS;
/** Request ids far below the token admin's (negative ids are no client's). */
const REQ_BASE = -1_000_000_000;

interface SimLease {
  id: number;
  key: string;
  ttlTicks: number;
  /** Kept alive until this tick (0: abandoned from the start). */
  keepUntil: number;
  /** Index of the put that attached the key (0 until acknowledged). */
  attachIndex: number;
  /** Tick a keep-alive acknowledged by a leader was sent at (0: none yet). */
  lastAck: number;
  lastSent: number;
  dead: boolean;
}

interface Pending {
  what: 'grant' | 'attach' | 'keepalive';
  lease: SimLease | null;
  ttl: number;
  sentAt: number;
}

export class LeaseActor {
  private readonly random: SeededRandom;
  private readonly cluster: SimCluster;
  private readonly counters: NodeCounters;
  private readonly log: (line: string) => void;
  private readonly leases: SimLease[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private leaderHint: NodeId = '';
  private healed = false;
  private now = 0;

  constructor(random: SeededRandom, cluster: SimCluster, counters: NodeCounters, log: (line: string) => void) {
    this.random = random;
    this.cluster = cluster;
    this.counters = counters;
    this.log = log;
  }

  /** Healing: nothing more is granted or kept alive; every lease must expire. */
  heal(): void {
    this.healed = true;
    for (const l of this.leases) l.keepUntil = Math.min(l.keepUntil, this.now);
  }

  /** `quiet`: a quiet stretch (faults.ts): nothing is granted or kept alive, so leases run out
   *  while the group sleeps and the leader's lease timer wakes it. */
  tick(now: number, quiet = false): void {
    this.now = now;
    for (const [reqId, p] of this.pending) if (now - p.sentAt > ATTEMPT_TICKS) this.pending.delete(reqId);
    this.check(now);
    if (this.healed || quiet) return;
    const live = this.leases.filter((l) => !l.dead);
    if (live.length < SLOTS && this.random.nextInt(1000) < GRANT_PER_MILLE && ![...this.pending.values()].some((p) => p.what === 'grant')) {
      const ttl = TTL_SECONDS[this.random.nextInt(TTL_SECONDS.length)]!;
      this.send({ what: 'grant', lease: null, ttl, sentAt: now }, (reqId) => ({ kind: 'write', reqId, cmd: { op: 'lease-grant', ttl } }));
    }
    for (const l of live) {
      if (l.attachIndex === 0 && !this.inFlight(l, 'attach')) {
        this.send({ what: 'attach', lease: l, ttl: 0, sentAt: now }, (reqId) => ({
          kind: 'write',
          reqId,
          cmd: { op: 'put', pairs: [[l.key, String(now)]], lease: l.id },
        }));
      }
      if (now < l.keepUntil && now - l.lastSent >= Math.floor(l.ttlTicks / 4)) {
        l.lastSent = now;
        this.send({ what: 'keepalive', lease: l, ttl: 0, sentAt: now }, (reqId) => ({ kind: 'keepalive', reqId, id: l.id }));
      }
    }
  }

  private inFlight(l: SimLease, what: Pending['what']): boolean {
    for (const p of this.pending.values()) if (p.lease === l && p.what === what) return true;
    return false;
  }

  private send(p: Pending, req: (reqId: number) => NodeRequest): void {
    const targets = [...this.cluster.nodes.keys()];
    if (targets.length === 0) return;
    const target = this.cluster.nodes.has(this.leaderHint) ? this.leaderHint : targets[this.random.nextInt(targets.length)]!;
    const reqId = REQ_BASE - ++this.seq;
    this.pending.set(reqId, p);
    this.cluster.request(target, req(reqId));
  }

  /** An answer to one of this actor's requests (false: not one of ours). */
  onAnswer(reqId: number, from: NodeId, answer: NodeAnswer): boolean {
    if (reqId > REQ_BASE) return false;
    const p = this.pending.get(reqId);
    if (p === undefined) return true;
    this.pending.delete(reqId);
    if (answer.kind === 'refused') {
      this.leaderHint = answer.leader !== '' ? answer.leader : '';
      return true;
    }
    this.leaderHint = from;
    if (p.what === 'grant' && answer.kind === 'write' && answer.result.ok && answer.result.op === 'lease-grant') {
      const keep = this.random.nextInt(3) !== 0;
      const ttlTicks = Math.ceil((answer.result.ttl * 1000) / SIM_TICK_MS);
      const l: SimLease = {
        id: answer.result.id,
        key: `lease/${answer.result.id}`,
        ttlTicks,
        keepUntil: keep ? this.now + ttlTicks * (2 + this.random.nextInt(8)) : 0,
        attachIndex: 0,
        lastAck: 0,
        lastSent: 0,
        dead: false,
      };
      this.leases.push(l);
      this.counters.leasesGranted++;
      this.log(`lease actor: granted ${l.id} ttl ${answer.result.ttl}s, ${keep ? `kept until ${l.keepUntil}` : 'abandoned'}`);
    } else if (p.what === 'attach' && answer.kind === 'write') {
      if (answer.result.ok) p.lease!.attachIndex = answer.index;
      else p.lease!.dead = true; // expired before its key was attached
    } else if (p.what === 'keepalive' && answer.kind === 'keepalive') {
      const l = p.lease!;
      if (answer.kept) {
        l.lastAck = Math.max(l.lastAck, p.sentAt);
        this.counters.leaseKeepAlives++;
      } else l.dead = true; // it expired (its acknowledgements came too seldom): the checks below hold from each one
    }
    return true;
  }

  /** No node that applied a protected lease's grant (and its key's attach) lacks them. */
  private check(now: number): void {
    for (const l of this.leases) {
      if (l.lastAck === 0) continue;
      const until = l.lastAck + l.ttlTicks - Math.ceil(l.ttlTicks / ELECTION_TICKS) - 2;
      if (now >= until) continue;
      for (const node of this.cluster.nodes.values()) {
        const s = node.leaseState(l.id, l.key);
        if (s === null || s.applied < l.id) continue;
        this.counters.leaseChecks++;
        if (!s.lease || (l.attachIndex > 0 && s.applied >= l.attachIndex && !s.key)) {
          violation(
            'lease-kept-alive',
            `lease ${l.id} (ttl ${l.ttlTicks} ticks) acknowledged alive at tick ${l.lastAck} is gone on ${node.id} (applied ${s.applied}) at tick ${now}: ${s.lease ? `its key ${l.key} was deleted` : 'the lease was revoked'}`,
          );
        }
      }
    }
  }

  /** After healing: every lease and leased key gone on every member (a count for the report). */
  drained(members: SimHost[]): boolean {
    if (members.length === 0) return false;
    for (const m of members) {
      const s = m.leaseState(0, '');
      if (s === null || s.leases > 0) return false;
      for (const l of this.leases) if (m.leaseState(l.id, l.key)?.key !== false) return false;
    }
    this.counters.leasesExpired = this.leases.length;
    return true;
  }
}
