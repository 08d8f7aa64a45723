// The Raft rules: terms, roles, elections (with PreVote and CheckQuorum) and the follower side
// of replication. The leader side lives in leader.ts. Everything is driven by tick() and
// step(); outputs accumulate in `msgs` and `readStates` until RawNode.ready() takes them.
//
// Quiescence (CockroachDB's raft quiescence): a leader with nothing in flight sends a last
// heartbeat marked `quiesce` (leader.ts quiesce) and stops ticking; a follower whose log ends at
// the commit index it carries stops too, without answering. A quiescent node's tick() moves no
// timer. Any stepped message, or wake() (a client, a due lease, a restart), ends it, and every
// woken node starts as if it had just heard from its leader: election timer and leader contact
// from zero, so it refuses disruptive (pre)votes for one election timeout and campaigns only
// after a full randomised timeout. A woken leader drops its read lease and heartbeats at once;
// a node woken by anything but a message sends `wake` to every voter (and again to its leader
// every heartbeat interval until it hears from one), so the group wakes together and a dead
// leader is replaced within one randomised election timeout of the wake (worker/README.md).

import { invariant } from './assert.ts';
import { validateConfig } from './config.ts';
import * as leader from './leader.ts';
import { RaftLog } from './log.ts';
import { cloneMembership, isMember, isVoter, MembershipHistory } from './membership.ts';
import { PeerProgress } from './progress.ts';
import { voteResult } from './quorum.ts';
import { ReadRounds } from './readonly.ts';
import { SnapshotReceiver } from './snapshot.ts';
import type { Message, MessageType, NodeId, RaftConfig, ReadState, RestartState, Role, Snapshot, SnapshotProvider } from './types.ts';
import { validateMembership, validateMessage } from './validate.ts';

const RESPONSES: ReadonlySet<MessageType> = new Set<MessageType>([
  'preVoteResp',
  'voteResp',
  'appendResp',
  'heartbeatResp',
  'snapshotResp',
]);

export class Raft {
  readonly id: NodeId;
  readonly cfg: RaftConfig;

  // Durable state (HardState) plus the log.
  term = 0;
  vote: NodeId = '';
  readonly log: RaftLog;
  readonly members: MembershipHistory;
  /** Latest snapshot (ours after compact(), or installed from a leader), to send to laggards. */
  latestSnapshot: Snapshot;

  role: Role = 'follower';
  lead: NodeId = '';

  /** Logical clock: ticks since this node started. Only differences are meaningful. */
  ticks = 0;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTicks = 0;
  /**
   * Ticks since we last heard from a leader of our term (a leader hears itself). While below
   * electionTicks, (pre)votes without `transfer` are refused: this is what makes leases safe.
   */
  ticksSinceLeaderContact: number;

  /** Cached from the current membership. */
  voters: readonly NodeId[] = [];
  selfVoter = false;
  private membersVersion = -1;

  // Candidate state.
  readonly votes = new Map<NodeId, boolean>();

  // Leader state.
  readonly progress = new Map<NodeId, PeerProgress>();
  reads = new ReadRounds();
  transferee: NodeId = '';
  /** A TimeoutNow went out this term: a transfer vote may elect someone else at any moment. */
  timeoutNowSent = false;

  // Follower state.
  readonly snapshotReceiver = new SnapshotReceiver();
  /** Set by a host that streams its snapshots (RawNode.setSnapshotProvider). */
  snapshotProvider: SnapshotProvider | null = null;
  /** Woken by something other than a message: send `wake` to the leader until it is heard. */
  awaitingLeader = false;

  /** Stopped ticking with the group (see the top of this file). */
  quiescent = false;

  // Outputs, taken by RawNode.ready().
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  readonly dropped: Record<string, number> = Object.create(null) as Record<string, number>;

  constructor(config: RaftConfig, restart: RestartState) {
    validateConfig(config);
    this.id = config.id;
    this.cfg = config;
    const { hardState: hs, snapshot, entries } = restart;
    const meta = snapshot.meta;
    const badMembers = validateMembership(meta.membership);
    if (badMembers !== null) throw new RangeError(`restart snapshot membership: ${badMembers}`);
    invariant(
      Number.isSafeInteger(hs.term) && hs.term >= 0 && Number.isSafeInteger(hs.commit) && typeof hs.vote === 'string',
      'restart hard state is well formed',
    );
    const applied = Math.max(restart.applied, meta.index);
    const commit = Math.max(hs.commit, applied);
    this.log = new RaftLog(meta.index, meta.term, entries, commit, applied);
    this.members = new MembershipHistory(cloneMembership(meta.membership));
    this.members.onAppend(entries);
    this.latestSnapshot = snapshot;
    // currentTerm is never below a term in the log (a host may bootstrap from a term-1 snapshot
    // with a term-0 hard state); the next Ready then persists the corrected term.
    this.term = Math.max(hs.term, this.log.lastTerm());
    this.vote = this.term === hs.term ? hs.vote : '';
    // A node that may have promised a leader its silence before a crash keeps that promise.
    this.ticksSinceLeaderContact = hs.term > 0 ? 0 : config.electionTicks;
    this.becomeFollower(this.term, '');
    this.syncMembership();
  }

  // ---- bookkeeping ----

  send(m: Message): void {
    this.msgs.push(m);
  }

  drop(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  /** Re-derive everything that depends on the current membership, if it changed. */
  syncMembership(): void {
    if (this.members.version === this.membersVersion) return;
    this.membersVersion = this.members.version;
    const m = this.members.current();
    this.voters = m.voters;
    this.selfVoter = isVoter(m, this.id);
    if (this.role === 'leader') leader.onMembershipChange(this);
  }

  /** May this node start an election? Only voters in their own view do. */
  promotable(): boolean {
    return this.selfVoter;
  }

  inLease(): boolean {
    return this.ticksSinceLeaderContact < this.cfg.electionTicks;
  }

  // ---- roles ----

  private reset(term: number): void {
    if (this.term !== term) {
      invariant(term > this.term, 'terms only grow');
      this.term = term;
      this.vote = '';
    }
    this.lead = '';
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTicks = this.cfg.electionTicks + this.cfg.random.nextInt(this.cfg.electionTicks);
    this.votes.clear();
    this.clearProgress();
    this.transferee = '';
    this.timeoutNowSent = false;
    this.awaitingLeader = false;
    invariant(!this.quiescent, 'a quiescent node changes no role before it wakes');
  }

  /** Forget every follower's progress, ending the snapshot transfers under way. */
  clearProgress(): void {
    for (const pr of this.progress.values()) pr.endSnapshot();
    this.progress.clear();
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
    if (lead !== '') this.ticksSinceLeaderContact = 0;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'a leader does not pre-campaign');
    // Term and vote stay: a pre-election must not disturb anyone.
    this.role = 'pre-candidate';
    this.lead = '';
    this.electionElapsed = 0;
    this.randomizedElectionTicks = this.cfg.electionTicks + this.cfg.random.nextInt(this.cfg.electionTicks);
    this.votes.clear();
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'a leader does not campaign');
    this.reset(this.term + 1);
    this.role = 'candidate';
    this.vote = this.id;
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    this.ticksSinceLeaderContact = 0;
    this.reads = new ReadRounds();
    leader.initProgress(this);
    // The no-op of the new term: committing it commits everything before it (§5.4.2) and
    // lets reads and conf changes proceed.
    leader.appendData(this, 'normal', [new Uint8Array(0)]);
  }

  // ---- ticks ----

  tick(): void {
    this.ticks++;
    if (this.quiescent) return; // the group sleeps: no timer runs (a host may tick for its own waits)
    if (this.role === 'leader') {
      leader.tick(this);
      return;
    }
    this.electionElapsed++;
    if (this.ticksSinceLeaderContact < Number.MAX_SAFE_INTEGER) this.ticksSinceLeaderContact++;
    if (this.awaitingLeader && this.lead !== '' && this.electionElapsed % this.cfg.heartbeatTicks === 0) {
      this.send({ type: 'wake', from: this.id, to: this.lead, term: this.term }); // the first may be lost
    }
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTicks) {
      this.electionElapsed = 0;
      this.campaign(false);
    }
  }

  // ---- quiescence ----

  /**
   * Wake from quiescence. `from`: the sender of the message that woke us, or '' when something
   * else did (a client, a due lease, a restart: then a follower that knows no leader tells the
   * voters even when it was awake, since its group may be asleep; see announce).
   */
  wake(from: NodeId): void {
    const local = from === '';
    if (this.quiescent) {
      this.quiescent = false;
      // As if the leader had just been heard: the promise behind its lease only grows, and no
      // timer that stood still while asleep fires at once (see the top of this file).
      this.electionElapsed = 0;
      this.heartbeatElapsed = 0;
      this.ticksSinceLeaderContact = 0;
      if (this.role === 'leader') return leader.onWake(this);
      if (local) return this.announce();
      // Woken by someone other than our leader (a woken peer, a candidate): wake the leader, so
      // its heartbeats keep us from granting a pre-vote against it when it is alive.
      if (from !== this.lead && this.lead !== '') {
        this.awaitingLeader = true;
        this.send({ type: 'wake', from: this.id, to: this.lead, term: this.term });
      }
    } else if (local && this.role === 'follower' && this.lead === '' && !this.awaitingLeader) {
      // Once per spell without a leader: every client request wakes its peer, and each would
      // otherwise send every voter a wake (a lost one is covered by our campaign, which wakes them).
      this.announce();
    }
  }

  /** Tell every other voter this node is awake (its group may be asleep), and keep telling the
   *  leader until it is heard from (tick). */
  announce(): void {
    if (this.role === 'leader') return;
    this.awaitingLeader = true;
    for (const to of this.voters) if (to !== this.id) this.send({ type: 'wake', from: this.id, to, term: this.term });
  }

  // ---- elections ----

  /** Start an election: a pre-vote first when enabled, unless a transfer asked us to. */
  campaign(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.cfg.preVote && !transfer) {
      this.becomePreCandidate();
      this.requestVotes('preVote', this.term + 1, false);
    } else {
      this.becomeCandidate();
      this.requestVotes('vote', this.term, transfer);
    }
  }

  private requestVotes(type: 'preVote' | 'vote', term: number, transfer: boolean): void {
    this.votes.set(this.id, true);
    if (this.tallyVotes()) return; // a single voter wins at once
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const to of this.voters) {
      if (to === this.id) continue;
      const m: Message = { type, from: this.id, to, term, index, logTerm };
      if (transfer) m.transfer = true;
      this.send(m);
    }
  }

  /** Act on the votes so far. True when the election is decided. */
  private tallyVotes(): boolean {
    const result = voteResult(this.voters, this.votes);
    if (result === 'pending') return false;
    if (result === 'lost') {
      this.becomeFollower(this.term, '');
    } else if (this.role === 'pre-candidate') {
      this.becomeCandidate();
      this.requestVotes('vote', this.term, false);
    } else {
      this.becomeLeader();
    }
    return true;
  }

  private handleVoteRequest(m: Message): void {
    const canVote = this.vote === m.from || (this.vote === '' && this.lead === '') || (m.type === 'preVote' && m.term > this.term);
    const respType = m.type === 'preVote' ? 'preVoteResp' : 'voteResp';
    if (canVote && this.log.isUpToDate(m.index!, m.logTerm!)) {
      // A grant carries the candidate's term; a pre-vote grant changes nothing here.
      this.send({ type: respType, from: this.id, to: m.from, term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  // ---- step ----

  step(m: Message): void {
    const bad = validateMessage(m);
    if (bad !== null) return this.drop('malformed');
    if (m.to !== this.id) return this.drop('wrong-recipient');
    if (m.from === this.id) return this.drop('from-self');
    if (m.type === 'removed') return this.drop('not-raft'); // the peer's to handle, not the core's
    // Requests may come from nodes we do not know yet (a leader that is adding us, a voter
    // our log has not heard of); answers only come from members we asked.
    if (RESPONSES.has(m.type) && !isMember(this.members.current(), m.from)) return this.drop('unknown-sender');
    if (this.quiescent && this.role === 'leader' && leader.answersNothingNew(this, m)) return this.drop('quiescent-stale');
    this.wake(m.from);

    if (m.term > this.term) {
      if ((m.type === 'vote' || m.type === 'preVote') && m.transfer !== true && this.cfg.checkQuorum && this.inLease()) {
        // We heard from a leader within an election timeout: this candidate is disruptive
        // (e.g. rejoining after a partition). Ignore it without adopting its term.
        return this.drop('vote-in-lease');
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && m.reject !== true)) {
        // A pre-vote's term is hypothetical: never adopt it.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, '');
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // A stale leader (e.g. back from a partition) learns our term from this and steps
        // down; otherwise it could keep its followers' pre-votes from ever succeeding.
        this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.term, index: m.index ?? 0, hintIndex: 0 });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return this.drop('stale-term');
    }

    if (m.type === 'preVote' || m.type === 'vote') return this.handleVoteRequest(m);

    switch (this.role) {
      case 'leader':
        return leader.step(this, m);
      case 'pre-candidate':
      case 'candidate':
        return this.stepCandidate(m);
      case 'follower':
        return this.stepFollower(m);
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader of our term exists: we lost.
        this.becomeFollower(m.term, m.from);
        return this.stepFollower(m);
      case 'preVoteResp':
      case 'voteResp': {
        const expected = this.role === 'pre-candidate' ? 'preVoteResp' : 'voteResp';
        if (m.type !== expected) return this.drop('stale-response');
        // A pre-vote grant names the term we proposed; anything else is from an older round.
        if (m.type === 'preVoteResp' && m.reject !== true && m.term !== this.term + 1) return this.drop('stale-response');
        if (!isVoter(this.members.current(), m.from)) return this.drop('unknown-sender');
        this.votes.set(m.from, m.reject !== true);
        this.tallyVotes();
        return;
      }
      default:
        return this.drop('unexpected-message');
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.electionElapsed = 0;
        this.ticksSinceLeaderContact = 0;
        this.lead = m.from;
        this.awaitingLeader = false;
        if (m.type === 'append') return this.handleAppend(m);
        if (m.type === 'heartbeat') return this.handleHeartbeat(m);
        return this.handleSnapshotChunk(m);
      case 'timeoutNow':
        // The leader hands over: campaign now, skipping the pre-vote and the lease check.
        if (!this.promotable()) return this.drop('not-promotable');
        return this.campaign(true);
      case 'wake':
        return; // stepping it woke us; the leader's heartbeat follows
      default:
        return this.drop('unexpected-message');
    }
  }

  // ---- follower side of replication ----

  private handleAppend(m: Message): void {
    const prevIndex = m.index!;
    const entries = m.entries!;
    const log = this.log;
    if (prevIndex < log.committed) {
      // Already have (and committed) what this append starts from: tell the leader how far.
      this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.term, index: prevIndex, hintIndex: log.committed });
      return;
    }
    if (log.term(prevIndex) !== m.logTerm) {
      // Fast backtracking: point the leader at the last index that could still match.
      const hint = log.findConflictByTerm(Math.min(prevIndex, log.lastIndex()), m.logTerm!);
      this.send({
        type: 'appendResp',
        from: this.id,
        to: m.from,
        term: this.term,
        index: prevIndex,
        reject: true,
        hintIndex: hint.index,
        hintTerm: hint.term,
      });
      return;
    }
    const conflict = log.findConflict(entries);
    if (conflict !== 0) {
      // prevIndex >= commit (checked above), so a conflict can only be past the commit.
      invariant(conflict > log.committed, 'a conflicting entry is never committed');
      const from = conflict - prevIndex - 1;
      log.truncateFrom(conflict);
      this.members.truncateFrom(conflict);
      for (let i = from; i < entries.length; i++) log.entries.push(entries[i]!);
      this.members.onAppend(entries, from);
      this.syncMembership();
    }
    const lastNew = prevIndex + entries.length;
    log.commitTo(Math.min(m.commit!, lastNew));
    this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.term, index: prevIndex, hintIndex: lastNew });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(our match, its commit), so this never exceeds what we hold.
    this.log.commitTo(Math.min(m.commit!, this.log.lastIndex()));
    if (m.quiesce === true && this.mayQuiesce(m)) {
      // No answer: an answer would wake the leader. It learns nothing it needs from one. A
      // partial snapshot transfer is stale (the leader replicates to us by appends).
      this.quiescent = true;
      this.snapshotReceiver.clear();
      return;
    }
    const resp: Message = { type: 'heartbeatResp', from: this.id, to: m.from, term: this.term };
    // Refusing to quiesce: `reject` wakes a quiescent leader (a plain answer does not, see
    // leader.ts answersNothingNew), which then keeps the group awake until we caught up.
    if (m.quiesce === true) resp.reject = true;
    if (m.context !== undefined) resp.context = m.context;
    this.send(resp);
  }

  /**
   * Whether a follower agrees with the leader's quiesce heartbeat: it takes part, and its log
   * ends at the commit index the leader sent (the leader sends min(match, commit) and quiesces
   * only with every match at its last index, so a follower that holds less, or more of an older
   * term, is not caught up). Otherwise it answers as to any
   * heartbeat, which wakes the leader, and the group stays awake until it catches up.
   */
  private mayQuiesce(m: Message): boolean {
    const log = this.log;
    return this.cfg.quiesce && this.role === 'follower' && log.lastIndex() === m.commit && log.committed === m.commit;
  }

  private handleSnapshotChunk(m: Message): void {
    const chunk = m.snapshot!;
    const log = this.log;
    if (chunk.meta.index <= log.committed) {
      // Nothing to install: report how far we are so the leader resumes with appends.
      this.snapshotReceiver.clear();
      this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.term, index: log.committed, hintIndex: log.committed });
      return;
    }
    const outcome = this.snapshotReceiver.accept(chunk, m.from, m.term);
    if (outcome.kind !== 'complete') {
      const resp: Message = {
        type: 'snapshotResp',
        from: this.id,
        to: m.from,
        term: this.term,
        index: chunk.meta.index,
        hintIndex: outcome.bytes,
      };
      if (outcome.kind === 'reject') resp.reject = true;
      this.send(resp);
      return;
    }
    this.restore(outcome.snapshot);
    // Only up to the commit index do we know our log matches the leader's.
    this.send({ type: 'appendResp', from: this.id, to: m.from, term: this.term, index: log.committed, hintIndex: log.committed });
  }

  /** Install a snapshot from the leader (its index is above our commit). */
  private restore(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    if (this.log.term(index) === term) {
      // Our log already holds the snapshot's last entry, hence (log matching) everything
      // before it: just commit up to it and keep the entries after it.
      this.log.commitTo(index);
      return;
    }
    this.log.restore(snapshot);
    this.members.reset(cloneMembership(snapshot.meta.membership));
    this.latestSnapshot = snapshot;
    this.syncMembership();
  }

  // ---- host operations ----

  /** The host snapshotted its applied state at `index`. */
  compact(index: number, data: Uint8Array): void {
    if (!Number.isSafeInteger(index) || index > this.log.applied) {
      throw new RangeError(`compact(${index}): index must be at most the applied index ${this.log.applied}`);
    }
    if (!(data instanceof Uint8Array)) throw new TypeError('compact: data must be a Uint8Array');
    if (index <= this.log.snapshotIndex) return; // already covered by the latest snapshot
    const membership = cloneMembership(this.members.at(index));
    const term = this.log.term(index)!;
    this.latestSnapshot = { meta: { index, term, membership }, data };
    this.log.compact(index);
    this.members.compact(index);
  }
}
