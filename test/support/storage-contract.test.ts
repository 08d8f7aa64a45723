// The storage contract can fail: a small storage over the reference model, with one deliberate
// flaw at a time, must be caught by the case named for it — and passes every case without one.

import { describe, expect, it } from 'vitest';
import type { LoadedState, PeerStorage, SaveBatch } from '../../worker/peer/ports.ts';
import { StateModel } from '../../node-runtime/storage/state-model.ts';
import { LogBounds } from '../../node-runtime/storage/log-bounds.ts';
import { ContractViolation, STORAGE_CONTRACT, type StorageHarness } from './storage-contract.ts';

type Flaw =
  | 'none'
  | 'forgets the last batch on reopen'
  | 'appends without truncating a conflicting suffix'
  | 'applies KV changes before a snapshot install'
  | 'delays every batch, not only derived state'
  | 'tears a batch in flight at a crash'
  | 'accepts malformed batches';

/** A store: the batches that reached it, in order. */
interface Disk {
  batches: SaveBatch[];
}

function replay(batches: SaveBatch[], flaw: Flaw): StateModel {
  const m = new StateModel();
  for (const b of batches) {
    if (flaw === 'appends without truncating a conflicting suffix' && b.entries && b.entries.length > 0) {
      const after = b.entries[b.entries.length - 1]!.index;
      const tail = m.entries.filter((e) => e.index > after);
      m.apply(b);
      m.entries.push(...tail);
    } else if (flaw === 'applies KV changes before a snapshot install' && b.installSnapshot && b.kv) {
      m.apply({ kv: b.kv });
      m.apply({ ...b, kv: undefined });
    } else {
      m.apply(b);
    }
  }
  return m;
}

class FlawedStorage implements PeerStorage {
  private readonly disk: Disk;
  private readonly flaw: Flaw;
  /** Saves not yet written, oldest first; each is written one event-loop turn after the one before. */
  private inFlight: SaveBatch[] = [];
  private chain: Promise<void> = Promise.resolve();
  private crashed = false;
  /** The store as it will be once every accepted save is written (to judge the next one). */
  private readonly accepted: StateModel;

  constructor(disk: Disk, flaw: Flaw) {
    this.disk = disk;
    this.flaw = flaw;
    this.accepted = replay(disk.batches, 'none');
  }

  async load(): Promise<LoadedState> {
    const kept = this.flaw === 'forgets the last batch on reopen' ? this.disk.batches.slice(0, -1) : this.disk.batches;
    return replay(kept, this.flaw).toLoaded();
  }

  save(batch: SaveBatch): Promise<void> {
    if (this.flaw !== 'accepts malformed batches') {
      // The Node engines' refusals (the reference for what is malformed).
      const m = this.accepted;
      try {
        new LogBounds(m.snapshot.meta.index, m.lastIndex, m.applied).admit(batch);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    this.accepted.apply(batch);
    this.inFlight.push(batch);
    if (this.flaw === 'delays every batch, not only derived state') return Promise.resolve();
    this.chain = this.chain.then(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.crashed) return new Promise<void>(() => {});
      this.disk.batches.push(this.inFlight.shift()!);
    });
    return this.chain;
  }

  async close(): Promise<void> {
    await this.chain;
    this.disk.batches.push(...this.inFlight.splice(0));
  }

  crash(): void {
    this.crashed = true;
    const next = this.inFlight[0];
    if (this.flaw === 'tears a batch in flight at a crash' && next !== undefined && next.kv !== undefined) {
      this.disk.batches.push({ ...next, kv: undefined, applied: undefined });
    }
  }
}

function harness(flaw: Flaw): StorageHarness {
  return {
    ownMeta: {},
    refusesMalformed: true,
    mayDeferDerivedState: flaw === 'delays every batch, not only derived state',
    async newStore() {
      const disk: Disk = { batches: [] };
      return {
        open: async () => new FlawedStorage(disk, flaw),
        crash: async (s) => (s as FlawedStorage).crash(),
        dispose: async () => {},
      };
    },
  };
}

async function failures(flaw: Flaw): Promise<string[]> {
  const failed: string[] = [];
  for (const c of STORAGE_CONTRACT) {
    try {
      await c.run(harness(flaw));
    } catch (err) {
      if (!(err instanceof ContractViolation)) throw err;
      failed.push(c.name);
    }
  }
  return failed;
}

describe('the storage contract catches a flawed storage', () => {
  it('passes the model without a flaw (so the failures below are the flaws)', async () => {
    expect(await failures('none')).toEqual([]);
  });

  const caughtBy: Array<[Flaw, string]> = [
    ['forgets the last batch on reopen', 'every part of a batch is kept: log, hard state, KV records and sessions, applied index, meta'],
    ['appends without truncating a conflicting suffix', 'an entry at an existing index replaces it and every entry after it'],
    ['applies KV changes before a snapshot install', 'the parts of one batch apply in the documented order'],
    [
      'delays every batch, not only derived state',
      'derived state (onlyDerivedState) is written in order with later batches, or lost with them',
    ],
    ['tears a batch in flight at a crash', 'a crash with saves in flight keeps a prefix of them holding every resolved one'],
    ['accepts malformed batches', 'malformed batches are refused and leave no trace'],
  ];
  for (const [flaw, name] of caughtBy) {
    it(`${flaw}: caught by "${name}"`, async () => {
      expect(await failures(flaw)).toContain(name);
    });
  }
});
