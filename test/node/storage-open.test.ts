// What a Node engine does beyond the PeerStorage contract (storage-contract.test.ts runs that):
// the data dir's identity, recorded in meta and checked at open, its lock, the `fresh` flag, and
// group commit sharing one fsync among concurrent saves.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NodeStorage, type OpenStorageOptions } from '../../node-runtime/storage/open.ts';
import { ENGINE_NAMES, type EngineName } from '../../node-runtime/storage/engine.ts';
import { DataDirError } from '../../node-runtime/storage/errors.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { entry } from '../support/storage-batches.ts';

describe.each(ENGINE_NAMES)('storage engine %s', (engine: EngineName) => {
  let dataDir: string;
  const open = (over: Partial<OpenStorageOptions> = {}) =>
    NodeStorage.open({ dataDir, engine, nodeId: 'n1', clusterId: 'c1', log: silentLogger, ...over });
  const identity = { engine, nodeId: 'n1', clusterId: 'c1' };

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

  it('group commit: concurrent saves share fsyncs', async () => {
    const s = await open();
    const before = s.stats();
    const saves = Array.from({ length: 200 }, (_, k) =>
      s.save({ entries: [entry(k + 1, 1)], hardState: { term: 1, vote: 'n1', commit: k } }),
    );
    await Promise.all(saves);
    const after = s.stats();
    expect(after.batches - before.batches).toBe(200);
    expect(after.syncs - before.syncs).toBeLessThan(200);
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
