// The simulated disk on its own (standaloneSimDisk, the handle a PeerStorage contract suite
// uses): a save is durable once it resolves, a crash loses only what had not landed, and the
// broken disks break exactly the promise they are named after.

import { describe, expect, it } from 'vitest';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import { standaloneSimDisk } from './storage.ts';

const entry = (index: number, term: number) => ({ index, term, type: 'normal' as const, data: new Uint8Array([index]) });
const hs = (term: number, vote: string, commit: number) => ({ term, vote, commit });

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
});
