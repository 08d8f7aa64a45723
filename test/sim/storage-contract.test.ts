// The simulator's disk meets the same PeerStorage contract as the real backends (instant writes,
// and with derived state deferred as the edge defers it), and its deliberately broken modes do
// not: the storage faults the simulator plants are faults by the contract's own measure.

import { describe, expect, it } from 'vitest';
import { describeStorageContract } from '../support/describe-storage-contract.ts';
import { ContractViolation, STORAGE_CONTRACT, type StorageHarness } from '../support/storage-contract.ts';
import type { PersistenceMode } from './options.ts';
import { standaloneSimDisk } from './storage.ts';

function simHarness(opts: { deferDerivedTicks?: number; mode?: PersistenceMode } = {}): StorageHarness {
  return {
    ownMeta: {},
    refusesMalformed: false,
    mayDeferDerivedState: (opts.deferDerivedTicks ?? 0) > 0,
    async newStore() {
      const sim = standaloneSimDisk(opts);
      return {
        open: async () => sim.open(),
        crash: async () => sim.crash(),
        dispose: async () => {},
      };
    },
  };
}

describeStorageContract('simulator disk', simHarness());
describeStorageContract('simulator disk, derived state deferred', simHarness({ deferDerivedTicks: 3 }));

describe('the simulator disk broken on purpose fails the contract', () => {
  const failing = async (mode: PersistenceMode): Promise<string[]> => {
    const caught: string[] = [];
    for (const c of STORAGE_CONTRACT) {
      if (c.needsRefusal === true) continue;
      try {
        await c.run(simHarness({ mode }));
      } catch (err) {
        expect(err).toBeInstanceOf(ContractViolation);
        caught.push(c.name);
      }
    }
    return caught;
  };

  it('forget-vote: the vote does not survive', async () => {
    expect(await failing('forget-vote')).toContain(
      'every part of a batch is kept: log, hard state, KV records and sessions, applied index, meta',
    );
  });

  it('ack-before-durable: a resolved save is lost in a crash', async () => {
    const caught = await failing('ack-before-durable');
    expect(caught).toContain('a crash between saves keeps every save that resolved');
    // Nothing is wrong with it until a crash: every case without one passes.
    expect(caught.every((name) => /crash|derived/.test(name))).toBe(true);
  });
});
