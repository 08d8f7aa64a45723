// An in-process cluster of Peers for tests: memory storage, a direct in-memory transport that
// passes every message through the core's wire codec, and fake time (the test drives ticks;
// no real timers). Peers can be crashed (their in-flight saves are lost), restarted from their
// disk, partitioned away, and added.

import { Peer } from '../../worker/peer/peer.ts';
import type { PeerLimits } from '../../worker/peer/peer.ts';
import { DEFAULT_TICK_MS } from '../../worker/peer/options.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import { decodeMessages, encodeMessages } from '../../worker/raft/codec.ts';
import type { Membership, Message, NodeId, RaftConfig } from '../../worker/raft/types.ts';
import type { KvLimits } from '../../worker/kv/types.ts';
import type { WatchLimits } from '../../worker/peer/watch-room.ts';
import { MemoryDisk, MemoryStorage } from './memory-storage.ts';
import type { InitialState } from '../../worker/peer/restart.ts';

export interface ClusterOptions {
  ids?: NodeId[];
  seed?: number;
  limits?: Partial<PeerLimits>;
  kvLimits?: KvLimits;
  raft?: Partial<Omit<RaftConfig, 'id' | 'random'>>;
  watchLimits?: Partial<WatchLimits>;
  /** The tick length the peers are opened with and fake time advances by (default DEFAULT_TICK_MS). */
  tickMs?: number;
  /** A restored cluster's initial state (PeerOptions.initialState), given to every founder. */
  initialState?: InitialState;
  /** Tick like a host with a TickPort: a peer that asks to rest is not ticked until it resumes
   *  or its wake time comes (then Peer.wake()). Without it every peer is ticked always. */
  hostTicks?: boolean;
  /** PeerOptions.quiesce. */
  quiesce?: boolean;
}

export function addressOf(id: NodeId): string {
  return `http://${id}.test`;
}

export class TestCluster {
  readonly peers = new Map<NodeId, Peer>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly disks = new Map<NodeId, MemoryDisk>();
  /** Peers whose traffic is dropped both ways. */
  readonly isolated = new Set<NodeId>();
  /** One-way links that drop their messages, as "from>to". */
  readonly cutLinks = new Set<string>();
  /** Peers that get no ticks (a paused process: SIGSTOP). Pair with `isolated` for no traffic. */
  readonly paused = new Set<NodeId>();
  private queue: Message[] = [];
  private nowMs = 1_000_000;
  private readonly opts: ClusterOptions;
  readonly tickMs: number;
  private readonly random: SeededRandom;
  readonly initial: Membership;
  /** Messages delivered, by type (assertions on snapshots etc.). */
  readonly delivered = new Map<string, number>();
  /** Messages sent, by sender (delivered or not). */
  readonly sentBy = new Map<NodeId, number>();
  /** hostTicks: peers resting, with the time they asked to be woken at (null: by a call only). */
  readonly resting = new Map<NodeId, number | null>();
  /** hostTicks: every rest() and resume() call, in order, as "id rest <wakeAtMs|null>" / "id resume". */
  readonly tickCalls: string[] = [];
  /** Peer ticks run, by peer. */
  readonly ticked = new Map<NodeId, number>();

  private constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
    this.random = new SeededRandom(opts.seed ?? 1);
    const ids = opts.ids ?? ['p1', 'p2', 'p3'];
    this.initial = { voters: ids, learners: [], addresses: Object.fromEntries(ids.map((id) => [id, addressOf(id)])) };
  }

  static async start(opts: ClusterOptions = {}): Promise<TestCluster> {
    const cluster = new TestCluster(opts);
    for (const id of cluster.initial.voters) await cluster.open(id, cluster.initial);
    return cluster;
  }

  /** Open (or reopen from its disk) one peer. `membership` only matters for a fresh disk. */
  async open(id: NodeId, membership: Membership = { voters: [], learners: [], addresses: {} }): Promise<Peer> {
    const disk = this.disks.get(id) ?? new MemoryDisk();
    this.disks.set(id, disk);
    const storage = new MemoryStorage(disk);
    this.storages.set(id, storage);
    const opts = {
      id,
      storage,
      transport: {
        send: (msgs: Message[]) => {
          this.sentBy.set(id, (this.sentBy.get(id) ?? 0) + msgs.length);
          this.queue.push(...decodeMessages(encodeMessages(msgs)));
        },
      },
      clock: { nowMs: () => this.nowMs },
      tickMs: this.tickMs,
      ...(this.opts.quiesce === undefined ? {} : { quiesce: this.opts.quiesce }),
      ...(this.opts.hostTicks !== true
        ? {}
        : {
            ticks: {
              rest: (wakeAtMs: number | null) => {
                this.resting.set(id, wakeAtMs);
                this.tickCalls.push(`${id} rest ${wakeAtMs}`);
              },
              resume: () => {
                this.resting.delete(id);
                this.tickCalls.push(`${id} resume`);
              },
            },
          }),
      random: new SeededRandom(this.random.nextU32()),
      initialMembership: membership,
      ...(this.opts.limits === undefined ? {} : { limits: this.opts.limits }),
      ...(this.opts.kvLimits === undefined ? {} : { kvLimits: this.opts.kvLimits }),
      ...(this.opts.raft === undefined ? {} : { raft: this.opts.raft }),
      ...(this.opts.watchLimits === undefined ? {} : { watchLimits: this.opts.watchLimits }),
      ...(this.opts.initialState === undefined ? {} : { initialState: this.opts.initialState }),
    };
    const peer = await Peer.open(opts);
    this.peers.set(id, peer);
    return peer;
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    if (p === undefined) throw new Error(`no live peer ${id}`);
    return p;
  }

  /** Kill a peer: in-flight saves are lost, memory is gone, the disk stays. */
  crash(id: NodeId): void {
    this.storages.get(id)?.crash();
    this.peers.delete(id);
    this.resting.delete(id);
  }

  async stop(id: NodeId): Promise<void> {
    const p = this.peers.get(id);
    this.peers.delete(id);
    this.resting.delete(id);
    await p?.close();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.peers.keys()]) await this.stop(id);
  }

  /** Let every pending save, send and delivery run (no ticks pass). */
  async settle(): Promise<void> {
    let idleRounds = 0;
    for (let round = 0; round < 10_000 && idleRounds < 3; round++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.queue.length === 0) {
        idleRounds++;
        continue;
      }
      idleRounds = 0;
      this.deliver();
    }
  }

  private deliver(): void {
    const batch = this.queue;
    this.queue = [];
    const byDest = new Map<NodeId, Message[]>();
    for (const m of batch) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to) || this.cutLinks.has(`${m.from}>${m.to}`)) continue;
      const list = byDest.get(m.to) ?? [];
      list.push(m);
      byDest.set(m.to, list);
    }
    for (const [to, msgs] of byDest) {
      const peer = this.peers.get(to);
      if (peer === undefined) continue;
      for (const m of msgs) this.delivered.set(m.type, (this.delivered.get(m.type) ?? 0) + 1);
      peer.receive(msgs);
    }
  }

  /** Advance fake time by `n` ticks on every live peer, settling after each. */
  async tick(n = 1): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.nowMs += this.tickMs;
      for (const [id, p] of this.peers) {
        if (this.paused.has(id)) continue;
        if (this.resting.has(id)) {
          const wakeAt = this.resting.get(id)!;
          if (wakeAt === null || this.nowMs < wakeAt) continue;
          p.wake(); // the host's lease timer
          if (this.resting.has(id)) continue;
        }
        this.ticked.set(id, (this.ticked.get(id) ?? 0) + 1);
        p.tick();
      }
      await this.settle();
    }
  }

  /** Tick until `cond` holds; fail after `maxTicks`. */
  async until(cond: () => boolean, maxTicks = 200, what = 'condition'): Promise<void> {
    for (let i = 0; i < maxTicks; i++) {
      if (cond()) return;
      await this.tick();
    }
    if (!cond()) throw new Error(`${what} not reached within ${maxTicks} ticks`);
  }

  /** The one live peer that believes it leads (and is not isolated), once there is exactly one. */
  leaderId(): NodeId | null {
    const leaders = [...this.peers].filter(([id, p]) => p.isLeader() && !this.isolated.has(id));
    return leaders.length === 1 ? leaders[0]![0] : null;
  }

  async waitLeader(maxTicks = 200): Promise<Peer> {
    await this.until(() => this.leaderId() !== null, maxTicks, 'a leader');
    return this.peer(this.leaderId()!);
  }

  /** Resolve a client operation while ticking the cluster. */
  async drive<T>(op: Promise<T>, maxTicks = 200): Promise<T> {
    let settled = false;
    const watched = op.finally(() => {
      settled = true;
    });
    watched.catch(() => {});
    await this.settle();
    for (let i = 0; i < maxTicks && !settled; i++) await this.tick();
    if (!settled) throw new Error(`operation did not settle within ${maxTicks} ticks`);
    return watched;
  }

  followers(): NodeId[] {
    const leader = this.leaderId();
    return [...this.peers.keys()].filter((id) => id !== leader);
  }
}
