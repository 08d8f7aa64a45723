// The edge PeerStorage against real workerd SQLite (via a probe Durable Object): every part of
// a SaveBatch, atomicity of a batch, chunking of payloads over the platform's 2 MB row cap, and
// derived state (commit index, apply results) waiting for the next write and what a crash in
// between loses.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestHarness } from 'wrangler';
import type { Entry, Snapshot } from '../../worker/raft/types.ts';
import type { KvState } from '../../worker/kv/types.ts';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { DerivedStats } from '../../worker/edge/storage.ts';
import { restartFrom } from '../../worker/peer/restart.ts';
import { parse, stringify } from './fixtures/json-bytes.ts';
import { COMPATIBILITY_DATE, ROOT, waitFor } from './harness.ts';

const server = createTestHarness({
  root: ROOT,
  workers: [
    {
      config: {
        name: 'storage-probe',
        main: 'test/edge/fixtures/storage-probe.ts',
        compatibility_date: COMPATIBILITY_DATE,
        durable_objects: { bindings: [{ name: 'PROBE', class_name: 'StorageProbe' }] },
        migrations: [{ tag: 'v1', new_sqlite_classes: ['StorageProbe'] }],
      },
    },
  ],
});

beforeAll(async () => {
  await server.listen();
});
afterAll(async () => {
  await server.close();
});

let probeCount = 0;
/** A fresh probe object (its own SQLite database) per test. Derived state waits `flushMs` for
 *  the next write: so long by default that only a write, a close or a flush ever writes it. */
function probe(flushMs = 600_000) {
  const name = `probe-${++probeCount}`;
  async function call<T>(command: unknown): Promise<T> {
    const res = await server.fetch(`/?name=${name}&flushMs=${flushMs}`, { method: 'POST', body: stringify(command) });
    const body = parse<{ ok: boolean; error?: string } & T>(await res.text());
    if (!body.ok) throw new Error(body.error);
    return body;
  }
  return {
    save: (batch: SaveBatch) => call({ op: 'save', batch }),
    /** Loads through a fresh storage instance, as a restarted object would. */
    load: async () => {
      await call({ op: 'reopen' });
      return (await call<{ state: LoadedState }>({ op: 'load' })).state;
    },
    /** Loads after a crash: what the instance had not written is gone. */
    crashLoad: async () => {
      const lost = (await call<{ lost: number }>({ op: 'crash' })).lost;
      return { lost, state: (await call<{ state: LoadedState }>({ op: 'load' })).state };
    },
    derived: async () => (await call<{ derived: DerivedStats }>({ op: 'derived' })).derived,
    rows: async (table: string) => (await call<{ rows: number }>({ op: 'rows', table })).rows,
  };
}

function entry(index: number, term: number, text: string, type: Entry['type'] = 'normal'): Entry {
  return { index, term, type, data: new TextEncoder().encode(text) };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

const membership = { voters: ['p1', 'p2', 'p3'], learners: [], addresses: { p1: 'c/p1', p2: 'c/p2', p3: 'c/p3' } };

const noMembers = { voters: [], learners: [], addresses: {} };

/** Apply results of one put at `index` (what the peer saves after applying it). */
function applied(index: number, key: string): Pick<SaveBatch, 'kv' | 'applied'> {
  return {
    kv: { revision: index, upserts: [[key, { value: key, createRevision: index, modRevision: index, version: 1 }]], deletes: [], sessionUpserts: [], sessionDeletes: [] },
    applied: index,
  };
}

describe('edge storage (Durable Object SQLite)', () => {
  it('a fresh object loads as an empty peer', async () => {
    const state = await probe().load();
    expect(state.hardState).toEqual({ term: 0, vote: '', commit: 0 });
    expect(state.snapshot.meta.index).toBe(0);
    expect(state.snapshot.data.byteLength).toBe(0);
    expect(state.entries).toEqual([]);
    expect(state.applied).toBe(0);
    expect(state.kv).toEqual({ revision: 0, records: [], sessions: [] });
    expect(state.meta).toEqual({});
  });

  it('keeps hard state, log entries (including empty no-ops) and meta across a reopen', async () => {
    const p = probe();
    await p.save({
      entries: [entry(1, 1, ''), entry(2, 1, 'a'), entry(3, 2, 'conf', 'conf')],
      hardState: { term: 2, vote: 'p2', commit: 2 },
      meta: { cluster: 'c', id: 'p1' },
    });
    const state = await p.load();
    expect(state.hardState).toEqual({ term: 2, vote: 'p2', commit: 2 });
    expect(state.entries).toEqual([entry(1, 1, ''), entry(2, 1, 'a'), entry(3, 2, 'conf', 'conf')]);
    expect(state.meta).toEqual({ cluster: 'c', id: 'p1' });
  });

  it('an entry at an existing index replaces it and drops everything after it', async () => {
    const p = probe();
    await p.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1, `old${i}`)) });
    await p.save({ entries: [entry(3, 2, 'new3'), entry(4, 2, 'new4')] });
    expect((await p.load()).entries).toEqual([entry(1, 1, 'old1'), entry(2, 1, 'old2'), entry(3, 2, 'new3'), entry(4, 2, 'new4')]);
  });

  it('writes KV effects and the applied index together', async () => {
    const p = probe();
    const put = { ok: true as const, op: 'put' as const, revision: 2 };
    await p.save({
      kv: {
        revision: 2,
        upserts: [
          ['a', { value: '1', createRevision: 1, modRevision: 1, version: 1 }],
          ['b', { value: '2', createRevision: 2, modRevision: 2, version: 1 }],
        ],
        deletes: [],
        sessionUpserts: [['client-1', { seq: 7, result: put, lastIndex: 2 }]],
        sessionDeletes: [],
      },
      applied: 2,
    });
    await p.save({
      kv: {
        revision: 3,
        upserts: [['b', { value: '3', createRevision: 2, modRevision: 3, version: 2 }]],
        deletes: ['a'],
        sessionUpserts: [],
        sessionDeletes: ['client-1'],
      },
      applied: 3,
    });
    const state = await p.load();
    expect(state.applied).toBe(3);
    expect(state.kv).toEqual({
      revision: 3,
      records: [['b', { value: '3', createRevision: 2, modRevision: 3, version: 2 }]],
      sessions: [],
    });
  });

  it('a batch that fails part-way leaves no trace (one transaction)', async () => {
    const p = probe();
    await p.save({ entries: [entry(1, 1, 'kept')], hardState: { term: 1, vote: '', commit: 0 } });
    // The entries and KV parts are written before the hard state, whose NULL vote violates
    // NOT NULL: the whole batch must roll back.
    const bad = {
      entries: [entry(1, 3, 'replaced'), entry(2, 3, 'added')],
      kv: { revision: 9, upserts: [['x', { value: 'x', createRevision: 9, modRevision: 9, version: 1 }]], deletes: [], sessionUpserts: [], sessionDeletes: [] },
      applied: 2,
      hardState: { term: 3, vote: null, commit: 2 },
    } as unknown as SaveBatch;
    await expect(p.save(bad)).rejects.toThrow();
    const state = await p.load();
    expect(state.entries).toEqual([entry(1, 1, 'kept')]);
    expect(state.hardState).toEqual({ term: 1, vote: '', commit: 0 });
    expect(state.kv.records).toEqual([]);
    expect(state.applied).toBe(0);
  });

  it('compaction stores the snapshot and drops the log up to it', async () => {
    const p = probe();
    await p.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1, `e${i}`)) });
    const snapshot: Snapshot = { meta: { index: 3, term: 1, membership }, data: new TextEncoder().encode('kv@3') };
    await p.save({ compact: snapshot });
    const state = await p.load();
    expect(state.snapshot).toEqual(snapshot);
    expect(state.entries.map((e) => e.index)).toEqual([4, 5]);
  });

  it('installing a snapshot replaces the log, the KV state and the applied index', async () => {
    const p = probe();
    await p.save({
      entries: [1, 2].map((i) => entry(i, 1, `e${i}`)),
      kv: { revision: 1, upserts: [['old', { value: 'o', createRevision: 1, modRevision: 1, version: 1 }]], deletes: [], sessionUpserts: [], sessionDeletes: [] },
      applied: 1,
    });
    const kv: KvState = {
      revision: 40,
      records: [['new', { value: 'n', createRevision: 30, modRevision: 40, version: 3 }]],
      sessions: [['c9', { seq: 2, result: { ok: true, op: 'delete', revision: 39, deleted: 1 }, lastIndex: 49 }]],
    };
    const snapshot: Snapshot = { meta: { index: 50, term: 4, membership }, data: new TextEncoder().encode('kv@50') };
    await p.save({ installSnapshot: { snapshot, kv }, entries: [entry(51, 4, 'after')], hardState: { term: 4, vote: '', commit: 51 } });
    const state = await p.load();
    expect(state.snapshot).toEqual(snapshot);
    expect(state.entries).toEqual([entry(51, 4, 'after')]);
    expect(state.kv).toEqual(kv);
    expect(state.applied).toBe(50);
  });

  it('derived state waits for the next write, lands with it in order, and a crash before loses only it', async () => {
    const p = probe();
    await p.load(); // knows the durable term and vote from here on, as a peer does
    await p.save({ entries: [entry(1, 1, 'a'), entry(2, 1, 'b')], hardState: { term: 1, vote: 'p1', commit: 0 } });
    // The leader commits and applies 1..2: only the commit index moves, plus apply results.
    await p.save({ hardState: { term: 1, vote: 'p1', commit: 2 }, ...applied(2, 'a') });
    expect(await p.derived()).toMatchObject({ deferred: 1, waiting: 1 });
    const crashed = await p.crashLoad();
    expect(crashed.lost).toBe(1);
    // The log is all there; commit and applied are as before the derived batch, still consistent.
    expect(crashed.state.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(crashed.state.hardState).toEqual({ term: 1, vote: 'p1', commit: 0 });
    expect(crashed.state.applied).toBe(0);
    expect(crashed.state.kv.records).toEqual([]);
    expect(() => restartFrom(crashed.state, noMembers)).not.toThrow();

    // Again, now followed by a log append: both land, the derived part first.
    await p.save({ hardState: { term: 1, vote: 'p1', commit: 2 }, ...applied(2, 'a') });
    await p.save({ entries: [entry(3, 1, 'c')] });
    const after = await p.crashLoad();
    expect(after.lost).toBe(0);
    expect(after.state.hardState).toEqual({ term: 1, vote: 'p1', commit: 2 });
    expect(after.state.applied).toBe(2);
    expect(after.state.kv.records.map(([k]) => k)).toEqual(['a']);
    expect(after.state.entries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(await p.derived()).toMatchObject({ waiting: 0 });
  });

  it('never defers a new term or vote, a log append, a compaction or meta', async () => {
    const p = probe();
    await p.load();
    await p.save({ hardState: { term: 2, vote: 'p3', commit: 0 } });
    await p.save({ entries: [entry(1, 2, 'x')] });
    await p.save({ compact: { meta: { index: 1, term: 2, membership }, data: new TextEncoder().encode('kv@1') } });
    await p.save({ meta: { id: 'p1' } });
    const { lost, state } = await p.crashLoad();
    expect(lost).toBe(0);
    expect(state.hardState).toEqual({ term: 2, vote: 'p3', commit: 0 });
    expect(state.snapshot.meta.index).toBe(1);
    expect(state.meta).toEqual({ id: 'p1' });
  });

  it('writes waiting derived state on its own after a while, and on close', async () => {
    const p = probe(10);
    await p.load();
    await p.save({ entries: [entry(1, 1, 'a')], hardState: { term: 1, vote: '', commit: 0 } });
    await p.save({ hardState: { term: 1, vote: '', commit: 1 }, ...applied(1, 'a') });
    await waitFor('the derived batch to be written', async () => (await p.derived()).waiting === 0);
    const { lost, state } = await p.crashLoad();
    expect(lost).toBe(0);
    expect(state.hardState.commit).toBe(1);
    expect(state.applied).toBe(1);
    // Waiting (almost) forever, it is written by a clean close.
    const q = probe();
    await q.load();
    await q.save({ entries: [entry(1, 1, 'a')], hardState: { term: 1, vote: '', commit: 0 } });
    await q.save({ hardState: { term: 1, vote: '', commit: 1 }, ...applied(1, 'a') });
    expect(await q.derived()).toMatchObject({ waiting: 1 });
    const reopened = await q.load(); // closes the instance first, as a peer's close() does
    expect(reopened.applied).toBe(1);
    expect(reopened.hardState.commit).toBe(1);
  });

  it('splits payloads over the 2 MB row cap into chunk rows and reassembles them exactly', async () => {
    const p = probe();
    const big = new Uint8Array(2_500_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    await p.save({ entries: [entry(1, 1, 'small'), { index: 2, term: 1, type: 'normal', data: big }] });
    expect(await p.rows('log_chunk')).toBe(3);
    const snapshot: Snapshot = { meta: { index: 1, term: 1, membership }, data: big };
    await p.save({ compact: snapshot });
    expect(await p.rows('snapshot_chunk')).toBe(3);
    const state = await p.load();
    expect(state.entries).toHaveLength(1);
    expect(sameBytes(state.entries[0]!.data, big)).toBe(true);
    expect(sameBytes(state.snapshot.data, big)).toBe(true);
    // Replacing the big entry removes its chunks too.
    await p.save({ entries: [entry(2, 2, 'small again')] });
    expect(await p.rows('log_chunk')).toBe(0);
  });
});
