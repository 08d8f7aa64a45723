// The persist-before-speak checker itself, against an in-memory stand-in for the peer's SQLite
// tables: it must flag a message that is ahead of storage (so a zero count in the workerd tests
// means something) and accept one that is backed by it.

import { describe, expect, it } from 'vitest';
import { PersistCheck } from '../../worker/edge/persist-check.ts';
import type { SqlLike, SqlValue } from '../../worker/edge/sql.ts';
import type { Message } from '../../worker/raft/types.ts';

/** Answers the three queries PersistCheck makes from plain fields. */
function fakeSql(state: { term: number; vote: string; lastLogIndex: number | null; snapshotIndex: number | null }): SqlLike {
  return {
    exec(query: string, ..._bindings: SqlValue[]) {
      let rows: Record<string, SqlValue>[] = [];
      if (query.includes('FROM hard_state')) rows = [{ term: state.term, vote: state.vote }];
      else if (query.includes('MAX(idx)')) rows = [{ idx: state.lastLogIndex }];
      else if (query.includes('FROM snapshot')) rows = state.snapshotIndex === null ? [] : [{ idx: state.snapshotIndex }];
      else throw new Error(`unexpected query ${query}`);
      return { toArray: () => rows, one: () => rows[0]! };
    },
  };
}

const durable = { term: 5, vote: 'p2', lastLogIndex: 10, snapshotIndex: 3 };

function run(
  state: typeof durable | { term: number; vote: string; lastLogIndex: number | null; snapshotIndex: number | null },
  msgs: Message[],
) {
  const check = new PersistCheck(fakeSql(state));
  check.check(msgs);
  return check.snapshot();
}

describe('persist-before-speak checker', () => {
  it('accepts messages backed by storage and counts them by type', () => {
    const report = run(durable, [
      { type: 'voteResp', from: 'p1', to: 'p2', term: 5 },
      { type: 'appendResp', from: 'p1', to: 'p2', term: 5, hintIndex: 10 },
      { type: 'appendResp', from: 'p1', to: 'p2', term: 5, reject: true, hintIndex: 50 },
      { type: 'heartbeatResp', from: 'p1', to: 'p2', term: 4 },
      { type: 'preVote', from: 'p1', to: 'p3', term: 6, index: 10, logTerm: 5 },
      { type: 'preVoteResp', from: 'p1', to: 'p3', term: 6 },
    ]);
    expect(report.violations).toBe(0);
    expect(report.checked).toBe(6);
    expect(report.checkedByType).toEqual({ voteResp: 1, appendResp: 2, heartbeatResp: 1, preVote: 1, preVoteResp: 1 });
  });

  it('flags a granted vote that is not the durable one', () => {
    expect(run(durable, [{ type: 'voteResp', from: 'p1', to: 'p3', term: 5 }]).violations).toBe(1);
    expect(run({ ...durable, term: 4 }, [{ type: 'voteResp', from: 'p1', to: 'p2', term: 5 }]).violations).toBe(2);
  });

  it('flags a campaign whose self-vote is not durable', () => {
    const report = run({ ...durable, vote: '' }, [{ type: 'vote', from: 'p1', to: 'p2', term: 5, index: 10, logTerm: 5 }]);
    expect(report.violations).toBe(1);
    expect(report.examples[0]).toMatch(/campaign/);
  });

  it('flags an acknowledgement of entries the stored log does not hold', () => {
    expect(run(durable, [{ type: 'appendResp', from: 'p1', to: 'p2', term: 5, hintIndex: 11 }]).violations).toBe(1);
    // With the log compacted away, the snapshot index is what is durable.
    const compacted = { ...durable, lastLogIndex: null, snapshotIndex: 30 };
    expect(run(compacted, [{ type: 'appendResp', from: 'p1', to: 'p2', term: 5, hintIndex: 30 }]).violations).toBe(0);
    expect(run(compacted, [{ type: 'appendResp', from: 'p1', to: 'p2', term: 5, hintIndex: 31 }]).violations).toBe(1);
  });

  it('flags any message in a term that is not durable yet', () => {
    const report = run(durable, [{ type: 'heartbeat', from: 'p1', to: 'p2', term: 6, commit: 0 }]);
    expect(report.violations).toBe(1);
    expect(report.examples[0]).toMatch(/term 6 sent while 5 is durable/);
  });
});
