// The typed failures a Peer answers client operations with. The router maps each code to an
// HTTP status (worker/api/errors.ts); nothing here knows about HTTP.

import type { NodeId, ProposeRefusal } from '../raft/types.ts';

export type PeerErrorCode =
  /** This peer is not the leader; `leader`/`leaderAddress` say who is. */
  | 'not-leader'
  /** No leader is known (election in progress, no quorum). Retry later. */
  | 'no-leader'
  /** The leader cannot take this now (transfer in progress, first entry of its term not yet
   *  committed, another membership change pending). Retry later. */
  | 'busy'
  /** Leadership was lost while the request waited: a write's outcome is unknown (it may still
   *  commit). Retry with the same X-Metcd-Client/X-Metcd-Seq to get exactly-once. */
  | 'leadership-lost'
  /** No answer within the request timeout (the outcome of a write is unknown). */
  | 'timeout'
  /** A waiting room (pending proposals or reads, uncommitted entries) is full. */
  | 'too-many-pending'
  /** Over a size limit (key, value, pairs, command bytes, entry bytes). */
  | 'too-large'
  /** The state is at its size quota: writes that add data are refused until deletes free
   *  space (deletes and membership changes still go through). */
  | 'no-space'
  /** A malformed command or argument. */
  | 'invalid'
  /** Membership change names a node that is not a member (remove, promote). */
  | 'member-not-found'
  /** Membership change conflicts with the current membership (join an existing member,
   *  promote a voter, remove the last voter…). */
  | 'member-conflict'
  /** Promote refused: the learner is not within limits.promoteLagEntriesMax entries of the
   *  leader's log yet (details: learnerMatch, leaderLastIndex). Retry once it has caught up. */
  | 'learner-behind'
  /** This peer was removed from the cluster: it no longer campaigns or serves. */
  | 'removed'
  /** The peer is closing or closed. */
  | 'closed'
  /** The peer stopped after a storage failure; it serves nothing until restarted. */
  | 'failed';

export class PeerError extends Error {
  readonly code: PeerErrorCode;
  /** Known leader ('' when none), for not-leader / no-leader. */
  readonly leader: NodeId;
  /** The leader's membership address ('' when unknown). */
  readonly leaderAddress: string;
  /** Numbers a client may act on (learner-behind: learnerMatch, leaderLastIndex). */
  readonly details: Readonly<Record<string, number>>;

  constructor(code: PeerErrorCode, message: string, leader: NodeId = '', leaderAddress = '', details: Record<string, number> = {}) {
    super(message);
    this.name = 'PeerError';
    this.code = code;
    this.leader = leader;
    this.leaderAddress = leaderAddress;
    this.details = details;
  }
}

/** `cluster`: the cluster's name, or '' when the host gave none. */
export function removedError(self: NodeId, cluster: string): PeerError {
  const from = cluster === '' ? 'the cluster' : `cluster ${cluster}`;
  return new PeerError('removed', `${self} was removed from ${from}; it serves nothing (send requests to a member)`);
}

export function learnerBehindError(id: NodeId, learnerMatch: number, leaderLastIndex: number, lagEntriesMax: number): PeerError {
  return new PeerError(
    'learner-behind',
    `${id} has replicated up to index ${learnerMatch} of the leader's ${leaderLastIndex}; promote it once it is within ${lagEntriesMax} entries`,
    '',
    '',
    { learnerMatch, leaderLastIndex },
  );
}

export function notLeaderError(self: NodeId, leader: NodeId, leaderAddress: string): PeerError {
  if (leader === '' || leader === self) return new PeerError('no-leader', 'no leader is known right now; retry shortly');
  return new PeerError('not-leader', `${self} is not the leader; ${leader} is`, leader, leaderAddress);
}

/** Why the core refused a proposal, as a client-facing error (not-leader: see notLeaderError). */
export function refusalError(reason: Exclude<ProposeRefusal, 'not-leader'>): PeerError {
  switch (reason) {
    case 'transferring':
      return new PeerError('busy', 'leadership transfer in progress; retry shortly');
    case 'no-commit-in-term':
      return new PeerError('busy', 'new leader has not committed its first entry yet; retry shortly');
    case 'conf-change-pending':
      return new PeerError('busy', 'another membership change is in progress; retry shortly');
    case 'too-many-uncommitted':
      return new PeerError('too-many-pending', 'too many uncommitted entries at the leader');
    case 'entry-too-large':
      return new PeerError('too-large', 'entry exceeds the size limit');
    case 'conf-change-invalid':
      return new PeerError('member-conflict', 'membership change does not fit the current membership');
  }
}

export function lostError(): PeerError {
  return new PeerError(
    'leadership-lost',
    'leadership changed before the command applied; its outcome is unknown (retry with the same client/seq)',
  );
}

export function timeoutError(what: 'write' | 'read', timeoutMs: number): PeerError {
  return what === 'write'
    ? new PeerError('timeout', `not applied within ${timeoutMs} ms; the write may still commit (retry with the same client/seq)`)
    : new PeerError('timeout', `read not served within ${timeoutMs} ms`);
}
