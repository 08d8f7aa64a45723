// One simulated peer: RawNode + KvStateMachine + a DurableStore, driven through the Ready
// contract exactly as worker/raft/types.ts orders it (persist, send, apply, release reads,
// advance), or in the overlap order of worker/peer/peer.ts (early sends and early apply before
// the write; see HostMode). A crash can be armed at any of those seams; it throws away
// everything in memory, and start() rebuilds the node from the durable model alone. On a slow
// disk (options.ts DiskOption) a Ready's write stays out for some ticks while the core keeps
// stepping, ticking and taking requests; the next ready() waits for it to land and advance().
//
// It also plays the peer's part for clients: proposals wait for their (index, term) to apply,
// consistent reads wait for a ReadIndex round, default reads for a lease, stale reads are
// served from local state at once.

import { RawNode } from '../../worker/raft/rawnode.ts';
import { decodeConfChange } from '../../worker/raft/codec.ts';
import { applyConfChange } from '../../worker/raft/membership.ts';
import type { ConfChange, Entry, Membership, Message, NodeId, ProposeResult, RaftConfig, Ready, Role } from '../../worker/raft/types.ts';
import { KvStateMachine } from '../../worker/kv/state-machine.ts';
import { decodeCommand, decodeState, encodeState } from '../../worker/kv/codec.ts';
import { DEFAULT_KV_LIMITS, type KvResult } from '../../worker/kv/types.ts';
import { NodeClock } from './clock.ts';
import type { Invariants } from './invariants.ts';
import type { SimNetwork } from './network.ts';
import { ELECTION_TICKS, HEARTBEAT_TICKS, LEASE_DRIFT_TICKS, type HostMode } from './options.ts';
import { copyMembership, type DurableStore } from './storage.ts';
import { digestBytes, stream } from './streams.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';
import { violation } from './violation.ts';

/**
 * Seams of a Ready where an armed crash fires. The two overlap seams fire only in a Ready where
 * that early step did something (otherwise they would be 'before-persist' again):
 *   after-early-send   a leader's appends carrying entries left, its own write of them is lost
 *                      (followers may persist and acknowledge what the leader no longer has)
 *   after-early-apply  committed entries were applied (and answered) in memory, their KV
 *                      effects and applied index are lost; the restart re-applies them
 */
export type CrashPoint = 'before-persist' | 'after-persist' | 'after-send' | 'after-early-send' | 'after-early-apply';
/** A strict host's seams (the list and its order are part of strict seeds' replays). */
export const CRASH_POINTS: CrashPoint[] = ['before-persist', 'after-persist', 'after-send'];
export const OVERLAP_CRASH_POINTS: CrashPoint[] = [...CRASH_POINTS, 'after-early-send', 'after-early-apply'];

export type ReadLevel = 'consistent' | 'default' | 'stale';

export type NodeRequest =
  | { kind: 'write'; reqId: number; data: Uint8Array }
  | { kind: 'read'; reqId: number; key: string; level: ReadLevel };

export type NodeAnswer =
  | { kind: 'write'; result: KvResult }
  | { kind: 'read'; value: string | null; modRevision: number }
  /** Not served here (not leader, no lease, …): retry, preferably at `leader`. */
  | { kind: 'refused'; leader: NodeId }
  /** The proposal's log slot went to another entry: it will never apply, retry. */
  | { kind: 'dropped' };

/** What the hosts did, over all nodes and incarnations (evidence that each feature ran). */
export interface NodeCounters {
  /** Default reads served under a lease (the rest fell back to ReadIndex). */
  leaseReads: number;
  snapshotsInstalled: number;
  compactions: number;
  crashesAtSeams: number;
  /** Overlap hosts: messages sent before their Ready's write, Readies applied before it. */
  earlyMessages: number;
  earlyApplies: number;
  /** Crashes that lost the write of entries already sent (a leader's; or acked, broken mode). */
  crashesAfterEarlySend: number;
  crashesAfterEarlyApply: number;
  /** Entries applied (and answered) before a crash lost them, applied again after the restart. */
  reappliedEntries: number;
  /** Slow disk: writes that took >= 1 tick; messages stepped and client requests taken meanwhile. */
  slowWrites: number;
  stepsDuringWrite: number;
  /** Of those, append acks a leader stepped while its own write of new entries was out. */
  leaderAcksDuringWrite: number;
  requestsDuringWrite: number;
  /** Crashes that lost an outstanding write (and, on an overlap host, what it applied early). */
  crashesDuringWrite: number;
}

export function emptyNodeCounters(): NodeCounters {
  return {
    leaseReads: 0, snapshotsInstalled: 0, compactions: 0, crashesAtSeams: 0, earlyMessages: 0, earlyApplies: 0,
    crashesAfterEarlySend: 0, crashesAfterEarlyApply: 0, reappliedEntries: 0,
    slowWrites: 0, stepsDuringWrite: 0, leaderAcksDuringWrite: 0, requestsDuringWrite: 0, crashesDuringWrite: 0,
  };
}

/** The slow disk's counters: left out of a run's digest when its disk is instant (always 0 there). */
export const SLOW_DISK_COUNTER_KEYS: Array<keyof NodeCounters> = ['slowWrites', 'stepsDuringWrite', 'leaderAcksDuringWrite', 'requestsDuringWrite', 'crashesDuringWrite'];

/** The counters' names, for summing them across runs. */
export const NODE_COUNTER_KEYS = Object.keys(emptyNodeCounters()) as Array<keyof NodeCounters>;

export interface NodeEnv {
  readonly seed: number;
  readonly host: HostMode;
  /** Max ticks a Ready's write takes (0: instant; see options.ts DiskOption). */
  readonly diskDelayTicksMax: number;
  readonly network: SimNetwork;
  readonly invariants: Invariants;
  readonly stores: ReadonlyMap<NodeId, DurableStore>;
  readonly counters: NodeCounters;
  readonly compactEveryEntries: number;
  readonly clockSkewPercent: number;
  readonly tuning: RaftTuning;
  /** How long a node keeps a client request waiting before forgetting it. */
  readonly requestTimeoutTicks: number;
  now(): number;
  answer(reqId: number, from: NodeId, answer: NodeAnswer): void;
  /** A TimeoutNow just left `from` (after it was handed to the network). */
  onTimeoutNow(from: NodeId, to: NodeId): void;
  trace(line: string): void;
  readonly tracing: boolean;
}

export interface RaftTuning {
  appendBytesMax: number;
  inflightAppendsMax: number;
}

/** Small limits so batching, pipelining, flow control and chunking all happen in short runs. */
export function simRaftConfig(id: NodeId, seed: number, incarnation: number, tuning: RaftTuning): RaftConfig {
  return {
    id,
    electionTicks: ELECTION_TICKS,
    heartbeatTicks: HEARTBEAT_TICKS,
    preVote: true,
    checkQuorum: true,
    appendBytesMax: tuning.appendBytesMax,
    inflightAppendsMax: tuning.inflightAppendsMax,
    uncommittedEntriesMax: 64,
    snapshotChunkBytes: 96,
    leaseDriftTicks: LEASE_DRIFT_TICKS,
    random: stream(seed, `node:${id}:${incarnation}`),
  };
}

interface WaitingProposal {
  term: number;
  reqId: number;
  expiresAt: number;
}

interface WaitingRead {
  reqId: number;
  key: string;
  expiresAt: number;
  /** Serve once applied reaches this; -1 while the ReadIndex round is still out. */
  index: number;
}

/** A Ready whose write is in flight: what finishing it needs (persist, send, apply, advance). */
interface ReadyWrite {
  rd: Ready;
  raft: RawNode;
  afterPersist: Message[];
  appliedEarly: boolean;
  /** The core's membership at ready() (commit durability is judged against it, not a later one). */
  membership: Membership;
  doneAtTick: number;
}

export class SimNode {
  readonly id: NodeId;
  readonly store: DurableStore;
  private readonly env: NodeEnv;
  private readonly clock: NodeClock;
  /** Draws each write's delay on a slow disk (null: instant writes, no draws). */
  private readonly disk: SeededRandom | null;
  /** The Ready whose write is outstanding; no ready() until it is done and advanced. */
  private writing: ReadyWrite | null = null;
  incarnation = 0;
  private raft: RawNode | null = null;
  private kv: KvStateMachine | null = null;
  private applied = 0;
  /** Membership as of `applied` (host-tracked from conf entries, for snapshot metadata). */
  private membership: Membership;
  role: Role = 'follower';
  term = 0;
  leader: NodeId = '';
  /** Crash at this seam of the next Ready. */
  crashPlan: CrashPoint | null = null;
  private readonly proposals = new Map<number, WaitingProposal>();
  private readonly readIndexRounds = new Map<string, WaitingRead>();
  private waitingReads: WaitingRead[] = [];
  /** Highest index applied in memory but lost in a crash (re-applied after the restart). */
  private lostAppliedUpTo = 0;
  /** The leader's membership after its previous Ready (see Invariants.onCommit). */
  private lastMembership: Membership | null = null;

  constructor(id: NodeId, store: DurableStore, env: NodeEnv) {
    this.id = id;
    this.store = store;
    this.env = env;
    this.clock = new NodeClock(stream(env.seed, `clock:${id}`), env.clockSkewPercent);
    this.disk = env.diskDelayTicksMax > 0 ? stream(env.seed, `disk:${id}`) : null;
    this.membership = copyMembership(store.appliedMembership);
  }

  get up(): boolean {
    return this.raft !== null;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /** (Re)build everything in memory from the durable model. */
  start(): void {
    if (this.raft !== null) throw new Error(`${this.id} already up`);
    this.incarnation++;
    this.raft = new RawNode(simRaftConfig(this.id, this.env.seed, this.incarnation, this.env.tuning), this.store.restartState());
    this.kv = new KvStateMachine(DEFAULT_KV_LIMITS, this.store.kvState());
    this.applied = this.store.applied;
    this.membership = copyMembership(this.store.appliedMembership);
    this.role = 'follower';
    this.term = this.store.hardState.term;
    this.leader = '';
    this.crashPlan = null;
    this.lastMembership = null;
    this.env.invariants.onApplied(this.id, this.applied, 'restart');
    this.log(`start #${this.incarnation}${this.clock.kind === 'steady' ? '' : ` (${this.clock.kind} clock)`} term=${this.term} applied=${this.applied} last=${this.store.lastIndex()}`);
    this.processReady();
  }

  /** Lose everything not in the durable model: the RawNode, the KV state, waiting requests. */
  crash(why: string): void {
    if (this.raft === null) return;
    if (this.crashPlan !== null) this.env.counters.crashesAtSeams++;
    if (this.writing !== null) {
      // The write never reached the disk: the store model has none of it.
      this.env.counters.crashesDuringWrite++;
      this.writing = null;
    }
    if (this.applied > this.store.applied) this.lostAppliedUpTo = Math.max(this.lostAppliedUpTo, this.applied);
    this.store.onCrash();
    this.log(`crash (${why})`);
    this.raft = null;
    this.kv = null;
    this.role = 'follower';
    this.leader = '';
    this.crashPlan = null;
    this.proposals.clear();
    this.readIndexRounds.clear();
    this.waitingReads = [];
  }

  /** One global tick: the node's own clock decides how many core ticks that is (clock.ts). */
  tick(globalTick: number): void {
    if (this.raft === null) return;
    const n = this.clock.ticksAt(globalTick);
    for (let i = 0; i < n; i++) this.raft.tick();
    this.processReady();
  }

  step(messages: Message[]): void {
    if (this.raft === null) return;
    const w = this.writing;
    if (w !== null) {
      this.env.counters.stepsDuringWrite += messages.length;
      if (this.role === 'leader' && w.rd.entries.length > 0) {
        for (const m of messages) if (m.type === 'appendResp' && m.reject !== true) this.env.counters.leaderAcksDuringWrite++;
      }
    }
    for (const m of messages) this.raft.step(m);
    this.processReady();
  }

  campaign(): void {
    if (this.raft === null) return;
    this.raft.campaign();
    this.processReady();
  }

  proposeConfChange(cc: ConfChange): ProposeResult | null {
    if (this.raft === null) return null;
    const r = this.raft.proposeConfChange(cc);
    this.log(`confchange ${cc.type} ${cc.node}: ${r.ok ? `at ${r.index}/${r.term}` : r.reason}`);
    this.processReady();
    return r;
  }

  transferLeadership(to: NodeId): boolean {
    if (this.raft === null) return false;
    const ok = this.raft.transferLeadership(to);
    this.log(`transfer to ${to}: ${ok}`);
    this.processReady();
    return ok;
  }

  /** The membership in this node's log (what it acts on), or null when down. */
  currentMembership(): Membership | null {
    return this.raft === null ? null : this.raft.membership();
  }

  appliedMembership(): Membership {
    return this.membership;
  }

  stateDigest(): number {
    if (this.kv === null) throw new Error(`${this.id} is down`);
    return digestBytes(encodeState(this.kv.snapshot()));
  }

  /** One line of core state for liveness failure reports. */
  describeCore(): string {
    if (this.raft === null) return `${this.id}: down`;
    const s = this.raft.status();
    const base = `${this.id}: ${s.role} t${s.term} lead=${s.leader || '-'} commit=${s.commit} applied=${s.applied} ` +
      `log=[${s.firstIndex}..${s.lastIndex}] snap=${s.snapshotIndex} voters=${s.membership.voters.join(',')} ` +
      `learners=${s.membership.learners.join(',')} dropped=${JSON.stringify(s.dropped)}`;
    const prs = Object.entries(s.progress).map(([id, p]) => `${id}{m${p.match} n${p.next} ${p.state} if${p.inflight}${p.recentActive ? '' : ' inactive'}}`);
    return prs.length === 0 ? base : `${base} progress ${prs.join(' ')}`;
  }

  lastIndex(): number {
    return this.raft === null ? 0 : this.raft.status().lastIndex;
  }

  commitIndex(): number {
    return this.raft === null ? 0 : this.raft.status().commit;
  }

  request(req: NodeRequest): void {
    const raft = this.raft;
    const kv = this.kv;
    if (raft === null || kv === null) return; // lost with the node; the client times out
    const expiresAt = this.env.now() + this.env.requestTimeoutTicks;
    if (this.writing !== null) this.env.counters.requestsDuringWrite++;
    if (req.kind === 'write') {
      const r = raft.propose([req.data]);
      if (!r.ok) {
        this.env.answer(req.reqId, this.id, { kind: 'refused', leader: r.leader });
        return;
      }
      const prior = this.proposals.get(r.index);
      if (prior !== undefined) this.env.answer(prior.reqId, this.id, { kind: 'dropped' });
      this.proposals.set(r.index, { term: r.term, reqId: req.reqId, expiresAt });
    } else if (req.level === 'stale') {
      const rec = kv.get(req.key);
      this.env.answer(req.reqId, this.id, { kind: 'read', value: rec?.value ?? null, modRevision: rec?.modRevision ?? 0 });
      return;
    } else {
      // default: under a valid lease, no round trip; without one (as worker/peer does) fall
      // back to a ReadIndex round. consistent: always a ReadIndex round.
      const index = req.level === 'default' ? raft.leaseRead() : null;
      if (index !== null) {
        this.env.counters.leaseReads++;
        this.waitingReads.push({ reqId: req.reqId, key: req.key, expiresAt, index });
        this.serveReads();
      } else {
        const ctx = `r${req.reqId}`;
        if (!raft.readIndex(ctx)) {
          this.env.answer(req.reqId, this.id, { kind: 'refused', leader: this.leader });
          return;
        }
        this.readIndexRounds.set(ctx, { reqId: req.reqId, key: req.key, expiresAt, index: -1 });
      }
    }
    this.processReady();
  }

  /** Forget client requests nobody waits for any more (the client retried elsewhere). */
  expire(now: number): void {
    for (const [index, p] of this.proposals) if (p.expiresAt <= now) this.proposals.delete(index);
    for (const [ctx, r] of this.readIndexRounds) if (r.expiresAt <= now) this.readIndexRounds.delete(ctx);
    if (this.waitingReads.length > 0) this.waitingReads = this.waitingReads.filter((r) => r.expiresAt > now);
  }

  /** The host's compaction policy: snapshot applied state every `compactEveryEntries`. */
  maybeCompact(): void {
    const raft = this.raft;
    const kv = this.kv;
    if (raft === null || kv === null) return;
    // Not while a write is out: applied state may be ahead of the durable model until it lands.
    if (this.writing !== null) return;
    if (this.applied - this.store.snapshotIndex < this.env.compactEveryEntries) return;
    const term = this.store.termAt(this.applied);
    if (term === undefined) violation('host-compact', `${this.id} has no term for applied ${this.applied}`);
    const data = encodeState(kv.snapshot());
    this.store.compact({ meta: { index: this.applied, term, membership: copyMembership(this.membership) }, data });
    raft.compact(this.applied, data);
    this.env.invariants.onStateDigest(this.id, this.applied, digestBytes(data));
    this.env.counters.compactions++;
    this.log(`compact at ${this.applied}/${term}`);
  }

  /**
   * Carry out every pending Ready in the host mode's order, honouring an armed crash. On a slow
   * disk a Ready's write may stay outstanding for some ticks: then this returns at once (the core
   * keeps stepping and ticking) until the write is due, finishes it, and only then asks for the
   * next Ready.
   */
  processReady(): void {
    while (this.raft !== null) {
      if (this.writing !== null) {
        if (this.writing.doneAtTick > this.env.now()) return;
        const w = this.writing;
        this.writing = null;
        if (!this.finishReady(w)) return;
        continue;
      }
      if (!this.raft.hasReady()) return;
      const raft = this.raft;
      const rd = raft.ready();
      if (rd.softState !== undefined) {
        const { role, leader, term } = rd.softState;
        if (role !== this.role || leader !== this.leader) this.log(`${role} term=${term} leader=${leader || '-'}`);
        this.role = role;
        this.leader = leader;
        this.term = term;
        this.env.invariants.onRole(this.id, role, term);
      }
      if (this.crashPlan === 'before-persist') return this.crash('before persisting a ready');
      let afterPersist = rd.messages;
      let appliedEarly = false;
      if (this.env.host === 'overlap') {
        const early = this.beforePersist(rd, raft);
        if (early === null) return; // crashed at an overlap seam
        afterPersist = early.afterPersist;
        appliedEarly = early.appliedEarly;
      }
      // As peer.ts, a Ready with nothing to write (only messages, reads, committed entries to
      // apply after it) does not wait for the disk.
      const writes = rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined || appliedEarly;
      const delayTicks = this.disk === null || !writes ? 0 : this.disk.nextInt(this.env.diskDelayTicksMax + 1);
      const w: ReadyWrite = { rd, raft, afterPersist, appliedEarly, membership: raft.membership(), doneAtTick: this.env.now() + delayTicks };
      if (delayTicks > 0) {
        this.env.counters.slowWrites++;
        this.writing = w;
        if (this.env.tracing) this.log(`write out for ${delayTicks} ticks (${rd.entries.length} entries${rd.snapshot !== undefined ? ', snapshot' : ''})`);
        return;
      }
      if (!this.finishReady(w)) return;
    }
  }

  /** The write lands: persist, send the rest, apply, advance. False when an armed crash fired. */
  private finishReady(w: ReadyWrite): boolean {
    const { rd, raft, afterPersist, appliedEarly } = w;
    this.store.beginReadyWrite(rd.snapshot !== undefined);
    this.persist(rd, appliedEarly, w.membership);
    if (this.crashPlan === 'after-persist') {
      this.crash('after persisting, before sending');
      return false;
    }
    this.send(afterPersist);
    if (this.crashPlan === 'after-send') {
      this.crash('after sending, before applying');
      return false;
    }
    this.store.endReadyWrite();
    if (!appliedEarly) {
      const answers = this.apply(rd.committedEntries, this.store.hardState.commit);
      this.saveApplied();
      // Answer only what is durably applied.
      this.answerAll(answers);
    }
    if (this.env.host === 'strict') this.releaseReads(rd);
    this.serveReads();
    raft.advance(rd);
    return true;
  }

  /**
   * The overlap host's steps before the write (worker/peer/peer.ts handleReady 2a, 3a): send what
   * the core lets leave early, apply and answer committed entries that are already durable here
   * (their KV effects ride in this Ready's write), release read states. Null when an armed crash
   * fired at one of these seams.
   */
  private beforePersist(rd: Ready, raft: RawNode): { afterPersist: Message[]; appliedEarly: boolean } | null {
    const split = raft.splitMessages(rd);
    let early = split.beforePersist;
    let afterPersist = split.afterPersist;
    if (this.store.mode === 'ack-before-fsync') {
      // The broken host: a follower's acks go with the early batch, before its write.
      early = [...early, ...afterPersist.filter((m) => m.type === 'appendResp')];
      afterPersist = afterPersist.filter((m) => m.type !== 'appendResp');
    }
    if (early.length > 0) {
      this.send(early);
      this.env.counters.earlyMessages += early.length;
      // Fires where it matters: entries this node has not written went out (or, in the broken
      // mode, were acknowledged).
      const promised = early.some((m) => (m.type === 'append' && (m.entries?.length ?? 0) > 0) || m.type === 'appendResp');
      if (this.crashPlan === 'after-early-send' && rd.entries.length > 0 && promised) {
        this.env.counters.crashesAfterEarlySend++;
        this.crash(`after sending ${early.length} messages early, before persisting ${rd.entries.length} entries`);
        return null;
      }
    }
    const committed = rd.committedEntries;
    const last = committed[committed.length - 1];
    const appliedEarly = rd.snapshot === undefined && last !== undefined && last.index <= raft.persistedIndex();
    if (appliedEarly) {
      this.checkDurable(committed);
      this.log(`apply ${committed[0]!.index}..${last!.index} before the write (persisted ${raft.persistedIndex()})`);
      this.answerAll(this.apply(committed, rd.hardState?.commit ?? this.store.hardState.commit));
      this.env.counters.earlyApplies++;
    }
    this.releaseReads(rd);
    if (rd.snapshot === undefined) this.serveReads();
    if (appliedEarly && this.crashPlan === 'after-early-apply') {
      this.env.counters.crashesAfterEarlyApply++;
      this.crash(`after applying ${committed[0]!.index}..${last!.index} early, before persisting`);
      return null;
    }
    return { afterPersist, appliedEarly };
  }

  /** What persistedIndex() vouched for: every entry applied early is in this node's durable log. */
  private checkDurable(entries: Entry[]): void {
    const store = this.store;
    for (const e of entries) {
      if (e.index <= store.snapshotIndex) continue;
      const held = store.termAt(e.index);
      if (held !== e.term) {
        violation('apply-not-durable', `${this.id} applies ${e.index}/${e.term} before its write, durable log has ${held === undefined ? 'nothing' : `term ${held}`} there`);
      }
    }
  }

  private releaseReads(rd: Ready): void {
    for (const rs of rd.readStates) {
      const waiting = this.readIndexRounds.get(rs.ctx);
      if (waiting === undefined) continue;
      this.readIndexRounds.delete(rs.ctx);
      waiting.index = rs.index;
      this.waitingReads.push(waiting);
    }
  }

  /** Write the Ready (and, for an overlap host, the KV effects it applied before the write). */
  private persist(rd: Ready, appliedEarly: boolean, membership: Membership): void {
    const inv = this.env.invariants;
    const store = this.store;
    if (rd.snapshot !== undefined) {
      const snap = rd.snapshot;
      const state = decodeState(snap.data);
      store.installSnapshot(snap, state);
      this.kv = new KvStateMachine(DEFAULT_KV_LIMITS, decodeState(snap.data));
      this.applied = snap.meta.index;
      this.membership = copyMembership(snap.meta.membership);
      // Waiting proposals the snapshot jumped over have an unknown fate: let clients retry.
      for (const index of [...this.proposals.keys()]) if (index <= snap.meta.index) this.proposals.delete(index);
      inv.onApplied(this.id, this.applied, 'snapshot');
      inv.onSnapshotInstalled(this.id, snap.meta.index, snap.meta.term);
      inv.onStateDigest(this.id, snap.meta.index, digestBytes(snap.data));
      this.env.counters.snapshotsInstalled++;
      this.log(`install snapshot ${snap.meta.index}/${snap.meta.term}`);
    }
    if (rd.entries.length > 0) {
      store.appendEntries(rd.entries);
      inv.onPersistEntries(this.id, rd.entries, store);
    }
    if (rd.hardState !== undefined) {
      const hs = rd.hardState;
      const prior = store.hardState;
      if (hs.term < prior.term) violation('term-monotonic', `${this.id} term ${prior.term} -> ${hs.term}`);
      if (hs.commit < prior.commit) violation('commit-monotonic', `${this.id} commit ${prior.commit} -> ${hs.commit}`);
      if (hs.term === prior.term && prior.vote !== '' && hs.vote !== prior.vote) {
        violation('vote-once', `${this.id} changed its vote in term ${hs.term}: ${prior.vote} -> ${hs.vote}`);
      }
      store.saveHardState(hs);
    }
    if (appliedEarly) this.saveApplied();
    if (this.role === 'leader') {
      const now = membership;
      inv.onCommit(this.id, store.hardState.commit, store, this.lastMembership === null ? [now] : [this.lastMembership, now], this.env.stores);
      this.lastMembership = now;
      inv.onLeaderPersisted(this.id, this.term, store);
    } else {
      this.lastMembership = null;
      inv.onCommit(this.id, store.hardState.commit, store, null, this.env.stores);
    }
  }

  private send(messages: Message[]): void {
    if (messages.length === 0) return;
    for (const m of messages) {
      if (m.type === 'voteResp' && m.reject !== true) this.env.invariants.onVoteGranted(m.from, m.to, m.term);
    }
    this.env.network.send(messages, this.env.now());
    for (const m of messages) if (m.type === 'timeoutNow') this.env.onTimeoutNow(m.from, m.to);
  }

  /**
   * Apply committed entries in memory. `commit` is the commit index this Ready makes durable
   * (an overlap host applies before writing it). Returns the client answers, which the caller
   * sends once the effects are as durable as its host mode requires.
   */
  private apply(entries: Entry[], commit: number): Array<[reqId: number, answer: NodeAnswer]> {
    const answers: Array<[reqId: number, answer: NodeAnswer]> = [];
    if (entries.length === 0) return answers;
    const kv = this.kv!;
    const inv = this.env.invariants;
    for (const e of entries) {
      if (e.index !== this.applied + 1) {
        violation('apply-order', `${this.id} handed entry ${e.index} to apply after ${this.applied}`);
      }
      if (e.index > commit) {
        violation('apply-uncommitted', `${this.id} handed entry ${e.index} to apply, commit ${commit}`);
      }
      if (e.index <= this.lostAppliedUpTo) this.env.counters.reappliedEntries++;
      let result = 'noop';
      let kvResult: KvResult | null = null;
      if (e.type === 'conf') {
        const cc = decodeConfChange(e.data);
        if (cc === null) violation('conf-entry', `${this.id}: undecodable conf entry ${e.index}`);
        this.membership = applyConfChange(this.membership, cc);
        result = `conf ${cc.type} ${cc.node}`;
      } else if (e.data.length > 0) {
        const cmd = decodeCommand(e.data);
        kvResult = kv.apply(e.index, cmd);
        result = JSON.stringify(kvResult);
        if (cmd.stamp !== undefined) inv.onStampedApply(this.id, `${cmd.stamp.client}#${cmd.stamp.seq}`, e.index, kvResult);
      }
      this.applied = e.index;
      inv.onApply(this.id, e, result);
      const waiting = this.proposals.get(e.index);
      if (waiting !== undefined) {
        this.proposals.delete(e.index);
        const mine = waiting.term === e.term && kvResult !== null;
        answers.push([waiting.reqId, mine ? { kind: 'write', result: kvResult! } : { kind: 'dropped' }]);
      }
    }
    if (this.env.tracing) this.log(`applied ${entries[0]!.index}..${this.applied}`);
    return answers;
  }

  /** The KV effects and applied index in memory become durable (one write). */
  private saveApplied(): void {
    if (this.applied === this.store.applied) return;
    this.store.saveApplied(this.kv!.takeChanges(), this.applied, this.membership);
    this.env.invariants.onApplied(this.id, this.applied, 'apply');
  }

  private answerAll(answers: Array<[reqId: number, answer: NodeAnswer]>): void {
    for (const [reqId, answer] of answers) this.env.answer(reqId, this.id, answer);
  }

  private serveReads(): void {
    if (this.waitingReads.length === 0) return;
    const kv = this.kv!;
    const still: WaitingRead[] = [];
    for (const r of this.waitingReads) {
      if (r.index > this.applied) {
        still.push(r);
        continue;
      }
      const rec = kv.get(r.key);
      this.env.answer(r.reqId, this.id, { kind: 'read', value: rec?.value ?? null, modRevision: rec?.modRevision ?? 0 });
    }
    this.waitingReads = still;
  }

  private log(line: string): void {
    if (this.env.tracing) this.env.trace(`${this.id} ${line}`);
  }
}
