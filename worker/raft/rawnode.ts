// The host-facing API: inputs in, Ready batches out (the contract is on `Ready` in types.ts).
//
// One Ready is in flight at a time: after ready() the host persists, sends, applies and then
// calls advance(ready). Inputs that arrive meanwhile (step, tick, propose…) accumulate and come
// out in the next Ready, so hasReady() is false until advance().

import { invariant } from './assert.ts';
import * as leader from './leader.ts';
import { ENTRY_OVERHEAD_BYTES } from './log.ts';
import { cloneMembership } from './membership.ts';
import { Raft } from './raft.ts';
import type {
  ConfChange,
  HardState,
  Membership,
  Message,
  NodeId,
  ProposeResult,
  RaftConfig,
  Ready,
  RestartState,
  SnapshotProvider,
  SoftState,
  Status,
  Progress,
} from './types.ts';

/** Committed entries handed out per Ready, in appendBytesMax units (bounds the host's apply batch). */
const READY_COMMITTED_APPENDS_MAX = 8;

export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** The hard state as of the last advance(): what the host has made durable. */
  private durableHard: HardState;
  private inFlight: Ready | null = null;

  constructor(config: RaftConfig, restart: RestartState) {
    this.raft = new Raft(config, restart);
    this.prevSoft = this.softState();
    // Compare against what the host persisted, so a term or commit the core corrected at
    // restart is written back by the first Ready.
    this.prevHard = { ...restart.hardState };
    this.durableHard = { ...restart.hardState };
  }

  tick(): void {
    this.raft.tick();
  }

  /** Never throws on peer input: malformed, misaddressed or stale messages are dropped and counted. */
  step(msg: Message): void {
    this.raft.step(msg);
  }

  /** Append `datas` as consecutive normal entries (leader only); the result names the first. */
  propose(datas: Uint8Array[]): ProposeResult {
    this.raft.wake(''); // a client needs the group: a quiescent leader wakes first
    return leader.propose(this.raft, datas);
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    this.raft.wake(''); // a client needs the group: a quiescent leader wakes first
    return leader.proposeConfChange(this.raft, cc);
  }

  /**
   * Queue a linearizable read; released later as ready().readStates {ctx, index}. Reads still
   * queued when this node stops leading are dropped: a host fails them when softState shows
   * the role or term changed.
   */
  readIndex(ctx: string): boolean {
    this.raft.wake(''); // a client needs the group: a quiescent leader wakes first
    return leader.readIndex(this.raft, ctx);
  }

  /** The commit index to wait for before serving a lease read, or null without a valid lease. */
  leaseRead(): number | null {
    return leader.leaseRead(this.raft);
  }

  transferLeadership(to: NodeId): boolean {
    this.raft.wake(''); // a client needs the group: a quiescent leader wakes first
    return leader.transferLeadership(this.raft, to);
  }

  campaign(): void {
    if (this.raft.quiescent) this.raft.wake(this.raft.id); // its (pre)votes wake the others
    this.raft.campaign(false);
  }

  /** Why this node may not quiesce its group now (leader.ts quiesceProblem), or null. */
  quiesceProblem(): string | null {
    return leader.quiesceProblem(this.raft);
  }

  /** Leader, nothing in flight (quiesceProblem() null): send the quiesce heartbeat and stop. */
  quiesce(): void {
    leader.quiesce(this.raft);
  }

  /**
   * Something other than a Raft message needs this node (a client, a due lease, a restart): a
   * quiescent node wakes, and a follower that knows no leader or was asleep tells the voters
   * (raft.ts, quiescence). Messages wake a node by themselves (step).
   */
  wake(): void {
    this.raft.wake('');
  }

  /** Stopped ticking with its group until a message or wake(). */
  isQuiescent(): boolean {
    return this.raft.quiescent;
  }

  compact(index: number, data: Uint8Array): void {
    this.raft.compact(index, data);
  }

  /** Send followers snapshots the host streams of its applied state (types.ts SnapshotProvider)
   *  instead of the latest compaction's bytes, which such a host leaves empty. */
  setSnapshotProvider(provider: SnapshotProvider): void {
    this.raft.snapshotProvider = provider;
  }

  /** A snapshot transfer to this node is under way (some chunks in, not complete nor dropped). */
  receivingSnapshot(): boolean {
    return this.raft.snapshotReceiver.active;
  }

  /** Hand a snapshot being received to the host a chunk at a time (Ready.snapshotParts); the
   *  Ready that installs it carries a `staged` snapshot without data. */
  stageSnapshots(): void {
    this.raft.snapshotReceiver.staging = true;
  }

  hasReady(): boolean {
    if (this.inFlight !== null) return false;
    const r = this.raft;
    const log = r.log;
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.snapshotReceiver.parts.length > 0 ||
      log.unstableFrom <= log.lastIndex() ||
      log.pendingSnapshot !== null ||
      log.hasNextCommitted() ||
      !sameSoft(this.prevSoft, r) ||
      !sameHard(this.prevHard, r)
    );
  }

  ready(): Ready {
    invariant(this.inFlight === null, 'ready() called again before advance() of the previous Ready');
    const r = this.raft;
    const log = r.log;
    const rd: Ready = {
      entries: log.unstableEntries(),
      messages: r.msgs,
      committedEntries: log.nextCommitted(READY_COMMITTED_APPENDS_MAX * r.cfg.appendBytesMax + ENTRY_OVERHEAD_BYTES),
      readStates: r.readStates,
    };
    r.msgs = [];
    r.readStates = [];
    r.reads.markSent();
    if (!sameSoft(this.prevSoft, r)) {
      rd.softState = this.softState();
      this.prevSoft = rd.softState;
    }
    if (!sameHard(this.prevHard, r)) {
      rd.hardState = this.hardState();
      this.prevHard = rd.hardState;
    }
    if (r.snapshotReceiver.parts.length > 0) rd.snapshotParts = r.snapshotReceiver.takeParts();
    if (log.pendingSnapshot !== null) {
      rd.snapshot = log.pendingSnapshot;
      log.pendingSnapshot = null;
    }
    log.unstableFrom = log.lastIndex() + 1;
    this.inFlight = rd;
    return rd;
  }

  advance(rd: Ready): void {
    invariant(this.inFlight === rd, 'advance() must be given the Ready returned by the last ready()');
    this.inFlight = null;
    const log = this.raft.log;
    if (rd.hardState !== undefined) this.durableHard = rd.hardState;
    if (rd.snapshot !== undefined) log.stableTo(rd.snapshot.meta.index, rd.snapshot.meta.term);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) log.stableTo(lastEntry.index, lastEntry.term);
    if (rd.snapshot !== undefined) log.applied = Math.max(log.applied, rd.snapshot.meta.index);
    const n = rd.committedEntries.length;
    if (n > 0) {
      const last = rd.committedEntries[n - 1]!.index;
      invariant(last <= log.committed, 'applied entries were committed');
      log.applied = Math.max(log.applied, last);
    }
  }

  /**
   * Highest log index made durable by the Ready batches advanced so far. Committed entries at
   * or below it may be applied before the current Ready's write completes (see Ready).
   */
  persistedIndex(): number {
    return this.raft.log.persisted;
  }

  committedIndex(): number {
    return this.raft.log.committed;
  }

  /** Index of the last entry in this node's log. */
  lastIndex(): number {
    return this.raft.log.lastIndex();
  }

  /** On a leader: the highest index known replicated on member `id` (the leader's own last
   *  index for itself). Null on a follower, or for a node the leader does not track. */
  matchIndex(id: NodeId): number | null {
    const r = this.raft;
    if (r.role !== 'leader') return null;
    if (id === r.id) return r.log.lastIndex();
    return r.progress.get(id)?.match ?? null;
  }

  /**
   * The messages of `rd` (the Ready in flight) that may leave BEFORE its write is durable, and
   * the rest. Raft thesis §10.2.1: a leader may write its log in parallel with replicating it,
   * because its own entries count towards a commit only through the Readies after this one (a
   * Ready is produced only after advance(), i.e. after the host persisted the previous one),
   * so nothing committed is ever visible before the leader holds it. What may go early:
   * appends and heartbeats of a term that is already durable, in a Ready that changes neither
   * term nor vote and installs no snapshot. Responses, votes and everything else wait.
   * A host that ignores this and sends all of `rd.messages` after the write stays correct.
   */
  splitMessages(rd: Ready): { beforePersist: Message[]; afterPersist: Message[] } {
    invariant(this.inFlight === rd, 'splitMessages() takes the Ready in flight');
    const durable = this.durableHard;
    const hs = rd.hardState;
    const changesVote = hs !== undefined && (hs.term !== durable.term || hs.vote !== durable.vote);
    if (rd.snapshot !== undefined || changesVote) return { beforePersist: [], afterPersist: rd.messages };
    const beforePersist: Message[] = [];
    const afterPersist: Message[] = [];
    for (const m of rd.messages) {
      const early = (m.type === 'append' || m.type === 'heartbeat') && m.term === durable.term;
      (early ? beforePersist : afterPersist).push(m);
    }
    return { beforePersist, afterPersist };
  }

  status(): Status {
    const r = this.raft;
    const progress: Record<NodeId, Progress> = {};
    if (r.role === 'leader') {
      for (const [id, pr] of r.progress) progress[id] = pr.status(r.ticks, r.cfg.electionTicks);
      const last = r.log.lastIndex();
      progress[r.id] = { match: last, next: last + 1, inflight: 0, state: 'replicate', learner: !r.selfVoter, recentActive: true };
    }
    return {
      id: r.id,
      role: r.role,
      term: r.term,
      vote: r.vote,
      leader: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      snapshotIndex: r.log.snapshotIndex,
      membership: cloneMembership(r.members.current()),
      progress,
      transferee: r.transferee,
      dropped: { ...r.dropped },
      quiescent: r.quiescent,
    };
  }

  membership(): Membership {
    return cloneMembership(this.raft.members.current());
  }

  /** Whether `id` is a voter or learner of the latest configuration in this node's log, or of
   *  one appended above `index` (no copy: hosts ask this per inbound message). */
  namesMember(id: NodeId, index: number): boolean {
    return this.raft.members.namesSince(id, index);
  }

  /** Who this node follows in its current term ('' when nobody; its own id while it leads). */
  leader(): NodeId {
    return this.raft.lead;
  }

  /**
   * Whether this node heard from a leader of its term within an election timeout (a leader
   * hears itself; a restarted node keeps the promise it may have made before its crash). While
   * it does, CheckQuorum has it refuse disruptive (pre)votes, and the peer refuses a leader it
   * does not know (worker/peer/senders.ts).
   */
  inLease(): boolean {
    return this.raft.inLease();
  }

  private softState(): SoftState {
    return { role: this.raft.role, leader: this.raft.lead, term: this.raft.term };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }
}

function sameSoft(s: SoftState, r: Raft): boolean {
  return s.role === r.role && s.leader === r.lead && s.term === r.term;
}

function sameHard(h: HardState, r: Raft): boolean {
  return h.term === r.term && h.vote === r.vote && h.commit === r.log.committed;
}
