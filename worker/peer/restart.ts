// From what storage handed back to what the core needs at start, checking what must hold.

import type { Membership, RestartState, Snapshot } from '../raft/types.ts';
import type { LoadedState } from './ports.ts';
import { decodeConfChange } from '../raft/codec.ts';
import { applyConfChange, cloneMembership } from '../raft/membership.ts';

export interface StartPlan {
  restart: RestartState;
  /** For a brand-new peer with an initial membership: the index-0 snapshot to persist first. */
  bootstrap: Snapshot | null;
  /** Term of the entry at the applied index, and the membership as of it. */
  appliedTerm: number;
  appliedMembership: Membership;
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

export function restartFrom(loaded: LoadedState, initialMembership: Membership): StartPlan {
  let snapshot = loaded.snapshot;
  let bootstrap: Snapshot | null = null;
  if (isFresh(loaded) && initialMembership.voters.length + initialMembership.learners.length > 0) {
    snapshot = { meta: { index: 0, term: 0, membership: cloneMembership(initialMembership) }, data: new Uint8Array(0) };
    bootstrap = snapshot;
  }
  const base = snapshot.meta.index;
  const { entries, applied } = loaded;
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
  for (const entry of entries) {
    if (entry.index > applied) break;
    appliedTerm = entry.term;
    if (entry.type === 'conf') {
      const cc = decodeConfChange(entry.data);
      if (cc !== null) appliedMembership = applyConfChange(appliedMembership, cc);
    }
  }
  return {
    restart: { hardState: loaded.hardState, snapshot, entries, applied },
    bootstrap,
    appliedTerm,
    appliedMembership,
  };
}
