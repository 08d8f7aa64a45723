// Cluster membership: single-server changes and where each membership takes effect.
//
// Dissertation §4.1: a server uses the latest configuration in its log, committed or not; a
// change takes effect when its entry is appended and reverts if that entry is truncated. So the
// membership at any index is the last conf entry at or before it, else the snapshot's.

import { decodeConfChange } from './codec.ts';
import type { ConfChange, Entry, Membership, NodeId } from './types.ts';
import { ADDRESS_BYTES_MAX, validateNodeId } from './validate.ts';

export function emptyMembership(): Membership {
  return { voters: [], learners: [], addresses: {} };
}

export function cloneMembership(m: Membership): Membership {
  return { voters: m.voters.slice(), learners: m.learners.slice(), addresses: { ...m.addresses } };
}

export function isVoter(m: Membership, id: NodeId): boolean {
  return m.voters.includes(id);
}

export function isLearner(m: Membership, id: NodeId): boolean {
  return m.learners.includes(id);
}

export function isMember(m: Membership, id: NodeId): boolean {
  return isVoter(m, id) || isLearner(m, id);
}

/** Why the leader must refuse `cc` against membership `m`, or null when it is a valid change. */
export function confChangeProblem(m: Membership, cc: ConfChange): string | null {
  if (typeof cc !== 'object' || cc === null) return 'conf change must be an object';
  const bad = validateNodeId(cc.node);
  if (bad !== null) return bad;
  if (cc.address !== undefined && (typeof cc.address !== 'string' || cc.address.length > ADDRESS_BYTES_MAX)) {
    return 'address must be a short string';
  }
  switch (cc.type) {
    case 'addVoter':
      return isVoter(m, cc.node) ? 'already a voter' : null; // a learner is promoted
    case 'addLearner':
      if (isVoter(m, cc.node)) return 'a voter cannot become a learner';
      return isLearner(m, cc.node) ? 'already a learner' : null;
    case 'promoteLearner':
      return isLearner(m, cc.node) ? null : 'not a learner';
    case 'removeNode':
      if (!isMember(m, cc.node)) return 'not a member';
      if (isVoter(m, cc.node) && m.voters.length === 1) return 'cannot remove the last voter';
      return null;
    default:
      return 'unknown conf change type';
  }
}

/**
 * The membership after `cc`. Total and deterministic: every node applies the same log to the
 * same result; a change that is not valid against `m` leaves it unchanged.
 */
export function applyConfChange(m: Membership, cc: ConfChange): Membership {
  if (confChangeProblem(m, cc) !== null) return m;
  const next = cloneMembership(m);
  const withoutNode = (ids: NodeId[]): NodeId[] => ids.filter((id) => id !== cc.node);
  switch (cc.type) {
    case 'addVoter':
    case 'promoteLearner':
      next.learners = withoutNode(next.learners);
      next.voters.push(cc.node);
      break;
    case 'addLearner':
      next.learners.push(cc.node);
      break;
    case 'removeNode':
      next.voters = withoutNode(next.voters);
      next.learners = withoutNode(next.learners);
      delete next.addresses[cc.node];
      return next;
  }
  if (cc.address !== undefined) next.addresses[cc.node] = cc.address;
  return next;
}

interface Change {
  index: number;
  membership: Membership;
}

/** The membership at every index of the in-memory log: a base plus one step per conf entry. */
export class MembershipHistory {
  /** Membership as of the snapshot base. */
  private base: Membership;
  /** Conf entries in the log after the base, ascending by index. */
  private changes: Change[] = [];
  /** Bumped on every change of current(), so callers can cache derived state cheaply. */
  version = 0;

  constructor(base: Membership) {
    this.base = base;
  }

  current(): Membership {
    const n = this.changes.length;
    return n === 0 ? this.base : this.changes[n - 1]!.membership;
  }

  /** Index of the latest conf entry in the log, or 0 when there is none after the base. */
  latestChangeIndex(): number {
    const n = this.changes.length;
    return n === 0 ? 0 : this.changes[n - 1]!.index;
  }

  /** Whether `id` is a member of the current configuration or of one appended above `index`
   *  (the configurations after a host's applied index: those the cluster may still adopt). */
  namesSince(id: NodeId, index: number): boolean {
    if (isMember(this.current(), id)) return true;
    for (let i = this.changes.length - 2; i >= 0 && this.changes[i]!.index > index; i--) {
      if (isMember(this.changes[i]!.membership, id)) return true;
    }
    return false;
  }

  at(index: number): Membership {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const c = this.changes[i]!;
      if (c.index <= index) return c.membership;
    }
    return this.base;
  }

  /** Entries were appended to the log: conf entries take effect now. */
  onAppend(entries: Entry[], from = 0): void {
    for (let i = from; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type !== 'conf') continue;
      const cc = decodeConfChange(e.data);
      const next = cc === null ? this.current() : applyConfChange(this.current(), cc);
      this.changes.push({ index: e.index, membership: next });
      this.version++;
    }
  }

  /** The log lost `index` and everything after it: those changes revert. */
  truncateFrom(index: number): void {
    const before = this.changes.length;
    while (this.changes.length > 0 && this.changes[this.changes.length - 1]!.index >= index) this.changes.pop();
    if (this.changes.length !== before) this.version++;
  }

  /** The log was compacted up to `index`. */
  compact(index: number): void {
    this.base = this.at(index);
    this.changes = this.changes.filter((c) => c.index > index);
  }

  /** A snapshot replaced the whole log. */
  reset(base: Membership): void {
    this.base = base;
    this.changes = [];
    this.version++;
  }
}
