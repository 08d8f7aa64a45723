// Generates well-formed SaveBatch streams the way a peer produces them (appends, a new leader's
// rewrite of the uncommitted tail, hard states with a commit index that only grows, applied KV
// changes up to the commit index, compactions, snapshot installs), from a seed, so every storage
// can be compared with the reference StateModel. Plain TypeScript with no Node API: the storage
// contract runs it inside workerd too.

import { SeededRandom } from '../../worker/raft/random.ts';
import type { Entry, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, KvChanges, KvState, SessionRecord } from '../../worker/kv/types.ts';
import { summarize } from '../../worker/kv/record-summary.ts';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import { StateModel } from '../../node-runtime/storage/state-model.ts';

export function entry(index: number, term: number, text = `cmd-${index}`): Entry {
  return { index, term, type: index % 7 === 0 ? 'conf' : 'normal', data: new TextEncoder().encode(text) };
}

export function snapshotAt(index: number, term: number, payload = `snap-${index}`): Snapshot {
  return {
    meta: {
      index,
      term,
      membership: { voters: ['n1', 'n2', 'n3'], learners: [], addresses: { n1: 'http://a', n2: 'http://b', n3: 'http://c' } },
    },
    data: new TextEncoder().encode(payload),
  };
}

/** A peer-like batch source; `model` mirrors what has been generated. Along every prefix of the
 *  stream applied <= commit <= last index holds, as it does for a peer. */
/** `n` records named `prefix/i` (version 1, created when last modified), modRevisions from
 *  `modBase` on, out of key order: what the staged-install tests of every tiered engine write. */
export function spreadRecords(prefix: string, n: number, modBase: number): Array<[string, KeyRecord]> {
  const out: Array<[string, KeyRecord]> = [];
  for (let i = 0; i < n; i++) {
    const mod = modBase + ((i * 7919) % n);
    out.push([`${prefix}/${String(i).padStart(4, '0')}`, { value: `${prefix}-v${i}`, createRevision: mod, modRevision: mod, version: 1 }]);
  }
  return out;
}

/** The session a staged install carries in those tests. */
export const STAGED_SESSION: SessionRecord = { seq: 4, lastIndex: 18, result: { ok: true, op: 'put', revision: 30 } };

/** The install of a snapshot at index 20, term 2, whose records (`staged`) were staged, with
 *  `stage` (the last chunk's records) in the same batch when given. */
export function stagedInstall(staged: Array<[string, KeyRecord]>, stage?: SaveBatch['stage']): SaveBatch {
  return {
    ...(stage ? { stage } : {}),
    installSnapshot: {
      snapshot: snapshotAt(20, 2),
      kv: { revision: 30, records: [], sessions: [['c1', STAGED_SESSION]] },
      staged: summarize(staged),
    },
    hardState: { term: 2, vote: '', commit: 20 },
  };
}

export class BatchStream {
  model = new StateModel();
  private readonly rnd: SeededRandom;
  private term = 1;
  private revision = 0;

  constructor(seed: number) {
    this.rnd = new SeededRandom(seed);
  }

  /** Continue from `model` (what a storage kept after a crash) instead of what was generated. */
  resetTo(model: StateModel): void {
    this.model = model;
  }

  /** One vote per term, as Raft allows: batches that keep the term are free to be derived-only. */
  private vote(): string {
    return `n${1 + (this.term % 3)}`;
  }

  next(): SaveBatch {
    const m = this.model;
    const r = this.rnd;
    const b: SaveBatch = {};
    const commit = m.hardState.commit;
    const roll = r.nextInt(100);
    if (roll < 2) {
      // A follower far behind receives a snapshot (of committed state, so its commit moves too).
      const index = m.lastIndex + 1 + r.nextInt(20);
      const kv: KvState = {
        revision: ++this.revision,
        records: [[`snap-key-${index}`, { value: 'v', createRevision: this.revision, modRevision: this.revision, version: 1 }]],
        sessions: [['client-s', { seq: 1, lastIndex: index, result: { ok: true, op: 'put', revision: this.revision } }]],
      };
      b.installSnapshot = { snapshot: snapshotAt(index, this.term, `install-${index}`), kv };
    } else if (roll < 7 && m.applied > m.snapshot.meta.index) {
      const index = m.snapshot.meta.index + 1 + r.nextInt(m.applied - m.snapshot.meta.index);
      b.compact = snapshotAt(index, this.term);
    }
    const installed = b.installSnapshot?.snapshot.meta.index;
    const last = installed ?? m.lastIndex;
    const applied = installed ?? m.applied;
    const committed = Math.max(commit, installed ?? 0);
    // Only the uncommitted tail may be rewritten (and never applied or compacted entries).
    const floor = Math.max(applied, committed, b.compact?.meta.index ?? 0, installed ?? m.snapshot.meta.index);
    let newTerm = false;
    if (r.nextInt(100) < 80) {
      let from = last + 1;
      if (r.nextInt(100) < 15 && last > floor) {
        from = floor + 1 + r.nextInt(last - floor); // a new leader overwrites the uncommitted tail
        this.term++;
        newTerm = true;
      }
      const n = 1 + r.nextInt(5);
      b.entries = Array.from({ length: n }, (_, k) => entry(from + k, this.term, `t${this.term}-${from + k}-${r.nextInt(1e6)}`));
    }
    const newLast = b.entries ? b.entries[b.entries.length - 1]!.index : last;
    let newCommit = committed;
    if (newTerm || installed !== undefined || r.nextInt(100) < 60) {
      if (newLast > committed && r.nextInt(100) < 70) newCommit = committed + 1 + r.nextInt(newLast - committed);
      b.hardState = { term: this.term, vote: this.vote(), commit: newCommit };
    }
    if (r.nextInt(100) < 60 && newCommit > applied) {
      const to = applied + 1 + r.nextInt(newCommit - applied);
      const changes: KvChanges = { revision: ++this.revision, upserts: [], deletes: [], sessionUpserts: [], sessionDeletes: [] };
      for (let k = r.nextInt(4); k >= 0; k--) {
        const key = `key-${r.nextInt(40)}-é`;
        changes.upserts.push([
          key,
          { value: `value-${to}-${r.nextInt(1e6)}`, createRevision: 1, modRevision: this.revision, version: 1 + r.nextInt(9) },
        ]);
      }
      if (r.nextInt(3) === 0) changes.deletes.push(`key-${r.nextInt(40)}-é`);
      if (r.nextInt(2) === 0)
        changes.sessionUpserts.push([
          `client-${r.nextInt(12)}`,
          { seq: to, lastIndex: to, result: { ok: true, op: 'put', revision: this.revision } },
        ]);
      // Sessions expire: delete one that exists (and sometimes one that does not).
      const clients = [...m.sessions.keys()];
      if (clients.length > 0 && r.nextInt(4) === 0) changes.sessionDeletes.push(clients[r.nextInt(clients.length)]!);
      if (r.nextInt(20) === 0) changes.sessionDeletes.push(`client-${r.nextInt(12)}`);
      b.kv = changes;
      b.applied = to;
    }
    if (r.nextInt(100) < 3) b.meta = { [`m${r.nextInt(3)}`]: `v${r.nextInt(1000)}` };
    m.apply(b);
    return b;
  }
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function byKey<T>(a: Array<[string, T]>): Array<[string, T]> {
  return [...a].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

/** LoadedState with order-insensitive parts sorted and bytes as hex, for comparing storages. */
export function normalized(s: LoadedState): {
  hardState: unknown;
  snapshot: unknown;
  entries: unknown[];
  applied: number;
  kv: { revision: number; records: unknown[]; sessions: unknown[] };
  meta: unknown;
} {
  return {
    hardState: { term: s.hardState.term, vote: s.hardState.vote, commit: s.hardState.commit },
    snapshot: { meta: s.snapshot.meta, data: hex(s.snapshot.data) },
    entries: s.entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: hex(e.data) })),
    applied: s.applied,
    kv: { revision: s.kv.revision, records: byKey(s.kv.records), sessions: byKey(s.kv.sessions) },
    meta: Object.fromEntries(Object.entries(s.meta).sort()),
  };
}

/** JSON with object keys sorted at every level: equal states give equal strings. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

/** Which parts of two states differ (null when equal), short enough for a test failure. */
export function stateDifference(actual: LoadedState, expected: LoadedState): string | null {
  const a = normalized(actual);
  const e = normalized(expected);
  const parts: string[] = [];
  for (const field of ['hardState', 'snapshot', 'applied', 'meta'] as const) {
    const x = stableJson(a[field]);
    const y = stableJson(e[field]);
    if (x !== y) parts.push(`${field}: got ${clip(x)}, want ${clip(y)}`);
  }
  if (a.kv.revision !== e.kv.revision) parts.push(`kv revision: got ${a.kv.revision}, want ${e.kv.revision}`);
  listDifference(parts, 'kv records', a.kv.records, e.kv.records);
  listDifference(parts, 'kv sessions', a.kv.sessions, e.kv.sessions);
  listDifference(parts, 'entries', a.entries, e.entries);
  return parts.length === 0 ? null : parts.join('; ');
}

function listDifference(parts: string[], what: string, actual: unknown[], expected: unknown[]): void {
  const ax = actual.map((x) => stableJson(x));
  const ex = expected.map((x) => stableJson(x));
  let k = 0;
  while (k < ax.length && k < ex.length && ax[k] === ex[k]) k++;
  if (k === ax.length && k === ex.length) return;
  parts.push(
    `${what}: ${ax.length} (want ${ex.length}), first difference at position ${k}: got ${clip(ax[k] ?? 'none')}, want ${clip(ex[k] ?? 'none')}`,
  );
}

function clip(s: string): string {
  return s.length > 160 ? `${s.slice(0, 160)}…` : s;
}
