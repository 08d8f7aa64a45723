// The contract of worker/peer/ports.ts PeerStorage, run against every engine: each part of a
// SaveBatch, its order and atomicity, persistence across reopen, group commit, refusal of
// malformed batches, and the data dir's identity and lock.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NodeStorage, type OpenStorageOptions } from '../../node-runtime/storage/open.ts';
import { ENGINE_NAMES, type EngineName } from '../../node-runtime/storage/engine.ts';
import { DataDirError, SaveRejectedError } from '../../node-runtime/storage/errors.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { BatchStream, entry, normalized, snapshotAt } from '../support/storage-batches.ts';

describe.each(ENGINE_NAMES)('storage engine %s', (engine: EngineName) => {
  let dataDir: string;
  const open = (over: Partial<OpenStorageOptions> = {}) =>
    NodeStorage.open({ dataDir, engine, nodeId: 'n1', clusterId: 'c1', log: silentLogger, ...over });
  const identity = { engine, nodeId: 'n1', clusterId: 'c1' };
  const reload = async () => {
    const s = await open();
    try {
      return await s.load();
    } finally {
      await s.close();
    }
  };

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), `metcd-${engine}-`));
  });
  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts empty and records engine, node and cluster', async () => {
    const s = await open();
    expect(s.fresh).toBe(true);
    const st = await s.load();
    expect(st.hardState).toEqual({ term: 0, vote: '', commit: 0 });
    expect(st.snapshot.meta.index).toBe(0);
    expect(st.entries).toEqual([]);
    expect(st.applied).toBe(0);
    expect(st.kv).toEqual({ revision: 0, records: [], sessions: [] });
    expect(st.meta).toEqual(identity);
    await s.close();
    const again = await open();
    expect(again.fresh).toBe(true); // recorded who it belongs to, but still no Raft state
    expect((await again.load()).meta).toEqual(identity);
    await again.save({ hardState: { term: 1, vote: '', commit: 0 } });
    await again.close();
    const third = await open();
    expect(third.fresh).toBe(false);
    await third.close();
  });

  it('persists every part of a batch across reopen', async () => {
    const s = await open();
    await s.save({
      entries: [entry(1, 1), entry(2, 1), entry(3, 2)],
      hardState: { term: 2, vote: 'n2', commit: 2 },
      kv: {
        revision: 5,
        upserts: [['a', { value: 'ü', createRevision: 4, modRevision: 5, version: 2 }], ['b', { value: '', createRevision: 5, modRevision: 5, version: 1 }]],
        deletes: [],
        sessionUpserts: [['cl', { seq: 3, lastIndex: 2, result: { ok: false, code: 'compare-failed', revision: 5, actual: 4 } }]],
        sessionDeletes: [],
      },
      applied: 2,
      meta: { extra: 'x' },
    });
    await s.save({ kv: { revision: 6, upserts: [], deletes: ['b'], sessionUpserts: [], sessionDeletes: ['cl'] }, applied: 3 });
    await s.close();
    const st = await reload();
    expect(st.entries).toEqual([entry(1, 1), entry(2, 1), entry(3, 2)]);
    expect(st.hardState).toEqual({ term: 2, vote: 'n2', commit: 2 });
    expect(st.kv).toEqual({ revision: 6, records: [['a', { value: 'ü', createRevision: 4, modRevision: 5, version: 2 }]], sessions: [] });
    expect(st.applied).toBe(3);
    expect(st.meta).toEqual({ ...identity, extra: 'x' });
  });

  it('replaces a conflicting tail and drops everything after it', async () => {
    const s = await open();
    await s.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)) });
    await s.save({ entries: [entry(3, 2), entry(4, 2)] });
    await s.close();
    const st = await reload();
    expect(st.entries).toEqual([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
  });

  it('compacts: keeps the snapshot, drops entries up to it', async () => {
    const s = await open();
    await s.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)), applied: 4 });
    await s.save({ compact: snapshotAt(3, 1), entries: [entry(6, 1)] });
    await s.close();
    const st = await reload();
    expect(st.snapshot).toEqual(snapshotAt(3, 1));
    expect(st.entries.map((e) => e.index)).toEqual([4, 5, 6]);
    expect(st.applied).toBe(4);
    // The peer's shape: compact at the index applied by the same batch.
    const s2 = await open();
    await s2.save({ compact: snapshotAt(6, 1), kv: { revision: 9, upserts: [], deletes: [], sessionUpserts: [], sessionDeletes: [] }, applied: 6 });
    await s2.close();
    const st2 = await reload();
    expect([st2.snapshot.meta.index, st2.entries.length, st2.applied, st2.kv.revision]).toEqual([6, 0, 6, 9]);
  });

  it('installs a snapshot: replaces log, KV state and applied index at once', async () => {
    const s = await open();
    await s.save({
      entries: [1, 2, 3].map((i) => entry(i, 1)),
      kv: { revision: 2, upserts: [['old', { value: 'o', createRevision: 1, modRevision: 2, version: 2 }]], deletes: [], sessionUpserts: [['c', { seq: 1, lastIndex: 1, result: { ok: true, op: 'put', revision: 1 } }]], sessionDeletes: [] },
      applied: 2,
    });
    const kv = { revision: 40, records: [['new', { value: 'n', createRevision: 40, modRevision: 40, version: 1 }]] as [string, never][], sessions: [] };
    await s.save({ installSnapshot: { snapshot: snapshotAt(50, 3), kv }, entries: [entry(51, 3)], hardState: { term: 3, vote: '', commit: 50 } });
    await s.close();
    const st = await reload();
    expect(st.snapshot).toEqual(snapshotAt(50, 3));
    expect(st.entries).toEqual([entry(51, 3)]);
    expect(st.applied).toBe(50);
    expect(st.kv).toEqual(kv);
  });

  it('refuses malformed batches without writing them', async () => {
    const s = await open();
    await s.save({ entries: [entry(1, 1), entry(2, 1)], applied: 1 });
    await expect(s.save({ entries: [entry(4, 1)] })).rejects.toBeInstanceOf(SaveRejectedError); // gap
    await expect(s.save({ entries: [entry(3, 1), entry(5, 1)] })).rejects.toBeInstanceOf(SaveRejectedError); // hole
    await expect(s.save({ entries: [entry(1, 2)] })).rejects.toBeInstanceOf(SaveRejectedError); // rewrites applied
    await expect(s.save({ applied: 5 })).rejects.toBeInstanceOf(SaveRejectedError); // beyond the log
    await expect(s.save({ compact: snapshotAt(2, 1) })).rejects.toBeInstanceOf(SaveRejectedError); // beyond applied
    await s.save({ entries: [entry(3, 1)] });
    await s.close();
    expect((await reload()).entries.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it('group commit: concurrent saves share fsyncs and keep their order', async () => {
    const s = await open();
    const before = s.stats();
    const saves = Array.from({ length: 200 }, (_, k) =>
      s.save({ entries: [entry(k + 1, 1)], hardState: { term: 1, vote: 'n1', commit: k } }));
    await Promise.all(saves);
    const after = s.stats();
    expect(after.batches - before.batches).toBe(200);
    expect(after.syncs - before.syncs).toBeLessThan(200);
    await s.close();
    const st = await reload();
    expect(st.entries.map((e) => e.index)).toEqual(Array.from({ length: 200 }, (_, k) => k + 1));
    expect(st.hardState.commit).toBe(199);
  });

  it('matches the reference model over a random peer-like stream, across reopens', async () => {
    const stream = new BatchStream(7);
    for (const [k, v] of Object.entries(identity)) stream.model.meta.set(k, v);
    let s = await open();
    for (let round = 0; round < 4; round++) {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < 150; i++) pending.push(s.save(stream.next()));
      await Promise.all(pending);
      await s.close();
      s = await open();
      expect(normalized(await s.load())).toEqual(normalized(stream.model.toLoaded()));
    }
    await s.close();
  });

  it('refuses another engine, node or cluster, and a second process on the same dir', async () => {
    const s = await open();
    await expect(open()).rejects.toBeInstanceOf(DataDirError); // already open
    await s.close();
    const other = ENGINE_NAMES.find((e) => e !== engine)!;
    await expect(open({ engine: other })).rejects.toThrow(`created with --engine ${engine}`);
    await expect(open({ nodeId: 'n9' })).rejects.toThrow('belongs to node n1');
    await expect(open({ clusterId: 'c9' })).rejects.toThrow('belongs to cluster c1');
    expect(readdirSync(dataDir).sort()).toEqual(['metcd.json', engine].sort()); // lock released each time
  });
});
