// The chaos schedule: per tick, seeded decisions to crash nodes (now or at a Ready seam),
// partition the network (symmetric splits, isolated leaders, one-way cuts), heal it, change
// membership (add learner, promote, add voter, remove) and transfer leadership.

import type { NodeId } from '../../worker/raft/types.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';
import type { SimCluster } from './cluster.ts';
import { EMPTY_MEMBERSHIP } from './cluster.ts';
import type { SimNetwork } from './network.ts';
import { CRASH_POINTS, type CrashPoint } from './host.ts';
import { ELECTION_TICKS, type FaultMix } from './options.ts';

export interface FaultStats {
  crashes: number;
  partitions: number;
  heals: number;
  confChangesProposed: number;
  transfers: number;
  pauses: number;
}

/** Membership stays within [VOTERS_MIN, initial + 1] voters and at most 2 learners. */
const VOTERS_MIN = 3;
const LEARNERS_MAX = 2;
/** Random load bursts: how often and how long (an election timeout: an anomaly window's length). */
const BURST_PER_MILLE = 10;
const BURST_TICKS = ELECTION_TICKS;
/** Quiet stretches (no client starts an operation, lease keep-alives stop; how often: the mix's
 *  quietPerMille) long enough for the group to quiesce (an election timeout of idleness,
 *  worker/peer/quiescence.ts) and sleep a while; faults go on. During one, a few clients now
 *  and then start an operation anyway (quietPokePerMille): a random wake. */
const QUIET_TICKS_MIN = 6 * ELECTION_TICKS;
const QUIET_TICKS_SPREAD = 12 * ELECTION_TICKS;
/** Total nodes ever spawned, so long runs cannot grow the cluster without bound. */
const SPAWNED_EXTRA_MAX = 8;

export class ChaosSchedule {
  readonly stats: FaultStats = { crashes: 0, partitions: 0, heals: 0, confChangesProposed: 0, transfers: 0, pauses: 0 };
  private readonly random: SeededRandom;
  private readonly mix: FaultMix;
  private readonly cluster: SimCluster;
  private readonly network: SimNetwork;
  private readonly initialVoters: number;
  private readonly crashPoints: CrashPoint[] = CRASH_POINTS;
  private readonly trace: (line: string) => void;

  constructor(
    random: SeededRandom,
    mix: FaultMix,
    cluster: SimCluster,
    network: SimNetwork,
    initialVoters: number,
    trace: (line: string) => void,
  ) {
    this.random = random;
    this.mix = mix;
    this.cluster = cluster;
    this.network = network;
    this.initialVoters = initialVoters;
    this.trace = trace;
  }

  /**
   * Until this tick every idle client starts an operation each tick: load bursts, started at
   * random and right after the faults that open short anomaly windows (a new partition, a
   * leader cut off after a transfer), so those windows see traffic.
   */
  burstUntil = 0;
  /** Until this tick the clients are quiet (see QUIET_PER_MILLE). */
  quietUntil = 0;
  /** This tick, during a quiet stretch, some clients start an operation anyway. */
  poke = false;

  tick(nowTick: number): void {
    const m = this.mix;
    if (nowTick >= this.quietUntil && this.chance(m.quietPerMille)) {
      this.quietUntil = nowTick + QUIET_TICKS_MIN + this.random.nextInt(QUIET_TICKS_SPREAD);
      this.trace(`quiet until ${this.quietUntil}`);
    }
    this.poke = this.quiet(nowTick) && this.chance(m.quietPokePerMille);
    if (this.chance(BURST_PER_MILLE)) this.burst(nowTick);
    if (this.chance(m.crashPerMille)) this.crashOne();
    if (this.network.cutCount() === 0) {
      if (this.chance(m.partitionPerMille)) {
        this.partition();
        this.burst(nowTick);
      }
    } else if (this.chance(m.healPerMille)) {
      this.network.heal();
      this.stats.heals++;
      this.trace('net heal');
    }
    if (this.chance(m.membershipPerMille)) this.changeMembership();
    if (this.chance(m.transferPerMille)) this.transfer(nowTick);
    if (this.chance(m.pausePerMille)) this.pause(nowTick);
  }

  /** Pause a node's process (mostly the leader: its lease must not outlive the pause). */
  private pause(nowTick: number): void {
    // No load burst here: clients idle through the pause start operations after writes the
    // new leader completes meanwhile, and those reaching the paused leader are the ones a stale
    // lease would answer wrongly.
    const live = this.cluster.live().filter((n) => !n.paused);
    if (live.length === 0) return;
    let node = this.pick(live);
    const leader = this.cluster.leader();
    if (this.random.nextInt(4) !== 0 && leader !== null && !leader.paused) node = leader;
    // Up to four election timeouts: long enough for the others to elect a leader and commit.
    const ticks = 3 + this.random.nextInt(4 * ELECTION_TICKS);
    node.pausedUntil = nowTick + ticks;
    this.stats.pauses++;
    this.trace(`fault pause ${node.id} for ${ticks} ticks`);
  }

  quiet(nowTick: number): boolean {
    return nowTick < this.quietUntil;
  }

  private burst(nowTick: number): void {
    this.burstUntil = Math.max(this.burstUntil, nowTick + BURST_TICKS);
  }

  private chance(perMille: number): boolean {
    return perMille > 0 && this.random.nextInt(1000) < perMille;
  }

  private pick<T>(items: T[]): T {
    return items[this.random.nextInt(items.length)]!;
  }

  private crashOne(): void {
    const live = this.cluster.live();
    // Keep a majority of nodes up most of the time: runs with everything down teach nothing.
    if (live.length === 0 || this.cluster.downCount() * 2 >= this.cluster.nodes.size - 1) return;
    let node = this.pick(live);
    if (this.random.nextInt(6) === 0) {
      // Not a crash: an operator's clean restart (Peer.close, then open).
      this.trace(`fault clean restart ${node.id}`);
      node.restart();
      return;
    }
    const point = this.random.nextInt(2) === 0 ? null : this.pick(this.crashPoints);
    // Only a leader sends entries before writing them: aim that seam at one (no extra draw).
    if (point === 'after-early-send') node = this.cluster.leader() ?? node;
    const down = this.random.nextInt(this.mix.downTicksMax + 1);
    this.stats.crashes++;
    this.trace(`fault crash ${node.id} at ${point ?? 'now'} for ${down} ticks`);
    this.cluster.crash(node.id, point, down);
  }

  private partition(): void {
    const ids = [...this.cluster.nodes.keys()];
    if (ids.length < 2) return;
    this.stats.partitions++;
    const kind = this.random.nextInt(3);
    if (kind === 0) {
      // Symmetric split into two non-empty sides.
      const shuffled = ids
        .map((id) => [this.random.nextU32(), id] as const)
        .sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1))
        .map(([, id]) => id);
      const cut = 1 + this.random.nextInt(shuffled.length - 1);
      const a = shuffled.slice(0, cut);
      const b = shuffled.slice(cut);
      this.network.partition(a, b);
      this.trace(`net split [${a.join(',')}] | [${b.join(',')}]`);
    } else if (kind === 1) {
      // Isolate the leader (or anyone, if there is none).
      const leader = this.cluster.leader()?.id ?? this.pick(ids);
      this.network.partition(
        [leader],
        ids.filter((id) => id !== leader),
      );
      this.trace(`net isolate ${leader}`);
    } else {
      // One-way cuts: the sender's messages vanish, the reverse direction still works.
      const cuts = 1 + this.random.nextInt(3);
      const made: string[] = [];
      for (let i = 0; i < cuts; i++) {
        const from = this.pick(ids);
        const to = this.pick(ids.filter((id) => id !== from));
        this.network.cutOneWay(from, to);
        made.push(`${from}>${to}`);
      }
      this.trace(`net cut ${made.join(' ')}`);
    }
  }

  private changeMembership(): void {
    const leader = this.cluster.leader();
    if (leader === null) return;
    const m = leader.currentMembership();
    if (m === null) return;
    type Change = { kind: 'addLearner' | 'addVoter' | 'promote' | 'remove'; node: NodeId };
    const options: Array<() => Change> = [];
    const canGrow = this.cluster.spawned < this.initialVoters + SPAWNED_EXTRA_MAX || this.cluster.spares().length > 0;
    if (canGrow && m.learners.length < LEARNERS_MAX) options.push(() => this.freshMember('addLearner'));
    if (canGrow && m.voters.length <= this.initialVoters) options.push(() => this.freshMember('addVoter'));
    if (m.learners.length > 0) {
      options.push(() => ({ kind: 'promote', node: this.pick(m.learners) }));
      options.push(() => ({ kind: 'remove', node: this.pick(m.learners) }));
    }
    if (m.voters.length > VOTERS_MIN) options.push(() => ({ kind: 'remove', node: this.pick(m.voters) }));
    if (options.length === 0) return;
    const change = this.pick(options)();
    this.stats.confChangesProposed++;
    this.trace(`fault ${change.kind} ${change.node} at ${leader.id}`);
    leader.changeMembership(change.kind, change.node);
  }

  /** A node for an add: a spare that was never added, else a brand-new one. */
  private freshMember(kind: 'addLearner' | 'addVoter'): { kind: 'addLearner' | 'addVoter'; node: NodeId } {
    const spares = this.cluster.spares();
    const node = spares.length > 0 ? this.pick(spares) : this.cluster.spawn(EMPTY_MEMBERSHIP);
    this.trace(`${node.id} spare for ${kind}`);
    return { kind, node: node.id };
  }

  private transfer(_nowTick: number): void {
    const leader = this.cluster.leader();
    if (leader === null) return;
    const m = leader.currentMembership();
    if (m === null) return;
    const targets: NodeId[] = m.voters.filter((id) => id !== leader.id);
    if (targets.length === 0) return;
    this.stats.transfers++;
    const target = this.pick(targets);
    // Sometimes the old leader is cut off right after its TimeoutNow left: the target wins at
    // once (transfer votes bypass followers' leases) while the old leader, hearing nothing,
    // still believes it leads until CheckQuorum — the window in which a read served without a
    // quorum round or under a stale lease would be stale.
    if (this.random.nextInt(3) === 0) this.cutOffAfterTimeoutNow = leader.id;
    this.trace(`fault transfer ${leader.id} -> ${target}`);
    leader.transferLeadership(target);
  }

  /** Armed by transfer(): cut this leader off as soon as its TimeoutNow leaves. */
  private cutOffAfterTimeoutNow: NodeId = '';

  /** Faults healed: nothing armed may fire any more. */
  stop(): void {
    this.cutOffAfterTimeoutNow = '';
    for (const n of this.cluster.nodes.values()) n.pausedUntil = 0;
    this.burstUntil = 0;
    this.quietUntil = 0;
  }

  /** A node sent TimeoutNow (called by the host while it sends). */
  onTimeoutNow(from: NodeId, to: NodeId, nowTick: number): void {
    if (from === '' || from !== this.cutOffAfterTimeoutNow) return;
    this.cutOffAfterTimeoutNow = '';
    this.burst(nowTick);
    for (const id of this.cluster.nodes.keys()) {
      if (id === from) continue;
      this.network.cutOneWay(id, from);
      if (id !== to) this.network.cutOneWay(from, id);
    }
    this.trace(`net cut ${from} off after its TimeoutNow to ${to} (only ${from}>${to} open)`);
  }
}
