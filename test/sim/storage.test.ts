// The simulated disk on its own (standaloneSimDisk, the handle a PeerStorage contract suite
// uses): a save is durable once it resolves, a crash loses only what had not landed, and the
// broken disks break exactly the promise they are named after.

import { describe, expect, it } from 'vitest';
import type { PeerStorage, SaveBatch } from '../../worker/peer/ports.ts';
import type { DiskRecords } from '../../worker/kv/record-store.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';
import { summarize } from '../../worker/kv/record-summary.ts';
import { snapshotAt } from '../support/storage-batches.ts';
import { standaloneSimDisk } from './storage.ts';
import { Invariants, kvDigest } from './invariants.ts';
import { SimViolation } from './violation.ts';

const entry = (index: number, term: number) => ({ index, term, type: 'normal' as const, data: new Uint8Array([index]) });
const hs = (term: number, vote: string, commit: number) => ({ term, vote, commit });
const rec = (value: string, mod: number): KeyRecord => ({ value, createRevision: mod, modRevision: mod, version: 1 });
const recs = (prefix: string, n: number): Array<[string, KeyRecord]> =>
  Array.from({ length: n }, (_, i) => [`${prefix}${i}`, rec(`${prefix}${i}`, 10 + i)]);
/** Every record a DiskRecords shows, in key order. */
const allOf = (disk: DiskRecords): Array<[string, KeyRecord]> => {
  const out: Array<[string, KeyRecord]> = [];
  disk.walkFrom('', (k, r) => out.push([k, r]) > 0);
  return out;
};
/** A staged install of a snapshot at `index` whose staged records are `records`. */
const stagedInstall = (index: number, records: Array<[string, KeyRecord]>, stage?: SaveBatch['stage']): SaveBatch => ({
  ...(stage ? { stage } : {}),
  installSnapshot: { snapshot: snapshotAt(index, 1), kv: { revision: index, records: [], sessions: [] }, staged: summarize(records) },
});

async function tieredDisk(opts: { writeDelayTicks?: number } = {}) {
  const sim = standaloneSimDisk({ ...opts, tiered: true });
  const storage: PeerStorage = sim.open();
  const disk = (await storage.load()).tier!.disk;
  return { sim, storage, disk };
}

describe('simulated disk', () => {
  it('loads exactly what was saved, across a crash and reopen', async () => {
    const sim = standaloneSimDisk();
    const storage = sim.open();
    await storage.load();
    await storage.save({ entries: [entry(1, 1), entry(2, 1)], hardState: hs(1, 'n1', 0) });
    await storage.save({ entries: [entry(2, 2)], hardState: hs(2, 'n2', 1) });
    sim.crash();
    const loaded = await sim.open().load();
    expect(loaded.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(loaded.hardState).toEqual(hs(2, 'n2', 1));
  });

  it('on a slow disk, a crash loses the writes not yet landed, and their promises never resolve', async () => {
    const sim = standaloneSimDisk({ writeDelayTicks: 2 });
    const storage = sim.open();
    await storage.load();
    let resolved = 0;
    void storage.save({ entries: [entry(1, 1)], hardState: hs(1, 'n1', 0) }).then(() => resolved++);
    sim.advance(2);
    await Promise.resolve();
    expect(resolved).toBe(1);
    void storage.save({ entries: [entry(2, 1)] }).then(() => resolved++);
    sim.advance(1);
    sim.crash();
    sim.advance(5);
    await Promise.resolve();
    expect(resolved).toBe(1);
    const loaded = await sim.open().load();
    expect(loaded.entries.map((e) => e.index)).toEqual([1]);
  });

  it('defers derived state (ports.ts onlyDerivedState), writes it in order with the next write, loses it in a crash', async () => {
    const sim = standaloneSimDisk({ deferDerivedTicks: 10 });
    const storage = sim.open();
    await storage.load();
    await storage.save({ entries: [entry(1, 1)], hardState: hs(1, 'n1', 0) });
    const derived: SaveBatch = { hardState: hs(1, 'n1', 1) };
    await storage.save(derived);
    expect(sim.disk.hardState.commit).toBe(0);
    await storage.save({ entries: [entry(2, 1)] });
    expect(sim.disk.hardState.commit).toBe(1);
    await storage.save({ hardState: hs(1, 'n1', 2) });
    sim.crash();
    expect((await sim.open().load()).hardState.commit).toBe(1);
  });

  it('the broken disks: forget-vote drops the vote; ack-before-durable answers before landing', async () => {
    const forget = standaloneSimDisk({ mode: 'forget-vote' });
    await forget.open().save({ hardState: hs(3, 'n2', 0) });
    expect(forget.disk.hardState).toEqual(hs(3, '', 0));

    const early = standaloneSimDisk({ mode: 'ack-before-durable' });
    const storage = early.open();
    await storage.save({ entries: [entry(1, 1)] }); // resolves although nothing landed
    expect(early.disk.lastIndex()).toBe(0);
    early.crash();
    expect((await early.open().load()).entries).toEqual([]);
  });

  it('staged records (tiered disk): a reset drops what came before, an install shows exactly what was staged', async () => {
    const { sim, storage, disk } = await tieredDisk();
    const old = recs('old', 3);
    await storage.save({ entries: [entry(1, 1)], hardState: hs(1, 'n1', 1) });
    await storage.save({ kv: { revision: 3, upserts: old, deletes: [], sessionUpserts: [], sessionDeletes: [] }, applied: 1 });
    await storage.save({ stage: { reset: true, records: recs('dropped', 4) } });
    await storage.save({ stage: { reset: true, records: recs('a', 2) } });
    expect(allOf(disk)).toEqual(old); // staging shows nothing
    await storage.save({ stage: { reset: false, records: recs('b', 2) } });
    const staged = [...recs('a', 2), ...recs('b', 2), ...recs('c', 1)];
    await storage.save(stagedInstall(5, staged, { reset: false, records: recs('c', 1) }));
    expect(allOf(disk)).toEqual(staged);
    expect(sim.disk.kvState().records).toEqual(staged);
    expect(sim.disk.applied).toBe(5);
    sim.crash();
    const loaded = await sim.open().load();
    expect(allOf(loaded.tier!.disk)).toEqual(staged);
    expect(loaded.tier!.summary).toEqual(summarize(staged));
  });

  it('staged records are lost at a crash; a slow install shows its records only once it resolves', async () => {
    const { sim, storage } = await tieredDisk({ writeDelayTicks: 2 });
    const old = recs('old', 2);
    const landed = storage.save({ kv: { revision: 3, upserts: old, deletes: [], sessionUpserts: [], sessionDeletes: [] } });
    sim.advance(2);
    await landed;
    const staging = storage.save({ stage: { reset: true, records: recs('lost', 3) } });
    sim.advance(2);
    await staging;
    expect(sim.disk.model.staged.size).toBe(3);
    sim.crash();
    const next = sim.open();
    const disk = (await next.load()).tier!.disk;
    expect(sim.disk.model.staged.size).toBe(0); // the next incarnation starts with none
    expect(allOf(disk)).toEqual(old);
    // A staged install right after the restart installs only what it staged itself (here: with
    // no reset, to show the earlier incarnation's records are gone, not merely skipped).
    const staged = recs('new', 2);
    let resolved = false;
    const installing = next.save(stagedInstall(4, staged, { reset: false, records: staged })).then(() => (resolved = true));
    sim.advance(1);
    await Promise.resolve();
    expect(resolved).toBe(false);
    expect(allOf(disk)).toEqual(old);
    sim.advance(1);
    await installing;
    expect(allOf(disk)).toEqual(staged);
  });

  it('a disk that is not tiered refuses staged records', async () => {
    const sim = standaloneSimDisk();
    const storage = sim.open();
    await storage.load();
    await expect(storage.save({ stage: { reset: true, records: recs('a', 1) } })).rejects.toThrow(/need a tiered disk/);
    await expect(storage.save(stagedInstall(3, []))).rejects.toThrow(/need a tiered disk/);
  });

  it("the invariants digest a staged install's staged records, and catch a summary that does not count them", async () => {
    const { sim, storage } = await tieredDisk();
    const checks = new Invariants();
    sim.disk.observe(checks.diskObserver('n1', () => {}));
    const staged = recs('s', 3);
    await storage.save({ stage: { reset: true, records: staged.slice(0, 2) } });
    await storage.save(stagedInstall(7, staged, { reset: false, records: staged.slice(2) }));
    // Another node's digest at that index agrees only with the staged records.
    expect(() => checks.onStateDigest('n2', 7, kvDigest({ revision: 7, records: staged, sessions: [] }))).not.toThrow();
    expect(() => checks.onStateDigest('n3', 7, kvDigest({ revision: 7, records: [], sessions: [] }))).toThrow(SimViolation);
    await storage.save({ stage: { reset: true, records: staged } });
    const miscounted = stagedInstall(9, staged.slice(1));
    await expect(storage.save(miscounted)).rejects.toThrow(/staged-install: n1: staged install at 9 says/);
  });
});
