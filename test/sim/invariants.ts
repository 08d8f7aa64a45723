// Raft's safety properties, checked as the run goes (each check is incremental, so it can run
// after every step). Everything is observed from outside the peer: what each node's disk holds
// as each write lands (diskObserver), the messages it sends, its log events and its answers.
// A broken property throws a SimViolation.
//
//   election safety      at most one leader per term; a voter grants at most one vote per term
//   log matching         an (index, term) pair names one entry, and one predecessor term
//   leader completeness  a new leader's log holds every entry known committed
//   durability           when a leader commits an entry, a quorum holds it durably
//   state machine safety no two nodes apply different entries (or get different results) at
//                        one index; KV states digested at one applied index are equal
//   no lost commit       a committed index never changes entry (nor is a committed entry
//                        overwritten in a durable log: checkWrite)
//   applied monotonic    a node's applied index never goes back, across restarts too
//   exactly once         a client command committed twice (a retry with the same stamp) takes
//                        effect once: the later copy answers exactly what the first one did

import type { Entry, Membership, NodeId } from '../../worker/raft/types.ts';
import type { KvResult, KvState } from '../../worker/kv/types.ts';
import { decodeState, encodeState } from '../../worker/kv/codec.ts';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import { sortedKv, type DiskObserver, type SimDisk } from './storage.ts';
import { digestBytes } from './streams.ts';
import { summarize } from '../../worker/kv/record-summary.ts';
import { violation } from './violation.ts';

type DurableStore = SimDisk;

/** One digest per KV state (records and sessions in key order). */
export function kvDigest(kv: KvState): number {
  return digestBytes(encodeState(sortedKv(kv)));
}

interface EntryId {
  term: number;
  digest: number;
}

interface CommittedEntry extends EntryId {
  /** Lowest durable term of a node seen holding it committed: it was committed in this term or
   *  earlier (a node learns a commit from a leader of its own term or an older one). */
  committedByTerm: number;
}

interface LoggedEntry extends EntryId {
  prevTerm: number;
}

interface AppliedEntry extends EntryId {
  result: string;
  node: NodeId;
}

export function entryDigest(e: Entry): number {
  return digestBytes(e.data, e.type === 'conf' ? 0x1234567 : 0x811c9dc5);
}

export class Invariants {
  /** Every node's disk, by id (the quorum-durability check reads them all). */
  readonly disks = new Map<NodeId, SimDisk>();
  private readonly leaderByTerm = new Map<number, NodeId>();
  /** The highest term any node became leader in (as its peer.role event said). */
  newestLeaderTerm = 0;
  /** "voter@term" -> candidate granted. */
  private readonly votes = new Map<string, NodeId>();
  /** index -> term -> what was logged there. */
  private readonly logged = new Map<number, Map<number, LoggedEntry>>();
  /** index -> the entry committed there (as first reported). */
  private readonly committed = new Map<number, CommittedEntry>();
  private committedMax = 0;
  /** Per node: highest commit index already cross-checked against `committed`. */
  private readonly commitChecked = new Map<NodeId, number>();
  private readonly applied = new Map<number, AppliedEntry>();
  private readonly maxApplied = new Map<NodeId, number>();
  private readonly stateDigests = new Map<number, { digest: number; node: NodeId }>();
  /** "node@term" leaderships whose completeness was already checked. */
  private readonly leadershipChecked = new Set<string>();
  /** "client#seq" -> the log index that first applied it and its answer. */
  private readonly stamped = new Map<string, { index: number; result: string }>();
  /** Retried commands that Raft committed again and the session table absorbed. */
  duplicatesAbsorbed = 0;
  /**
   * Set on runs whose session table is small enough to drop sessions: there every client's seq 1
   * is a registration (clients.ts), which a retry may apply again once its session is gone —
   * the one repeat the state machine allows (worker/kv/sessions.ts). Counted, not a violation.
   */
  sessionsMayDrop = false;
  registrationsReapplied = 0;
  /** Sessions dropped (expired or evicted), summed over the nodes' writes. */
  sessionsDropped = 0;

  get committedIndex(): number {
    return this.committedMax;
  }

  onRole(node: NodeId, role: string, term: number): void {
    if (role !== 'leader') return;
    const other = this.leaderByTerm.get(term);
    if (other !== undefined && other !== node) {
      violation('election-safety', `two leaders in term ${term}: ${other} and ${node}`);
    }
    this.leaderByTerm.set(term, node);
    if (term > this.newestLeaderTerm) this.newestLeaderTerm = term;
  }

  /** `node`, a leader of `term`, served a read under its lease when the newest leader known was
   *  of `newestTerm`: a lease is only safe while no newer leader can have been elected. */
  onLeaseRead(node: NodeId, term: number, newestTerm: number): void {
    if (newestTerm > term) {
      violation(
        'lease-safety',
        `${node} (term ${term}) served a default read under its lease while the leader of term ${newestTerm} was elected`,
      );
    }
  }

  onVoteGranted(voter: NodeId, candidate: NodeId, term: number): void {
    const key = `${voter}@${term}`;
    const prior = this.votes.get(key);
    if (prior !== undefined && prior !== candidate) {
      violation('vote-once', `${voter} voted for ${prior} and ${candidate} in term ${term}`);
    }
    this.votes.set(key, candidate);
  }

  /** After `entries` were made durable on `node`. */
  onPersistEntries(node: NodeId, entries: Entry[], store: DurableStore): void {
    for (const e of entries) {
      const prevTerm = store.termAt(e.index - 1);
      if (prevTerm === undefined) {
        violation('log-matching', `${node} persisted entry ${e.index} without a predecessor`);
      }
      const digest = entryDigest(e);
      let byTerm = this.logged.get(e.index);
      if (byTerm === undefined) {
        byTerm = new Map();
        this.logged.set(e.index, byTerm);
      }
      const seen = byTerm.get(e.term);
      if (seen === undefined) {
        byTerm.set(e.term, { term: e.term, digest, prevTerm });
        continue;
      }
      if (seen.digest !== digest) {
        violation('log-matching', `${node}: two different entries at index ${e.index} term ${e.term}`);
      }
      if (seen.prevTerm !== prevTerm) {
        violation('log-matching', `${node}: entry ${e.index}/${e.term} follows term ${prevTerm}, elsewhere term ${seen.prevTerm}`);
      }
    }
  }

  /**
   * After `node` persisted commit index `commit`: every newly committed index must agree with
   * what other nodes committed there. When the node is the leader, each index it commits first
   * must be durable on a quorum of `memberships` (any of them: the leader's configuration may
   * have changed in the same batch, and with one-at-a-time changes either one is legitimate).
   */
  onCommit(
    node: NodeId,
    commit: number,
    store: DurableStore,
    leaderOf: Membership[] | null,
    stores: ReadonlyMap<NodeId, DurableStore> = this.disks,
  ): void {
    const from = Math.max(this.commitChecked.get(node) ?? 0, store.snapshotIndex);
    if (commit <= from) return;
    for (let index = from + 1; index <= commit; index++) {
      const e = store.entryAt(index);
      if (e === undefined) violation('commit-beyond-log', `${node} commit ${commit} but has no entry ${index}`);
      const digest = entryDigest(e);
      const known = this.committed.get(index);
      if (known !== undefined) {
        if (known.term !== e.term || known.digest !== digest) {
          violation('lost-commit', `${node} commits ${index}/${e.term}, but ${index}/${known.term} was committed`);
        }
        known.committedByTerm = Math.min(known.committedByTerm, store.hardState.term);
        continue;
      }
      this.committed.set(index, { term: e.term, digest, committedByTerm: store.hardState.term });
      if (index > this.committedMax) this.committedMax = index;
      if (leaderOf !== null) this.checkQuorumDurable(node, index, e.term, leaderOf, stores);
    }
    this.commitChecked.set(node, commit);
  }

  private checkQuorumDurable(
    node: NodeId,
    index: number,
    term: number,
    memberships: Membership[],
    stores: ReadonlyMap<NodeId, DurableStore>,
  ): void {
    for (const m of memberships) {
      let holders = 0;
      for (const v of m.voters) {
        const s = stores.get(v);
        if (s !== undefined && (s.snapshotIndex >= index || s.termAt(index) === term)) holders++;
      }
      if (holders > m.voters.length / 2) return;
    }
    const voters = memberships.map((m) => `[${m.voters.join(',')}]`).join(' or ');
    violation('commit-durability', `leader ${node} committed ${index}/${term} but a quorum of ${voters} does not hold it durably`);
  }

  /** Called once per (node, term) when the node has persisted its first Ready as leader. */
  onLeaderPersisted(node: NodeId, term: number, store: DurableStore): void {
    const key = `${node}@${term}`;
    // Only entries committed in an earlier term: on a slow disk this write may land after a
    // later leader committed entries this one never had (legitimately).
    if (this.leadershipChecked.has(key)) return;
    this.leadershipChecked.add(key);
    for (let index = store.snapshotIndex + 1; index <= this.committedMax; index++) {
      const known = this.committed.get(index);
      if (known === undefined || known.committedByTerm >= term) continue;
      const e = store.entryAt(index);
      if (e === undefined || e.term !== known.term || entryDigest(e) !== known.digest) {
        violation('leader-completeness', `leader ${node} of term ${term} lacks committed entry ${index}/${known.term}`);
      }
    }
    if (store.snapshotIndex > 0) this.checkSnapshotAgrees(node, store.snapshotIndex, store.snapshot.meta.term);
  }

  private checkSnapshotAgrees(node: NodeId, index: number, term: number): void {
    const known = this.committed.get(index);
    if (known !== undefined && known.term !== term) {
      violation('lost-commit', `${node} has a snapshot at ${index}/${term}, but ${index}/${known.term} was committed`);
    }
  }

  onApply(node: NodeId, e: Entry, result: string): void {
    const digest = entryDigest(e);
    const known = this.committed.get(e.index);
    if (known !== undefined && (known.term !== e.term || known.digest !== digest)) {
      violation('state-machine-safety', `${node} applies ${e.index}/${e.term}, but ${e.index}/${known.term} was committed`);
    }
    const prior = this.applied.get(e.index);
    if (prior === undefined) {
      this.applied.set(e.index, { term: e.term, digest, result, node });
      return;
    }
    if (prior.term !== e.term || prior.digest !== digest) {
      violation('state-machine-safety', `${node} applies ${e.index}/${e.term}, ${prior.node} applied ${e.index}/${prior.term}`);
    }
    if (prior.result !== result) {
      violation('state-machine-safety', `entry ${e.index}: ${node} got ${result}, ${prior.node} got ${prior.result}`);
    }
  }

  /**
   * A command stamped `client#seq` applied at `index`. A second copy at another index must give
   * the first copy's answer (sessions made it a no-op) or session-expired (the client has moved
   * on, the answer is gone); anything else means it took effect twice.
   */
  onStampedApply(node: NodeId, stamp: string, index: number, result: KvResult): void {
    const text = JSON.stringify(result);
    const first = this.stamped.get(stamp);
    if (first === undefined) {
      this.stamped.set(stamp, { index, result: text });
      return;
    }
    if (first.index === index) return;
    if (first.result === text) {
      this.duplicatesAbsorbed++;
      return;
    }
    if (!result.ok && result.code === 'session-expired') return;
    if (this.sessionsMayDrop && stamp.endsWith('#1')) {
      this.registrationsReapplied++;
      return;
    }
    violation('exactly-once', `${node}: command ${stamp} applied at ${first.index} (${first.result}) and again at ${index} (${text})`);
  }

  onApplied(node: NodeId, applied: number, why: string): void {
    const prior = this.maxApplied.get(node) ?? 0;
    if (applied < prior) violation('applied-monotonic', `${node} applied ${prior} -> ${applied} (${why})`);
    this.maxApplied.set(node, applied);
  }

  /** A digest of the whole KV state as of applied index `index` (taken at snapshots). */
  onStateDigest(node: NodeId, index: number, digest: number): void {
    const prior = this.stateDigests.get(index);
    if (prior === undefined) {
      this.stateDigests.set(index, { digest, node });
      return;
    }
    if (prior.digest !== digest) {
      violation('state-machine-safety', `KV state at applied ${index} differs between ${prior.node} and ${node}`);
    }
  }

  onSnapshotInstalled(node: NodeId, index: number, term: number): void {
    this.checkSnapshotAgrees(node, index, term);
  }

  /**
   * The checks that read a node's disk as each write lands: the shape of what the peer writes
   * (no gaps, no overwritten committed entry, monotone term/vote/commit/applied), then what the
   * write makes durable (log matching, commit durable on a quorum, leader completeness, entries
   * applied in order from the durable log, exactly-once from the session table, KV state digests).
   */
  diskObserver(node: NodeId, onApplied: (from: number, to: number) => void): DiskObserver {
    return {
      beforeDurable: (batch, disk) => this.checkWrite(node, batch, disk),
      afterDurable: (batch, disk, ctx, prior) => {
        const install = batch.installSnapshot;
        if (install !== undefined) {
          const meta = install.snapshot.meta;
          this.onApplied(node, meta.index, 'snapshot');
          this.onSnapshotInstalled(node, meta.index, meta.term);
          // A staged install's records are those staged on the disk, not install.kv's (none).
          this.onStateDigest(node, meta.index, kvDigest(prior.installed ?? install.kv));
        }
        // A tiered peer's compaction is meta only (its disk's records are the state); a peer
        // holding its state in memory must store the state it compacts to.
        if (batch.compact !== undefined && batch.compact.data.length > 0) {
          this.onStateDigest(node, batch.compact.meta.index, kvDigest(decodeState(batch.compact.data)));
        } else if (batch.compact !== undefined && !disk.tiered) {
          violation('host-compact', `${node}: compaction at ${batch.compact.meta.index} without the state, on a disk that is not tiered`);
        }
        if (batch.entries !== undefined && batch.entries.length > 0) this.onPersistEntries(node, batch.entries, disk);
        if (batch.hardState !== undefined) this.onCommit(node, disk.hardState.commit, disk, ctx.leaderOf);
        if (ctx.leaderOf !== null && (batch.hardState !== undefined || batch.entries !== undefined))
          this.onLeaderPersisted(node, ctx.term, disk);
        if (batch.applied !== undefined && install === undefined && batch.applied > prior.applied) {
          this.onApplied(node, disk.applied, 'apply');
          for (const [client, s] of batch.kv?.sessionUpserts ?? []) this.onStampedApply(node, `${client}#${s.seq}`, s.lastIndex, s.result);
          this.sessionsDropped += batch.kv?.sessionDeletes.length ?? 0;
          this.onStateDigest(node, disk.applied, kvDigest(disk.kvState()));
          onApplied(prior.applied, disk.applied);
        }
      },
    };
  }

  /** Staged records only on a tiered disk; a staged install carries no records of its own, and
   *  its summary counts exactly the records staged (what its engine stores as the summary). */
  private checkStaged(node: NodeId, batch: SaveBatch, disk: DurableStore): void {
    if (!disk.tiered) violation('staged-install', `${node}: staged snapshot records written to a disk that is not tiered`);
    const install = batch.installSnapshot;
    if (install?.staged === undefined) return;
    if (install.kv.records.length > 0)
      violation(
        'staged-install',
        `${node}: a staged install at ${install.snapshot.meta.index} carries ${install.kv.records.length} records`,
      );
    const counted = summarize(disk.installedKv(batch).records);
    const said = install.staged;
    if (counted.records !== said.records || counted.internalRecords !== said.internalRecords || counted.bytes !== said.bytes)
      violation(
        'staged-install',
        `${node}: staged install at ${install.snapshot.meta.index} says ${JSON.stringify(install.staged)}, the staged records count ${JSON.stringify(counted)}`,
      );
  }

  private checkWrite(node: NodeId, batch: SaveBatch, disk: DurableStore): void {
    let snapshotIndex = disk.snapshotIndex;
    let applied = disk.applied;
    if (batch.stage !== undefined || batch.installSnapshot?.staged !== undefined) this.checkStaged(node, batch, disk);
    if (batch.installSnapshot !== undefined) {
      const index = batch.installSnapshot.snapshot.meta.index;
      if (index < disk.applied) violation('snapshot-regress', `${node}: snapshot at ${index} would move applied back from ${disk.applied}`);
      snapshotIndex = index;
      applied = index;
    }
    if (batch.compact !== undefined) {
      const index = batch.compact.meta.index;
      const appliedAfter = Math.max(applied, batch.applied ?? 0);
      if (index <= snapshotIndex || index > appliedAfter)
        violation('host-compact', `${node}: compaction at ${index} outside (${snapshotIndex}, ${appliedAfter}]`);
    }
    const entries = batch.entries ?? [];
    if (entries.length > 0) {
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index !== entries[i - 1]!.index + 1)
          violation('ready-entries', `${node}: entries not contiguous: ${entries[i - 1]!.index} then ${entries[i]!.index}`);
      }
      const first = entries[0]!.index;
      const base = batch.compact !== undefined ? batch.compact.meta.index : snapshotIndex;
      const last = batch.installSnapshot !== undefined ? snapshotIndex : Math.max(base, disk.lastIndex());
      if (first <= base) violation('ready-entries', `${node}: entry ${first} would overwrite the snapshot at ${base}`);
      if (first > last + 1) violation('ready-entries', `${node}: entry ${first} leaves a gap after last index ${last}`);
      // Re-writing an identical entry is harmless; replacing a committed one is the lost-commit bug.
      const commitFloor = Math.max(applied, disk.hardState.commit);
      for (const e of entries) {
        if (e.index > commitFloor) break;
        const existing = batch.installSnapshot === undefined ? disk.termAt(e.index) : undefined;
        if (existing !== undefined && existing !== e.term) {
          violation('committed-overwrite', `${node}: entry ${e.index} term ${existing} replaced by term ${e.term} (commit ${commitFloor})`);
        }
      }
    }
    const hs = batch.hardState;
    if (hs !== undefined) {
      const prior = disk.hardState;
      if (hs.term < prior.term) violation('term-monotonic', `${node} term ${prior.term} -> ${hs.term}`);
      if (hs.commit < prior.commit) violation('commit-monotonic', `${node} commit ${prior.commit} -> ${hs.commit}`);
      if (hs.term === prior.term && prior.vote !== '' && hs.vote !== prior.vote) {
        violation('vote-once', `${node} changed its vote in term ${hs.term}: ${prior.vote} -> ${hs.vote}`);
      }
    }
    if (batch.applied !== undefined && batch.installSnapshot === undefined) {
      if (batch.applied < applied) violation('applied-monotonic', `${node}: durable applied ${applied} -> ${batch.applied}`);
      // What the peer applied is in its durable log (or in this very write) and committed.
      const commit = Math.max(disk.hardState.commit, hs?.commit ?? 0);
      if (batch.applied > commit) violation('apply-uncommitted', `${node}: applied ${batch.applied} saved with commit ${commit}`);
      for (let index = applied + 1; index <= batch.applied; index++) {
        const e = entries.find((x) => x.index === index) ?? disk.entryAt(index);
        if (e === undefined)
          violation(
            'apply-not-durable',
            `${node} saves applied ${batch.applied}, but entry ${index} is in neither its durable log nor this write`,
          );
        this.onApply(node, e, '');
      }
    }
  }
}
