// The client session table: for each client id, the last sequence number applied and the
// answer it got, so a command that Raft commits twice (a client retry) is applied once.
//
// Exactly-once window. A retry is recognised as a duplicate only while its client's session
// is still in the table, which holds as long as BOTH:
//   - fewer than `sessionIdleEntriesMax` log indexes have passed since the client's last
//     applied command (idle expiry), and
//   - fewer than `sessionsMax` other clients have been active since then (LRU eviction).
// Only the LAST answer per client is kept, so a client must have at most one command in flight
// per client id; an older seq than the session's is answered `session-expired` (its answer is
// gone; the client cannot know whether it applied only if it reuses old seqs). A session
// begins at seq 1: a later seq from a client with no session (dropped, so possibly a retry of
// a command that applied) is answered `session-expired` and not applied (state-machine.ts), and
// the client starts a new session under a new id. Only a retry of a session's FIRST command
// can still apply twice, if its session is dropped before the retry lands: a client whose first
// command must not repeat begins with a harmless one (as the Raft dissertation's RegisterClient).
// With the defaults the window is 10,000 concurrently active clients and a million log entries.
//
// Expiry and eviction depend only on log indexes and on the order commands were applied, so
// every replica, including one restored from a snapshot, drops the same sessions at the same
// entry. Map insertion order is the LRU order: each use moves a session to the back, and since
// each apply touches at most one session at a strictly increasing index, the map is always
// ordered by (lastIndex, client id); a restored table is rebuilt in exactly that order.

import type { KvLimits, SessionRecord } from './types.ts';

export class SessionTable {
  private readonly limits: KvLimits;
  /** Oldest (least recently used) first. */
  private readonly byClient = new Map<string, SessionRecord>();
  /** No session can be idle too long before this index (a lower bound: checks stay O(1)). */
  private expiryCheckIndex = Number.MAX_SAFE_INTEGER;
  private readonly dirty = new Set<string>();

  constructor(limits: KvLimits, initial: Array<[string, SessionRecord]>) {
    this.limits = limits;
    const ordered = initial
      .map(([client, s]): [string, SessionRecord] => [client, { seq: s.seq, result: s.result, lastIndex: s.lastIndex }])
      .sort((a, b) => a[1].lastIndex - b[1].lastIndex || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [client, s] of ordered) {
      if (this.byClient.has(client)) throw new Error(`KV state holds session ${JSON.stringify(client)} twice`);
      this.byClient.set(client, s);
    }
    this.recomputeExpiryCheck();
  }

  get size(): number {
    return this.byClient.size;
  }

  /** Highest lastIndex of any session (0 when empty): a lower bound on the applied index. */
  maxLastIndex(): number {
    let max = 0;
    for (const s of this.byClient.values()) if (s.lastIndex > max) max = s.lastIndex;
    return max;
  }

  get(client: string): SessionRecord | undefined {
    return this.byClient.get(client);
  }

  /** Drop the sessions that are idle for more than sessionIdleEntriesMax entries at `index`. */
  expire(index: number): void {
    if (index < this.expiryCheckIndex) return;
    const idleMax = this.limits.sessionIdleEntriesMax;
    for (const [client, s] of this.byClient) {
      if (index - s.lastIndex <= idleMax) break;
      this.byClient.delete(client);
      this.dirty.add(client);
    }
    this.recomputeExpiryCheck();
  }

  /** Store `session` as `client`'s latest (most recently used), evicting the LRU beyond sessionsMax. */
  record(client: string, session: SessionRecord): void {
    this.byClient.delete(client);
    this.byClient.set(client, session);
    this.dirty.add(client);
    while (this.byClient.size > this.limits.sessionsMax) {
      const oldest = this.byClient.keys().next().value as string;
      this.byClient.delete(oldest);
      this.dirty.add(oldest);
    }
    if (this.byClient.size === 1) this.recomputeExpiryCheck();
  }

  private recomputeExpiryCheck(): void {
    const first = this.byClient.values().next();
    this.expiryCheckIndex = first.done ? Number.MAX_SAFE_INTEGER : first.value.lastIndex + this.limits.sessionIdleEntriesMax + 1;
  }

  /** Sessions changed or dropped since the last call. */
  takeChanges(): { upserts: Array<[string, SessionRecord]>; deletes: string[] } {
    const upserts: Array<[string, SessionRecord]> = [];
    const deletes: string[] = [];
    for (const client of this.dirty) {
      const s = this.byClient.get(client);
      if (s !== undefined) upserts.push([client, s]);
      else deletes.push(client);
    }
    this.dirty.clear();
    return { upserts, deletes };
  }

  /** All sessions sorted by client id (the canonical snapshot order). */
  sortedEntries(): Array<[string, SessionRecord]> {
    return [...this.byClient].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
}
