// The meta-only snapshot schedule of a tiered peer (worker/peer/snapshot-job.ts): due as often
// as a full snapshot, but compacting to the point taken when the previous one was due, so the
// log keeps an interval for followers a little behind.

import { describe, expect, it } from 'vitest';
import { SnapshotJob, type AppliedState } from '../../worker/peer/snapshot-job.ts';
import { DEFAULT_PEER_LIMITS } from '../../worker/peer/options.ts';
import { KvStateMachine } from '../../worker/kv/state-machine.ts';
import type { Membership } from '../../worker/raft/types.ts';

const limits = { ...DEFAULT_PEER_LIMITS, requestTimeoutTicks: 50, snapshotEveryEntries: 10, snapshotEveryBytes: 1000 };
const clock = { nowMs: () => 0 };
const membership = (voters: string[]): Membership => ({ voters, learners: [], addresses: {} });

function at(applied: number, snapshotIndex: number, term = 1, voters = ['a']): AppliedState {
  return { kv: new KvStateMachine(), applied, appliedTerm: term, appliedMembership: membership(voters), snapshotIndex };
}

describe('SnapshotJob, meta only', () => {
  it('compacts to the previous due point, with the term and membership applied there', () => {
    const job = new SnapshotJob(limits, clock, true);
    expect(job.step(at(5, 0), false)).toBeNull(); // not due
    expect(job.step(at(10, 0, 2, ['a', 'b']), false), 'the first due point only marks').toBeNull();
    expect(job.step(at(15, 0, 3), false), 'counted from the mark, not the snapshot').toBeNull();
    const snap = job.step(at(20, 0, 3, ['a', 'b', 'c']), false);
    expect(snap).toEqual({ meta: { index: 10, term: 2, membership: membership(['a', 'b']) }, data: new Uint8Array(0) });
    expect(job.active).toBe(false); // nothing encoded, nothing held
    const next = job.step(at(30, 10, 4), false);
    expect(next?.meta).toEqual({ index: 20, term: 3, membership: membership(['a', 'b', 'c']) });
  });

  it('is due by bytes too, and forgets its mark when a snapshot from the leader replaces the state', () => {
    const job = new SnapshotJob(limits, clock, true);
    job.noteApplied(1000);
    expect(job.step(at(3, 0), false)).toBeNull(); // marks 3
    job.noteInstalled(); // the state at 3 is gone: a compaction to it would be below the install
    job.noteApplied(1000);
    expect(job.step(at(50, 40), false), 'a new mark, not a compaction to the old one').toBeNull();
    job.noteApplied(1000);
    expect(job.step(at(52, 40), false)?.meta.index).toBe(50);
  });

  it('never compacts to a mark at or below the latest snapshot', () => {
    const job = new SnapshotJob(limits, clock, true);
    expect(job.step(at(10, 0), false)).toBeNull(); // marks 10
    expect(job.step(at(20, 12), false), 'a snapshot at 12 already covers the mark').toBeNull();
    expect(job.step(at(30, 12), false)?.meta.index).toBe(20);
  });
});
