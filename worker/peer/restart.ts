// From what storage handed back to what the core needs at start, checking what must hold.

import type { HardState, Membership, NodeId, RestartState, Snapshot } from '../raft/types.ts';
import type { KvState } from '../kv/types.ts';
import { encodeState } from '../kv/codec.ts';
import type { LoadedState } from './ports.ts';
import { decodeConfChange } from '../raft/codec.ts';
import { applyConfChange, cloneMembership } from '../raft/membership.ts';

/**
 * A brand-new cluster starts from a snapshot at index 1, term 1 holding the initial membership
 * and an empty KV state — not at index 0. Every founding member holds that same snapshot, so
 * they agree on "entry 1"; a peer that joins later with an empty log is then necessarily sent
 * the snapshot (its log lacks index 1, which the leader no longer has) and so learns the
 * founding membership. Bootstrapping at index 0 would leave a joiner believing the founders
 * are not members (the index-0 base is assumed equal everywhere and never sent).
 * The snapshot's term is 1 (the core requires positive terms) while the hard state stays at
 * term 0: a fresh node then grants votes at once (it never heard a leader), and the first
 * leader, of term 1, may count the bootstrap entry as committed in its term — true of the
 * only thing ever committed before it.
 */
export const BOOTSTRAP_INDEX = 1;
export const BOOTSTRAP_TERM = 1;

const EMPTY_KV: KvState = { revision: 0, records: [], sessions: [] };

/**
 * What a restored cluster starts from (PeerOptions.initialState): the backup's KV state, and the
 * log index it reflected on the source. The bootstrap snapshot then stands at that index (at
 * least BOOTSTRAP_INDEX) instead of 1, so the new log continues past every index the state
 * remembers: client sessions' last indexes and lease ids (a lease's id is the index of the
 * entry that granted it, so a new grant never takes a restored lease's id). Every founder given
 * the same file holds the same snapshot, as with an empty bootstrap.
 */
export interface InitialState {
  kv: KvState;
  index: number;
}

export interface Bootstrap {
  snapshot: Snapshot;
  hardState: HardState;
  kv: KvState;
}

export interface StartPlan {
  restart: RestartState;
  /** For a brand-new peer with an initial membership: what to persist before anything else. */
  bootstrap: Bootstrap | null;
  /** Term of the entry at the applied index, the membership as of it, and the index that
   *  membership was set at (its conf change entry, or the snapshot). */
  appliedTerm: number;
  appliedMembership: Membership;
  appliedMembershipIndex: number;
}

/** A peer that never persisted anything: no term, no log, no snapshot, no membership. */
export function isFresh(loaded: LoadedState): boolean {
  const m = loaded.snapshot.meta.membership;
  return (
    loaded.hardState.term === 0 &&
    loaded.entries.length === 0 &&
    loaded.snapshot.meta.index === 0 &&
    m.voters.length === 0 &&
    m.learners.length === 0
  );
}

/**
 * Whether a peer starts an election as soon as it opens instead of waiting out an election
 * timeout, so the cluster answers its first request promptly: the first founder of a brand-new
 * cluster (the first voter of its initial membership, one peer only, so founders do not split
 * the vote), and a sole voter (nobody to wait for, e.g. a one-node cluster restarting). Pre-vote
 * keeps an early campaign harmless to a cluster that already has a leader.
 */
export function campaignsAtStart(id: NodeId, plan: StartPlan, membership: Membership): boolean {
  if (membership.voters.length === 1 && membership.voters[0] === id) return true;
  return plan.bootstrap !== null && plan.bootstrap.snapshot.meta.membership.voters[0] === id;
}

export function restartFrom(loaded: LoadedState, initialMembership: Membership, initialState?: InitialState): StartPlan {
  let snapshot = loaded.snapshot;
  let hardState = loaded.hardState;
  let applied = loaded.applied;
  let bootstrap: Bootstrap | null = null;
  if (isFresh(loaded) && initialMembership.voters.length + initialMembership.learners.length > 0) {
    const kv = initialState?.kv ?? EMPTY_KV;
    const index = Math.max(BOOTSTRAP_INDEX, initialState?.index ?? 0);
    snapshot = {
      meta: { index, term: BOOTSTRAP_TERM, membership: cloneMembership(initialMembership) },
      data: encodeState(kv),
    };
    hardState = { term: 0, vote: '', commit: index };
    applied = index;
    bootstrap = { snapshot, hardState, kv };
  }
  const base = snapshot.meta.index;
  const { entries } = loaded;
  // Storage must hand back a log that continues the snapshot without gaps, and an applied index
  // within what it holds; anything else is corruption the peer must not paper over.
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.index !== base + 1 + i) {
      throw new Error(`storage: log entry ${i} has index ${entry.index}, expected ${base + 1 + i}`);
    }
  }
  const lastIndex = base + entries.length;
  if (applied < base || applied > lastIndex) {
    throw new Error(`storage: applied index ${applied} outside [${base}, ${lastIndex}]`);
  }
  let appliedTerm = snapshot.meta.term;
  let appliedMembership = cloneMembership(snapshot.meta.membership);
  let appliedMembershipIndex = snapshot.meta.index;
  for (const entry of entries) {
    if (entry.index > applied) break;
    appliedTerm = entry.term;
    if (entry.type === 'conf') {
      const cc = decodeConfChange(entry.data);
      if (cc !== null) {
        appliedMembership = applyConfChange(appliedMembership, cc);
        appliedMembershipIndex = entry.index;
      }
    }
  }
  return {
    restart: { hardState, snapshot, entries, applied },
    bootstrap,
    appliedTerm,
    appliedMembership,
    appliedMembershipIndex,
  };
}
