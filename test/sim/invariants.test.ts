// The disk-based checks on planted histories: each must throw on the bug it names and stay quiet
// on the legitimate case next to it (the campaign shows they stay quiet on real runs).

import { describe, expect, it } from 'vitest';
import type { Entry, Membership } from '../../worker/raft/types.ts';
import type { PeerStorage } from '../../worker/peer/ports.ts';
import { Invariants } from './invariants.ts';
import { SimDisk, type SaveContext } from './storage.ts';
import { SimViolation } from './violation.ts';

const THREE: Membership = { voters: ['n1', 'n2', 'n3'], learners: [], addresses: {} };
const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index, term]) });

/** Three disks watched by one Invariants; `leading` makes a node's saves a leader's. */
function cluster() {
  const inv = new Invariants();
  const leading = new Map<string, number>();
  const storages = new Map<string, PeerStorage>();
  for (const id of ['n1', 'n2', 'n3']) {
    const disk = new SimDisk({ now: () => 0, writeDelayTicks: () => 0, deferDerivedTicks: 0, mode: 'correct' });
    disk.observe(inv.diskObserver(id, () => {}));
    inv.disks.set(id, disk);
    const ctx = (): SaveContext => {
      const term = leading.get(id);
      return term === undefined ? { leaderOf: null, term: 0 } : { leaderOf: [THREE], term };
    };
    storages.set(id, disk.storage(ctx));
  }
  return { inv, leading, save: (id: string, batch: Parameters<PeerStorage['save']>[0]) => storages.get(id)!.save(batch) };
}

function invariantOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (err) {
    if (err instanceof SimViolation) return err.invariant;
    throw err;
  }
}

async function rejectsWith(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (err) {
    if (err instanceof SimViolation) return err.invariant;
    throw err;
  }
}

describe('simulator invariants on planted histories', () => {
  it('a leader committing an entry only it holds breaks commit durability; with a follower holding it, it does not', async () => {
    const c = cluster();
    c.leading.set('n1', 1);
    c.inv.onRole('n1', 'leader', 1);
    await c.save('n1', { entries: [entry(1, 1)], hardState: { term: 1, vote: 'n1', commit: 0 } });
    await c.save('n2', { entries: [entry(1, 1)], hardState: { term: 1, vote: 'n1', commit: 0 } });
    await c.save('n1', { hardState: { term: 1, vote: 'n1', commit: 1 } });
    await c.save('n1', { entries: [entry(2, 1)] });
    expect(await rejectsWith(c.save('n1', { hardState: { term: 1, vote: 'n1', commit: 2 } }))).toBe('commit-durability');
  });

  it('leader completeness: a leader must hold what was committed in an earlier term, not what a later leader committed', async () => {
    const c = cluster();
    // Entry 1 of term 1 committed in term 1 (n1 led, n2 acknowledged).
    c.leading.set('n1', 1);
    c.inv.onRole('n1', 'leader', 1);
    await c.save('n2', { entries: [entry(1, 1)], hardState: { term: 1, vote: 'n1', commit: 0 } });
    await c.save('n1', { entries: [entry(1, 1)], hardState: { term: 1, vote: 'n1', commit: 1 } });
    c.leading.delete('n1');
    // n3 leads term 2 without it: a broken election.
    c.leading.set('n3', 2);
    c.inv.onRole('n3', 'leader', 2);
    expect(await rejectsWith(c.save('n3', { hardState: { term: 2, vote: 'n3', commit: 0 } }))).toBe('leader-completeness');
  });

  it('an entry first seen committed in term 3 is not required of a term-2 leader whose write lands late', async () => {
    const c = cluster();
    c.inv.onRole('n3', 'leader', 2);
    c.leading.set('n1', 3);
    c.inv.onRole('n1', 'leader', 3);
    await c.save('n2', { entries: [entry(1, 3)], hardState: { term: 3, vote: 'n1', commit: 0 } });
    await c.save('n1', { entries: [entry(1, 3)], hardState: { term: 3, vote: 'n1', commit: 1 } });
    c.leading.set('n3', 2);
    expect(await rejectsWith(c.save('n3', { hardState: { term: 2, vote: 'n3', commit: 0 } }))).toBeNull();
  });

  it('saving apply results for an entry the disk never held breaks apply-not-durable', async () => {
    const c = cluster();
    await c.save('n2', { entries: [entry(1, 1)], hardState: { term: 1, vote: 'n1', commit: 1 } });
    const kv = { revision: 0, upserts: [], deletes: [], sessionUpserts: [], sessionDeletes: [] };
    expect(await rejectsWith(c.save('n2', { kv, applied: 2, hardState: { term: 1, vote: 'n1', commit: 2 } }))).toBe('apply-not-durable');
    const fresh = cluster();
    await fresh.save('n2', { entries: [entry(1, 1)], hardState: { term: 1, vote: 'n1', commit: 1 } });
    expect(await rejectsWith(fresh.save('n2', { kv, applied: 1 }))).toBeNull();
  });

  it('a lease read after a newer leader was elected breaks lease safety', () => {
    const inv = new Invariants();
    inv.onRole('n1', 'leader', 4);
    expect(invariantOf(() => inv.onLeaseRead('n1', 4, inv.newestLeaderTerm))).toBeNull();
    inv.onRole('n2', 'leader', 5);
    expect(invariantOf(() => inv.onLeaseRead('n1', 4, inv.newestLeaderTerm))).toBe('lease-safety');
  });
});
