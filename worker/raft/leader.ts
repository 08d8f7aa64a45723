// The leader side: proposals, replication (batching, pipelining, fast backtracking,
// snapshots), commitment, CheckQuorum, leadership transfer and reads.

import { invariant } from './assert.ts';
import { encodeConfChange } from './codec.ts';
import { cloneMembership, confChangeProblem, isVoter } from './membership.ts';
import { PeerProgress } from './progress.ts';
import { majorityValue, quorumActive } from './quorum.ts';
import type { Raft } from './raft.ts';
import { chunkAt } from './snapshot.ts';
import type { ConfChange, Entry, EntryType, Message, NodeId, ProposeResult, Snapshot } from './types.ts';

// ---- progress ----

export function initProgress(r: Raft): void {
  r.clearProgress();
  onMembershipChange(r);
}

/** Track exactly the current members (except ourselves). */
export function onMembershipChange(r: Raft): void {
  const m = r.members.current();
  const next = r.log.lastIndex() + 1;
  const keep = new Set<NodeId>();
  for (const [ids, learner] of [
    [m.voters, false],
    [m.learners, true],
  ] as const) {
    for (const id of ids) {
      if (id === r.id) continue;
      keep.add(id);
      const pr = r.progress.get(id);
      if (pr === undefined) r.progress.set(id, new PeerProgress(next, r.cfg.inflightAppendsMax, learner, r.ticks));
      else pr.learner = learner;
    }
  }
  for (const [id, pr] of [...r.progress]) {
    if (keep.has(id)) continue;
    pr.endSnapshot();
    r.progress.delete(id);
  }
  if (r.transferee !== '' && !isVoter(m, r.transferee)) r.transferee = '';
  // A smaller quorum may already hold more entries.
  if (maybeCommit(r)) {
    afterCommit(r);
    if (r.role === 'leader') bcastAppend(r);
  }
}

// ---- ticks ----

export function tick(r: Raft): void {
  r.ticksSinceLeaderContact = 0; // a leader hears from itself
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.cfg.checkQuorum && !quorumRecentlyActive(r)) {
    // CheckQuorum: no majority answered within an election timeout, so a new leader may
    // exist already. Step down rather than keep refusing votes and accepting proposals.
    r.becomeFollower(r.term, '');
    return;
  }
  if (r.transferee !== '' && r.electionElapsed >= r.cfg.electionTicks) {
    r.transferee = ''; // the target did not take over within an election timeout: abort
  }
  if (r.heartbeatElapsed >= r.cfg.heartbeatTicks) bcastHeartbeat(r);
  // Resend a snapshot chunk that got no answer within an election timeout (lost or slow).
  // A stalled transfer of a snapshot older than our latest moves to the latest, from offset 0;
  // a streamed one (made for this transfer, of the state applied when it began) is resent.
  for (const [id, pr] of r.progress) {
    if (pr.state !== 'snapshot' || r.ticks - pr.snapshotSentTick < r.cfg.electionTicks) continue;
    if (pr.snapshot!.stream === undefined && pr.snapshot !== r.latestSnapshot) pr.becomeSnapshot(r.latestSnapshot, r.ticks);
    sendSnapshotChunk(r, id, pr);
  }
}

function quorumRecentlyActive(r: Raft): boolean {
  return quorumActive(r.voters, (id) => {
    if (id === r.id) return true;
    const pr = r.progress.get(id);
    return pr !== undefined && r.ticks - pr.lastContactTick < r.cfg.electionTicks;
  });
}

// ---- quiescence (the rules are at the top of raft.ts) ----

/** Why this leader may not quiesce now, or null when it may: nothing is in flight anywhere it
 *  can see. The peer adds what only it knows (waiting clients, leases, snapshots). */
export function quiesceProblem(r: Raft): string | null {
  if (r.role !== 'leader') return 'not-leader';
  if (r.quiescent) return 'quiescent';
  if (!r.cfg.quiesce) return 'disabled';
  if (r.transferee !== '') return 'transfer';
  if (r.reads.hasWaiting() || r.reads.readsInFlight()) return 'reads';
  const log = r.log;
  const last = log.lastIndex();
  if (log.committed !== last) return 'uncommitted';
  if (log.persisted !== last || log.pendingSnapshot !== null) return 'unpersisted';
  if (log.applied !== last) return 'unapplied';
  for (const pr of r.progress.values()) {
    if (pr.match === last && pr.state === 'replicate') continue;
    // A follower silent for an election timeout (down, or cut off) is not waited for: it would
    // keep the group awake, and billed, for as long as it is gone. When it is back its first
    // message (a pre-vote, a wake) wakes whoever gets it, and the leader catches it up then.
    if (r.cfg.checkQuorum && r.ticks - pr.lastContactTick >= r.cfg.electionTicks) continue;
    // A voter or learner we hear from that holds less, or is being probed or sent a snapshot.
    return 'follower-behind';
  }
  // Asleep, a leader checks no quorum (CheckQuorum needs ticks): it sleeps only while a majority
  // of voters, itself included, holds everything and was heard from within an election timeout.
  const caughtUp = (id: NodeId) => {
    if (id === r.id) return true;
    const pr = r.progress.get(id);
    return pr !== undefined && pr.match === last && r.ticks - pr.lastContactTick < r.cfg.electionTicks;
  };
  if (!quorumActive(r.voters, caughtUp)) return 'no-quorum';
  return null;
}

/** The last heartbeat before the group sleeps: it carries the commit index every follower must
 *  end at, and goes only to the followers that hold our last entry (so it is min(match, commit)
 *  for each, as every heartbeat's commit must be: a follower told of a commit beyond what it
 *  matched could commit a stale suffix of its own). A silent follower left behind gets nothing. */
export function quiesce(r: Raft): void {
  invariant(quiesceProblem(r) === null, 'a leader quiesces only with nothing in flight');
  const last = r.log.lastIndex();
  for (const [to, pr] of r.progress) {
    if (to === r.id || pr.match !== last) continue;
    r.send({ type: 'heartbeat', from: r.id, to, term: r.term, commit: r.log.committed, quiesce: true });
  }
  r.heartbeatElapsed = 0;
  r.quiescent = true;
}

/**
 * Whether a message to a quiescent leader is only a late answer to what it sent before it slept
 * (an acknowledgement of a heartbeat, a duplicate acknowledgement of entries a follower already
 * holds): dropped without waking, or every quiesce would be undone by the answers to the last
 * heartbeat round still on the wire. A follower that refused the quiesce heartbeat says so
 * (`reject`), and that wakes it.
 */
export function answersNothingNew(r: Raft, m: Message): boolean {
  if (m.term !== r.term || m.reject === true) return false;
  if (m.type === 'heartbeatResp') return true;
  if (m.type !== 'appendResp') return false;
  const pr = r.progress.get(m.from);
  return pr !== undefined && m.hintIndex !== undefined && m.hintIndex <= pr.match;
}

/** Woken: the lease is gone (our ticks stood still while the followers' may not have), every
 *  follower gets a fresh CheckQuorum window, and a heartbeat round wakes them and renews both. */
export function onWake(r: Raft): void {
  for (const pr of r.progress.values()) pr.lastContactTick = r.ticks;
  r.reads.dropLease();
  bcastHeartbeat(r);
}

// ---- proposals ----

function refuse(r: Raft, reason: Extract<ProposeResult, { ok: false }>['reason']): ProposeResult {
  return { ok: false, reason, leader: r.lead };
}

export function propose(r: Raft, datas: Uint8Array[]): ProposeResult {
  if (!Array.isArray(datas) || datas.length === 0) throw new RangeError('propose needs at least one command');
  if (r.role !== 'leader') return refuse(r, 'not-leader');
  if (r.transferee !== '') return refuse(r, 'transferring');
  for (const d of datas) {
    if (!(d instanceof Uint8Array)) throw new TypeError('propose: every command must be a Uint8Array');
    if (d.length > r.cfg.appendBytesMax) return refuse(r, 'entry-too-large');
  }
  if (r.log.lastIndex() - r.log.committed + datas.length > r.cfg.uncommittedEntriesMax) return refuse(r, 'too-many-uncommitted');
  const index = appendData(r, 'normal', datas);
  return { ok: true, index, term: r.term };
}

export function proposeConfChange(r: Raft, cc: ConfChange): ProposeResult {
  if (r.role !== 'leader') return refuse(r, 'not-leader');
  if (r.transferee !== '') return refuse(r, 'transferring');
  // One change at a time: the previous one must be committed first.
  if (r.members.latestChangeIndex() > r.log.committed) return refuse(r, 'conf-change-pending');
  // The single-server-change fix: a new leader commits an entry of its term before changing
  // membership, so a change from an older term that it never saw cannot be combined with its own.
  if (r.log.term(r.log.committed) !== r.term) return refuse(r, 'no-commit-in-term');
  if (confChangeProblem(r.members.current(), cc) !== null) return refuse(r, 'conf-change-invalid');
  if (r.log.lastIndex() - r.log.committed + 1 > r.cfg.uncommittedEntriesMax) return refuse(r, 'too-many-uncommitted');
  const index = appendData(r, 'conf', [encodeConfChange(cc)]);
  return { ok: true, index, term: r.term };
}

/** Append commands of our term; returns the first one's index. */
export function appendData(r: Raft, type: EntryType, datas: Uint8Array[]): number {
  const first = r.log.lastIndex() + 1;
  const entries: Entry[] = new Array(datas.length);
  for (let i = 0; i < datas.length; i++) entries[i] = { term: r.term, index: first + i, type, data: datas[i]! };
  r.log.append(entries);
  if (type === 'conf') {
    r.members.onAppend(entries);
    r.syncMembership(); // the change takes effect now, before it commits
    if (r.role !== 'leader') return first;
  }
  // Our own match follows lastIndex; alone in the quorum, that commits.
  if (maybeCommit(r)) afterCommit(r);
  if (r.role === 'leader') bcastAppend(r);
  return first;
}

// ---- replication ----

/** Send `to` the next batch of entries (or a snapshot). False when nothing was sent. */
export function sendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.progress.get(to);
  if (pr === undefined || pr.isPaused()) return false;
  const log = r.log;
  const prevIndex = pr.next - 1;
  invariant(prevIndex <= log.lastIndex(), 'progress.next is at most lastIndex + 1');
  const prevTerm = log.term(prevIndex);
  if (prevTerm === undefined) {
    // What it needs next was compacted away: only a snapshot can catch it up.
    invariant(r.latestSnapshot.meta.index === log.snapshotIndex, 'the latest snapshot is the log base');
    const snapshot = snapshotToSend(r);
    if (snapshot === null) return false; // the host cannot stream one now: a later heartbeat retries
    pr.becomeSnapshot(snapshot, r.ticks);
    sendSnapshotChunk(r, to, pr);
    return true;
  }
  const entries = pr.next <= log.lastIndex() ? log.slice(pr.next, log.lastIndex(), r.cfg.appendBytesMax) : [];
  if (entries.length === 0 && !sendIfEmpty) return false;
  r.send({
    type: 'append',
    from: r.id,
    to,
    term: r.term,
    index: prevIndex,
    logTerm: prevTerm,
    entries,
    commit: log.committed,
  });
  pr.sentEntries(prevIndex + entries.length, entries.length);
  return true;
}

/** The snapshot a new transfer sends: one the host streams of its applied state, or the latest. */
function snapshotToSend(r: Raft): Snapshot | null {
  if (r.snapshotProvider === null) return r.latestSnapshot;
  const opened = r.snapshotProvider.open();
  if (opened === null) return null;
  const { index, stream } = opened;
  const log = r.log;
  invariant(index >= log.snapshotIndex && index <= log.committed, 'a streamed snapshot is of committed state the log still knows');
  const membership = cloneMembership(r.members.at(index));
  return { meta: { index, term: log.term(index)!, membership }, data: new Uint8Array(0), stream };
}

function sendSnapshotChunk(r: Raft, to: NodeId, pr: PeerProgress): void {
  let snap = pr.snapshot!;
  if (snap.stream === undefined) pr.snapshotOffset = Math.min(pr.snapshotOffset, snap.data.length);
  pr.snapshotSentTick = r.ticks;
  let chunk = chunkAt(snap, pr.snapshotOffset, r.cfg.snapshotChunkBytes);
  if (chunk === null) {
    // The stream cannot go where the follower is (it starts over, or the host closed the
    // stream): a new transfer, of the state applied now.
    const fresh = snapshotToSend(r);
    if (fresh === null) {
      // The host cannot stream one now: probing finds the need again later (the snapshot
      // ends first: it was not installed, so probing must not resume after it).
      pr.endSnapshot();
      pr.becomeProbe();
      return;
    }
    pr.becomeSnapshot(fresh, r.ticks);
    snap = fresh;
    chunk = chunkAt(snap, 0, r.cfg.snapshotChunkBytes);
    invariant(chunk !== null, 'a new snapshot stream serves offset 0');
  }
  r.send({ type: 'snapshot', from: r.id, to, term: r.term, snapshot: chunk });
}

export function bcastAppend(r: Raft): void {
  for (const id of r.progress.keys()) sendAppend(r, id, true);
}

/** Also starts a read round: its number rides in `context` (see readonly.ts). */
export function bcastHeartbeat(r: Raft): void {
  r.heartbeatElapsed = 0;
  const ctx = r.reads.startRound(r.ticks, r.cfg.electionTicks);
  for (const [to, pr] of r.progress) {
    r.send({ type: 'heartbeat', from: r.id, to, term: r.term, commit: Math.min(pr.match, r.log.committed), context: ctx });
  }
  // We acknowledge our own round; alone in the quorum, that confirms it.
  releaseReads(r, r.reads.onAck(r.id, Number(ctx), r.voters, r.id));
}

/** Commit the largest index a majority of voters holds, if it is from our term (§5.4.2). */
export function maybeCommit(r: Raft): boolean {
  const log = r.log;
  const mci = majorityValue(r.voters, (id) => (id === r.id ? log.lastIndex() : (r.progress.get(id)?.match ?? 0)));
  if (mci <= log.committed || log.term(mci) !== r.term) return false;
  log.commitTo(mci);
  return true;
}

function afterCommit(r: Raft): void {
  // Removed (or demoted) by a change that is now committed: hand over by stepping down.
  if (!r.selfVoter && r.members.latestChangeIndex() <= r.log.committed) r.becomeFollower(r.term, '');
}

// ---- responses ----

export function step(r: Raft, m: Message): void {
  switch (m.type) {
    case 'appendResp':
    case 'heartbeatResp':
    case 'snapshotResp': {
      const pr = r.progress.get(m.from);
      if (pr === undefined) return r.drop('unknown-sender');
      pr.lastContactTick = r.ticks;
      if (m.type === 'appendResp') return handleAppendResp(r, m, pr);
      if (m.type === 'heartbeatResp') return handleHeartbeatResp(r, m, pr);
      return handleSnapshotResp(r, m, pr);
    }
    case 'append':
    case 'heartbeat':
    case 'snapshot':
      return r.drop('second-leader-in-term'); // impossible with correct peers
    case 'wake':
      return; // stepping it woke us; our heartbeats reach the sender every heartbeat interval
    default:
      return r.drop('unexpected-message');
  }
}

function handleAppendResp(r: Raft, m: Message, pr: PeerProgress): void {
  const log = r.log;
  const id = m.from;
  if (m.index! > log.lastIndex() || m.hintIndex! > log.lastIndex()) return r.drop('index-out-of-range');
  if (m.reject === true) {
    // Fast backtracking: skip every index whose term cannot match the follower's hint.
    let probe = m.hintIndex!;
    if (m.hintTerm !== undefined && m.hintTerm > 0) probe = log.findConflictByTerm(m.hintIndex!, m.hintTerm).index;
    if (!pr.maybeDecrTo(m.index!, probe)) return r.drop('stale-response');
    if (pr.state === 'replicate') pr.becomeProbe();
    sendAppend(r, id, true);
    return;
  }
  const wasPaused = pr.isPaused();
  const progressed = pr.maybeUpdate(m.hintIndex!) || (pr.match === m.hintIndex && pr.state === 'probe');
  if (!progressed) return;
  if (pr.state === 'probe') {
    pr.becomeReplicate();
  } else if (pr.state === 'snapshot' && (pr.match + 1 >= log.firstIndex() || pr.match >= pr.snapshot!.meta.index)) {
    // The snapshot is in. If we compacted past it meanwhile, probing finds that out and
    // starts a transfer of the latest snapshot (sendAppend below); else replicate entries.
    pr.becomeProbe();
    if (pr.match + 1 >= log.firstIndex()) pr.becomeReplicate();
  } else if (pr.state === 'replicate') {
    pr.inflights.freeLE(pr.match);
  }
  if (maybeCommit(r)) {
    afterCommit(r);
    if (r.role !== 'leader') return;
    bcastAppend(r); // tell everyone the new commit index
  } else if (wasPaused) {
    // It may have missed commit updates while paused: send at least the commit index.
    sendAppend(r, id, true);
  }
  // Freed window space (or a switch to replicate) may let several batches go at once.
  while (sendAppend(r, id, false)) {
    /* keep filling the pipeline */
  }
  if (id === r.transferee && pr.match === log.lastIndex()) sendTimeoutNow(r, id);
}

function handleHeartbeatResp(r: Raft, m: Message, pr: PeerProgress): void {
  pr.probeSent = false;
  // All appends in flight may be lost: make room for one so the follower can tell us.
  if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
  if (pr.match < r.log.lastIndex()) sendAppend(r, m.from, true);
  const seq = r.reads.parseContext(m.context);
  if (seq === null) return;
  releaseReads(r, r.reads.onAck(m.from, seq, r.voters, r.id));
}

function releaseReads(r: Raft, released: ReturnType<Raft['reads']['onAck']>): void {
  if (released.length === 0) return;
  for (const rs of released) r.readStates.push(rs);
  // Reads that arrived while that round was out ride the next one, now.
  if (r.reads.hasWaiting() && !r.reads.readsInFlight()) bcastHeartbeat(r);
}

function handleSnapshotResp(r: Raft, m: Message, pr: PeerProgress): void {
  if (pr.state !== 'snapshot' || pr.snapshot!.meta.index !== m.index) return r.drop('stale-response');
  if (m.reject !== true && m.hintIndex! <= pr.snapshotOffset) return; // duplicate acknowledgement
  // The follower says where it stands: continue from there (0 = start over, e.g. it restarted).
  pr.snapshotOffset = m.hintIndex!;
  sendSnapshotChunk(r, m.from, pr);
}

// ---- leadership transfer ----

export function transferLeadership(r: Raft, to: NodeId): boolean {
  if (r.role !== 'leader' || to === r.id) return false;
  const pr = r.progress.get(to);
  if (pr === undefined || !isVoter(r.members.current(), to)) return false;
  if (r.transferee === to) return true;
  r.transferee = to;
  r.electionElapsed = 0; // the abort timer
  if (pr.match === r.log.lastIndex()) sendTimeoutNow(r, to);
  else sendAppend(r, to, true);
  return true;
}

function sendTimeoutNow(r: Raft, to: NodeId): void {
  // From here on the target may win a vote that bypasses followers' lease promises, so no
  // lease read may be served for the rest of this term (see leaseRead).
  r.timeoutNowSent = true;
  r.send({ type: 'timeoutNow', from: r.id, to, term: r.term });
}

// ---- reads ----

function committedInTerm(r: Raft): boolean {
  return r.log.term(r.log.committed) === r.term;
}

export function readIndex(r: Raft, ctx: string): boolean {
  if (typeof ctx !== 'string') throw new TypeError('readIndex: ctx must be a string');
  if (r.role !== 'leader' || !committedInTerm(r)) return false;
  const queued = r.reads.queue(ctx, r.log.committed);
  if (queued === 'full') return false;
  if (queued === 'waiting' && !r.reads.readsInFlight()) bcastHeartbeat(r);
  return true;
}

export function leaseRead(r: Raft): number | null {
  if (r.role !== 'leader' || !r.cfg.checkQuorum || r.transferee !== '' || r.timeoutNowSent || !committedInTerm(r)) return null;
  if (!r.selfVoter) return null;
  if (r.voters.length === 1) return r.log.committed;
  const expiresTick = r.reads.leaseStartTick + r.cfg.electionTicks - r.cfg.leaseDriftTicks;
  return r.ticks < expiresTick ? r.log.committed : null;
}
