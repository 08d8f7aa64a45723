// The typed failures a Peer answers client operations with. The router maps each code to an
// HTTP status (worker/api/errors.ts); nothing here knows about HTTP.

import type { NodeId } from '../raft/types.ts';

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
  /** A malformed command or argument. */
  | 'invalid'
  /** Membership change names a node that is not a member (remove, promote). */
  | 'member-not-found'
  /** Membership change conflicts with the current membership (join an existing member,
   *  promote a voter, remove the last voter…). */
  | 'member-conflict'
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

  constructor(code: PeerErrorCode, message: string, leader: NodeId = '', leaderAddress = '') {
    super(message);
    this.name = 'PeerError';
    this.code = code;
    this.leader = leader;
    this.leaderAddress = leaderAddress;
  }
}

export function isPeerError(err: unknown): err is PeerError {
  return err instanceof PeerError;
}
