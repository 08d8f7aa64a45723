// When a `removed` notice proves that a peer was removed (worker/peer/removal.ts): only when the
// peer's own applied configuration holds it and the notice names a committed configuration
// beyond its log. The simulator found the case of a node whose addition never committed.

import { describe, expect, it } from 'vitest';
import { noticeProvesRemoval, removalNotice } from '../../worker/peer/removal.ts';
import type { Membership, Message } from '../../worker/raft/types.ts';

const members = (voters: string[], learners: string[] = []): Membership => ({
  voters,
  learners,
  addresses: Object.fromEntries([...voters, ...learners].map((id) => [id, `sim://${id}`])),
});

const notice = (index: number): Message => ({ type: 'removed', from: 'n2', to: 'n6', term: 6, index });

describe('removal notices', () => {
  it('a member answers a sender outside both its configurations, naming its applied index', () => {
    expect(removalNotice('n2', 6, 'n6', () => members(['n2', 'n3', 'n4']), members(['n2', 'n3', 'n4']), 32)).toMatchObject({
      type: 'removed',
      to: 'n6',
      index: 32,
    });
    expect(removalNotice('n2', 6, 'n6', () => members(['n2', 'n3', 'n4', 'n6']), members(['n2', 'n3', 'n4']), 32)).toBeNull();
    expect(removalNotice('n2', 6, 'n6', () => members(['n2', 'n3', 'n4']), members(['n2', 'n3', 'n4'], ['n6']), 32)).toBeNull();
  });

  it('proves removal to a peer that applied a configuration holding itself, when the notice is beyond its log', () => {
    expect(noticeProvesRemoval('n6', notice(32), members(['n2', 'n3', 'n6']), 29)).toBe(true);
    expect(noticeProvesRemoval('n6', notice(29), members(['n2', 'n3', 'n6']), 29)).toBe(false);
    expect(noticeProvesRemoval('n6', notice(32), members(['n2', 'n3'], ['n6']), 29)).toBe(true);
  });

  it('does not fool a peer whose addition never committed (its log held an add that a new leader overwrote)', () => {
    // n6 applied up to a configuration without itself; the entry adding it (27) sits uncommitted
    // in its log, and the cluster committed 32 without it. It may still be added again.
    expect(noticeProvesRemoval('n6', notice(32), members(['n2', 'n3', 'n4', 'n5']), 29)).toBe(false);
  });
});
