// What a peer reports about itself: the status report (GET /status), health (GET /health) and
// when it last heard from the leader (stale-read headers, health).

import type { NodeId } from '../raft/types.ts';
import type { KvStateMachine } from '../kv/state-machine.ts';
import type { RaftCore } from './core.ts';
import type { PeerLimits } from './options.ts';
import type { CacheStatus, Health, MemberStatus, PeerStatus } from './outcomes.ts';
import type { TierCounts } from '../kv/record-store.ts';
import type { NonMemberCounts } from './senders.ts';

/** When this peer last heard from a leader, in its ticks and in clock time. */
export class LeaderContact {
  private tick: number | null = null;
  private atMs: number | null = null;

  heard(tick: number, atMs: number): void {
    this.tick = tick;
    this.atMs = atMs;
  }

  /** Ticks since the last contact (Infinity when never). */
  ticksSince(tick: number): number {
    return this.tick === null ? Infinity : tick - this.tick;
  }

  /** Milliseconds since the last contact: 0 on the leader itself, null when never. */
  msSince(nowMs: number, isLeader: boolean): number | null {
    if (isLeader) return 0;
    if (this.atMs === null) return null;
    return Math.max(0, nowMs - this.atMs);
  }
}

/** The parts of a peer its status report is made of. */
export interface StatusParts {
  id: NodeId;
  core: RaftCore;
  kv: KvStateMachine;
  applied: number;
  limits: PeerLimits;
  pendingProposals: number;
  pendingReads: number;
  lastLeaderContactMs: number | null;
  failure: Error | null;
  removed: string | null;
  tickMs: number;
  tickStalls: number;
  nonMemberMessages: NonMemberCounts;
  snapshotStreams: PeerStatus['snapshotStreams'];
}

export function peerStatus(p: StatusParts): Omit<PeerStatus, 'watchers' | 'quiescent' | 'quiescedAtMs' | 'wakes'> {
  const s = p.core.status();
  const m = s.membership;
  const member = (id: NodeId, voter: boolean): MemberStatus => ({
    id,
    address: m.addresses[id] ?? '',
    voter,
    match: s.progress[id]?.match ?? null,
  });
  return {
    id: p.id,
    role: s.role,
    term: s.term,
    leader: s.leader,
    leaderAddress: s.leader === '' ? '' : (m.addresses[s.leader] ?? ''),
    commit: s.commit,
    applied: p.applied,
    lastIndex: s.lastIndex,
    firstIndex: s.firstIndex,
    snapshotIndex: s.snapshotIndex,
    revision: p.kv.revision,
    compactRevision: p.kv.compactedRevision,
    keys: p.kv.size,
    leases: p.kv.leases.size,
    stateBytes: p.kv.stateBytes,
    stateBytesMax: p.limits.stateBytesMax,
    cache: cacheStatus(p.kv.store.tierCounts()),
    snapshotStreams: p.snapshotStreams,
    members: [...m.voters.map((id) => member(id, true)), ...m.learners.map((id) => member(id, false))],
    pendingProposals: p.pendingProposals,
    pendingReads: p.pendingReads,
    lastLeaderContactMs: p.lastLeaderContactMs,
    failure: p.failure === null ? null : p.failure.message,
    tickMs: p.tickMs,
    tickStalls: p.tickStalls,
    removed: p.removed,
    dropped: { ...s.dropped },
    nonMemberMessages: { ...p.nonMemberMessages },
  };
}

/** The parts of a peer its health is judged from. */
export interface HealthParts {
  failure: Error | null;
  /** Why this peer is no longer a member, or null. */
  removed: string | null;
  closing: boolean;
  leader: NodeId;
  isLeader: boolean;
  /** Ticks since the leader was last heard from. */
  ticksSinceLeader: number;
  electionTicks: number;
  applied: number;
  commit: number;
}

/** Healthy = serving, a leader is known and heard from within an election timeout, and
 *  everything this peer knows committed is applied. */
export function peerHealth(p: HealthParts): Health {
  if (p.failure !== null) return { ok: false, reason: `storage failure: ${p.failure.message}` };
  if (p.removed !== null) return { ok: false, reason: p.removed };
  if (p.closing) return { ok: false, reason: 'closing' };
  if (p.leader === '') return { ok: false, reason: 'no leader' };
  if (!p.isLeader && p.ticksSinceLeader > p.electionTicks) {
    return { ok: false, reason: 'leader not heard from within an election timeout' };
  }
  if (p.applied < p.commit) return { ok: false, reason: `applying: ${p.applied} of ${p.commit}` };
  return { ok: true, reason: '' };
}

function cacheStatus(c: TierCounts | null): CacheStatus | null {
  if (c === null) return null;
  const reads = c.hits + c.misses;
  return {
    capacityBytes: c.capacityBytes,
    bytes: c.bytes,
    entries: c.entries,
    hits: c.hits,
    misses: c.misses,
    missesOffLoop: c.missesOffLoop,
    hitRate: reads === 0 ? null : c.hits / reads,
    evictions: c.evictions,
    pending: c.pending,
  };
}
