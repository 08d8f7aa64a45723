// Persist before you speak, checked where a peer speaks. When enabled (CHECK_PERSIST var; the
// edge tests turn it on), every outgoing message is compared with what this peer's SQLite holds
// at the moment it is handed to the transport:
//   - any message but a pre-vote round: its term is durable (hard_state.term >= message term);
//     pre-votes carry the term a campaign WOULD use, which by design is never persisted;
//   - a granted vote: the vote itself is durable (term and voted-for candidate);
//   - a campaign (vote request): the candidate's own vote for itself is durable;
//   - an accepted append: the entries it acknowledges are in the stored log (or a snapshot).
// The storage only confirms a write before anything leaves because the output gate holds the
// outgoing RPC until then (storage.ts); this check proves the other half: the peer never hands
// the transport a message its storage does not already back. A violation is counted, never
// thrown: the tests assert the count is zero.

import type { Message } from '../raft/types.ts';
import type { SqlLike } from './sql.ts';

export interface PersistCheckReport {
  checked: number;
  /** Messages checked, by type (shows which rules were exercised). */
  checkedByType: Record<string, number>;
  violations: number;
  /** The first few violations, for the test's failure message. */
  examples: string[];
}

const EXAMPLES_MAX = 10;

export class PersistCheck {
  private readonly sql: SqlLike;
  private readonly report: PersistCheckReport = { checked: 0, checkedByType: {}, violations: 0, examples: [] };

  constructor(sql: SqlLike) {
    this.sql = sql;
  }

  check(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const hs = this.sql.exec('SELECT term, vote FROM hard_state').toArray()[0];
    const term = typeof hs?.term === 'number' ? hs.term : 0;
    const vote = typeof hs?.vote === 'string' ? hs.vote : '';
    let lastIndex: number | null = null;
    for (const m of messages) {
      this.report.checked++;
      this.report.checkedByType[m.type] = (this.report.checkedByType[m.type] ?? 0) + 1;
      const preVote = m.type === 'preVote' || m.type === 'preVoteResp';
      if (!preVote && m.term > term) this.violation(m, `term ${m.term} sent while ${term} is durable`);
      if (m.type === 'voteResp' && m.reject !== true && (term !== m.term || vote !== m.to)) {
        this.violation(m, `vote for ${m.to} in term ${m.term} sent while durable vote is ${JSON.stringify(vote)} in ${term}`);
      }
      if (m.type === 'vote' && (term !== m.term || vote !== m.from)) {
        this.violation(m, `campaign in term ${m.term} while durable vote is ${JSON.stringify(vote)} in ${term}`);
      }
      if (m.type === 'appendResp' && m.reject !== true && m.hintIndex !== undefined) {
        lastIndex ??= this.durableLastIndex();
        if (m.hintIndex > lastIndex) {
          this.violation(m, `acknowledged index ${m.hintIndex} while the durable log ends at ${lastIndex}`);
        }
      }
    }
  }

  snapshot(): PersistCheckReport {
    return { ...this.report, checkedByType: { ...this.report.checkedByType }, examples: [...this.report.examples] };
  }

  private durableLastIndex(): number {
    const log = this.sql.exec('SELECT MAX(idx) AS idx FROM log').one();
    if (typeof log.idx === 'number') return log.idx;
    const snap = this.sql.exec('SELECT idx FROM snapshot').toArray()[0];
    return typeof snap?.idx === 'number' ? snap.idx : 0;
  }

  private violation(m: Message, what: string): void {
    this.report.violations++;
    if (this.report.examples.length < EXAMPLES_MAX) this.report.examples.push(`${m.type} ${m.from}->${m.to}: ${what}`);
  }
}
