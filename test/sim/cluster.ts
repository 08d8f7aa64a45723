// The set of simulated nodes and their lifecycle: spawn, crash (now or at a Ready seam),
// restart after a downtime, and retirement of nodes whose removal has committed. It also
// routes messages from the network and requests from clients to the nodes.

import type { Membership, Message, NodeId } from '../../worker/raft/types.ts';
import { SimHost, type CrashPoint, type NodeEnv, type NodeRequest } from './host.ts';
import { stream } from './streams.ts';

export const EMPTY_MEMBERSHIP: Membership = { voters: [], learners: [], addresses: {} };

type SimNode = SimHost;

function copyMembership(m: Membership): Membership {
  return { voters: [...m.voters], learners: [...m.learners], addresses: { ...m.addresses } };
}

export class SimCluster {
  /** Every node ever spawned that is not retired, in spawn order (iteration order is part of the replay). */
  readonly nodes = new Map<NodeId, SimNode>();
  /** Every node ever spawned, retired ones included (their counters count too). */
  readonly everSpawned: SimNode[] = [];
  readonly retired = new Set<NodeId>();
  /** Nodes that were in the committed membership at some point. */
  private readonly everMember = new Set<NodeId>();
  /** Down nodes and the tick at which they restart. */
  private readonly downUntil = new Map<NodeId, number>();
  /** Downtime to use once an armed crash fires. */
  private readonly armedDownTicks = new Map<NodeId, number>();
  private readonly env: NodeEnv;
  spawned = 0;
  private committed: Membership | null = null;
  private committedAt = 0;
  /**
   * On about half the seeds a removed node keeps running (ticked, messaged, asked by clients)
   * for this many ticks before it is retired, so the peer's own removal handling runs: it must
   * learn it was removed (applying its removal, or told by a member) and then stay quiet and
   * refuse clients (host.ts checks). Drawn from its own stream, so other draws do not move.
   */
  private readonly removedLingerTicks: number;
  private readonly lingering = new Map<NodeId, number>();

  constructor(env: NodeEnv) {
    this.env = env;
    const r = stream(env.seed, 'removed-linger');
    this.removedLingerTicks = r.nextInt(2) === 0 ? 0 : [10, 30, 60][r.nextInt(3)]!;
  }

  /** A brand-new node with the given initial membership (empty: it waits to be added). */
  spawn(initial: Membership): SimNode {
    this.spawned++;
    const id = `n${this.spawned}`;
    const node = new SimHost(id, initial, this.env);
    this.nodes.set(id, node);
    this.everSpawned.push(node);
    if (initial.voters.includes(id)) this.everMember.add(id);
    node.start();
    return node;
  }

  live(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.nodes.values()) if (n.up) out.push(n);
    return out;
  }

  downCount(): number {
    let n = 0;
    for (const node of this.nodes.values()) if (!node.up) n++;
    return n;
  }

  /** The live leader with the highest term, if any. */
  leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.up && n.role === 'leader' && (best === null || n.term > best.term)) best = n;
    }
    return best;
  }

  /** Crash `id` now (point null) or arm a crash at a Ready seam; it stays down `downTicks`. */
  crash(id: NodeId, point: CrashPoint | null, downTicks: number): void {
    const node = this.nodes.get(id);
    if (node === undefined || node.down) return;
    this.armedDownTicks.set(id, downTicks);
    if (point === null) {
      this.env.counters.crashesNow++;
      node.crash('crash now');
    } else node.crashPlan = point;
  }

  /** Schedule restarts for nodes that went down, and restart those whose downtime is over. */
  restartDue(): void {
    const now = this.env.now();
    for (const node of this.nodes.values()) {
      if (!node.down) continue;
      let at = this.downUntil.get(node.id);
      if (at === undefined) {
        at = now + (this.armedDownTicks.get(node.id) ?? 0);
        this.armedDownTicks.delete(node.id);
        this.downUntil.set(node.id, at);
      }
      if (now >= at) {
        this.downUntil.delete(node.id);
        node.start();
      }
    }
  }

  /** Heal: restart every down node now and disarm pending crashes. */
  restartAll(): void {
    for (const node of this.nodes.values()) {
      node.crashPlan = null;
      if (node.down) {
        this.downUntil.delete(node.id);
        this.armedDownTicks.delete(node.id);
        node.start();
      }
    }
  }

  /**
   * The membership committed cluster-wide: as durably applied at the highest applied index any
   * node's disk has reached so far (remembered, since that node may be gone now).
   */
  committedMembership(): Membership | null {
    for (const n of this.nodes.values()) {
      if (n.disk.applied > this.committedAt) {
        this.committedAt = n.disk.applied;
        this.committed = copyMembership(n.disk.appliedMembership());
      }
    }
    return this.committed;
  }

  /**
   * Stop nodes whose removal has committed (they are out of the committed membership after
   * having been in it), after their linger (none when `now`: healing). Node ids are never
   * reused, as in etcd.
   */
  retireRemoved(now = false): void {
    const m = this.committedMembership();
    if (m === null) return;
    for (const id of m.voters) this.everMember.add(id);
    for (const id of m.learners) this.everMember.add(id);
    for (const node of [...this.nodes.values()]) {
      if (!this.everMember.has(node.id) || m.voters.includes(node.id) || m.learners.includes(node.id)) continue;
      if (!now && this.removedLingerTicks > 0) {
        const until = this.lingering.get(node.id);
        if (until === undefined) {
          this.lingering.set(node.id, this.env.now() + this.removedLingerTicks);
          this.env.counters.removedLingering++;
          this.env.trace(`${node.id} removed; keeps running for ${this.removedLingerTicks} ticks`);
        }
        if (until === undefined || this.env.now() < until) continue;
      }
      this.lingering.delete(node.id);
      node.crash('retired: removal committed');
      this.nodes.delete(node.id);
      this.downUntil.delete(node.id);
      this.retired.add(node.id);
      this.env.trace(
        `${node.id} retired (membership applied at ${this.committedAt}: voters ${m.voters.join(',')} learners ${m.learners.join(',')})`,
      );
    }
  }

  /** Live nodes that are not members of the committed membership (never-added spares). */
  spares(): SimNode[] {
    const m = this.committedMembership();
    if (m === null) return [];
    return this.live().filter((n) => !m.voters.includes(n.id) && !m.learners.includes(n.id) && !this.everMember.has(n.id));
  }

  deliver(messages: Message[]): void {
    if (messages.length === 0) return;
    const byNode = new Map<NodeId, Message[]>();
    for (const m of messages) {
      let list = byNode.get(m.to);
      if (list === undefined) {
        list = [];
        byNode.set(m.to, list);
      }
      list.push(m);
    }
    for (const [id, msgs] of byNode) this.nodes.get(id)?.receive(msgs);
  }

  request(target: NodeId, req: NodeRequest): void {
    this.nodes.get(target)?.request(req);
  }
}
