// Clients of the lock recipe (worker/api/turns.ts, what POST /lock runs on the leader) under the
// run's faults: a few lockers grant a lease, queue for one lock, wait their turn (keeping the
// lease alive), use a protected resource with their fencing token, and release, or die holding
// it (the lease expires). What it checks, after convergence, against the converged history:
//   - exclusion: at the revision a locker saw itself holding the turn, no other contender with a
//     lower create revision was under the prefix (at most one holder at any revision);
//   - fencing: ordered by the revision they held it at, holders' tokens strictly increase, so a
//     resource that refuses a token below the largest it saw never serves an older holder after
//     a newer one.
// A plant that skips the wait (two holders at once) fails the first check.

import type { SeededRandom } from '../../worker/raft/random.ts';
import { isRevisionProblem } from '../../worker/kv/state-machine.ts';
import type { Peer } from '../../worker/peer/peer.ts';
import { enqueue, waitTurn } from '../../worker/api/turns.ts';
import type { NodeCounters } from './counters.ts';
import type { SimCluster } from './cluster.ts';
import { violation } from './violation.ts';

export const LOCK_PREFIX = 'lock/sim/';
const LOCKERS = 3;
const START_PER_MILLE = 60;
const LEASE_TTL_S = 3;
const WAIT_MS = 8000;

interface Held {
  locker: number;
  key: string;
  token: number;
  /** The revision the locker saw itself holding the turn at. */
  at: number;
}

type LockerState = { kind: 'idle' } | { kind: 'busy' } | { kind: 'holding'; held: Held; peer: Peer; until: number; dies: boolean };

export class SimLockers {
  private readonly random: SeededRandom;
  private readonly cluster: SimCluster;
  private readonly counters: NodeCounters;
  private readonly log: (line: string) => void;
  private readonly lockers: LockerState[] = Array.from({ length: LOCKERS }, () => ({ kind: 'idle' }));
  private readonly held: Held[] = [];
  /** The protected resource: the largest token it accepted. */
  private resourceToken = 0;

  constructor(random: SeededRandom, cluster: SimCluster, counters: NodeCounters, log: (line: string) => void) {
    this.random = random;
    this.cluster = cluster;
    this.counters = counters;
    this.log = log;
  }

  tick(tick: number, chaosOn: boolean): void {
    this.lockers.forEach((state, i) => {
      if (state.kind === 'holding') {
        if (tick < state.until) {
          if (!state.dies && tick % 4 === 0) void state.peer.keepAlive(this.leaseOf(state.held)).catch(() => undefined);
          return;
        }
        this.lockers[i] = { kind: 'idle' };
        if (!state.dies) void state.peer.write({ op: 'delete', keys: [state.held.key] }).catch(() => undefined);
        return;
      }
      if (state.kind === 'idle' && chaosOn && this.random.nextInt(1000) < START_PER_MILLE) this.start(i, tick);
    });
  }

  private leaseOf(held: Held): number {
    return parseInt(held.key.slice(LOCK_PREFIX.length), 16);
  }

  private start(i: number, tick: number): void {
    const nodes = [...this.cluster.nodes.values()].filter((n) => n.peer !== null);
    if (nodes.length === 0) return;
    const peer = nodes[this.random.nextInt(nodes.length)]!.peer!;
    const holdTicks = 2 + this.random.nextInt(10);
    const dies = this.random.nextInt(4) === 0;
    this.lockers[i] = { kind: 'busy' };
    void this.acquire(i, peer)
      .then((held) => {
        this.held.push(held);
        this.counters.lockAcquisitions++;
        // The protected resource refuses a token below the largest it saw (fencing).
        if (held.token < this.resourceToken) this.counters.lockFencedOff++;
        else this.resourceToken = held.token;
        this.log(`locker ${i} holds ${held.key} token ${held.token} at revision ${held.at}${dies ? ' (will die holding it)' : ''}`);
        this.lockers[i] = { kind: 'holding', held, peer, until: tick + holdTicks, dies };
      })
      .catch(() => {
        this.lockers[i] = { kind: 'idle' }; // not the leader, closed, lost or timed out: later, elsewhere
      });
  }

  private async acquire(locker: number, peer: Peer): Promise<Held> {
    const granted = (await peer.write({ op: 'lease-grant', ttl: LEASE_TTL_S })).result;
    if (!granted.ok || granted.op !== 'lease-grant') throw new Error('no lease');
    const lease = granted.id;
    try {
      const ticket = await enqueue(peer, LOCK_PREFIX, lease, `locker-${locker}`);
      const now = () => peer.nowMs();
      const at = await waitTurn(peer, LOCK_PREFIX, ticket, now() + WAIT_MS, now, {
        everyMs: (LEASE_TTL_S * 1000) / 3,
        run: () => peer.keepAlive(lease),
      });
      return { locker, key: ticket.key, token: ticket.revision, at };
    } catch (err) {
      // As the lock route does: a contender that gives up takes its lease (and key) with it.
      void peer.write({ op: 'lease-revoke', id: lease }).catch(() => undefined);
      throw err;
    }
  }

  /** Both checks, against a converged member's history. */
  async check(member: Peer): Promise<void> {
    for (const h of this.held) {
      const out = await member.read('stale', (kv) => kv.rangeAt({ prefix: LOCK_PREFIX, limit: 10_000 }, h.at));
      if (isRevisionProblem(out.value)) continue; // compacted on a small-retention seed
      this.counters.lockChecks++;
      for (const [key, record] of out.value) {
        if (record.createRevision < h.token) {
          violation(
            'lock-exclusion',
            `locker ${h.locker} held ${h.key} (token ${h.token}) at revision ${h.at}, while ${key} (created at ${record.createRevision}) was ahead of it`,
          );
        }
      }
    }
    const byRevision = this.held.slice().sort((a, b) => a.at - b.at);
    for (let i = 1; i < byRevision.length; i++) {
      const a = byRevision[i - 1]!;
      const b = byRevision[i]!;
      if (!(a.at < b.at && a.token < b.token)) {
        violation('lock-fencing', `holders out of order: ${a.key} token ${a.token} at ${a.at}, then ${b.key} token ${b.token} at ${b.at}`);
      }
    }
  }
}
