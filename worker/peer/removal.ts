// How a peer learns it is no longer a member, and what it keeps of that.
//
// A removed node often never sees its own removal: the leader stops replicating to it as soon
// as the change is in its log, so the node keeps believing it is a voter and campaigns forever.
// So a member that hears from a node outside its applied (committed) configuration tells it so:
// a `removed` notice naming that configuration's index. The node accepts the notice only when
// that index is beyond its own log and its own applied (committed) configuration holds it: two
// committed configurations, the later one without it, mean a removal of it committed between
// them. A node added to a cluster whose member lags is never fooled: its own log already holds
// the configuration that added it, at or beyond any index the lagging member can name. Nor is a
// node whose addition never committed (the entry adding it was overwritten after a leader
// change): it has applied no configuration with itself in it, and may still be added again.
// A peer that applies its own removal knows without being told.
//
// Either way the peer records the removal in its storage metadata, so a restart on the same
// storage comes back removed instead of campaigning again.

import type { Membership, Message, NodeId } from '../raft/types.ts';
import { isMember } from '../raft/membership.ts';

/** The storage metadata key a removed peer records (worker/peer/ports.ts SaveBatch.meta). */
export const REMOVED_META_KEY = 'removed';

/** Why a peer counts itself removed: told by a member, or it applied its own removal. */
export interface Removal {
  /** Index of the configuration that leaves this peer out. */
  index: number;
  /** The member that told it ('' when it applied the change itself). */
  toldBy: NodeId;
}

export function encodeRemoval(r: Removal): string {
  return JSON.stringify(r);
}

/** The recorded removal, or null when there is none or it is unreadable (then a notice or the
 *  replayed log says it again). */
export function decodeRemoval(text: string | undefined): Removal | null {
  if (text === undefined) return null;
  try {
    const r = JSON.parse(text) as Partial<Removal>;
    if (typeof r.index === 'number' && typeof r.toldBy === 'string') return { index: r.index, toldBy: r.toldBy };
  } catch {
    // fall through
  }
  return null;
}

/** What a member (`self`, applied configuration `applied` at `appliedIndex`, latest
 *  configuration from `latest()`) answers a message from `from`: a notice when `from` is in
 *  neither, else null. Runs for every inbound batch, so the latest configuration (a copy) is
 *  only asked for a sender outside the applied one. */
export function removalNotice(
  self: NodeId,
  term: number,
  from: NodeId,
  latest: () => Membership,
  applied: Membership,
  appliedIndex: number,
): Message | null {
  if (!isMember(applied, self) || appliedIndex === 0) return null; // not a member itself
  if (isMember(applied, from) || isMember(latest(), from)) return null;
  return { type: 'removed', from: self, to: from, term, index: appliedIndex };
}

/** Whether notice `m` proves that `self` (applied configuration `applied`, last log index
 *  `lastIndex`) was removed. */
export function noticeProvesRemoval(self: NodeId, m: Message, applied: Membership, lastIndex: number): boolean {
  return m.type === 'removed' && m.index !== undefined && isMember(applied, self) && m.index > lastIndex;
}
