// The edge PeerStorage against real workerd SQLite (via a probe Durable Object): the PeerStorage
// contract (test/support/storage-contract.ts), run inside workerd by the probe, once with derived
// state deferred and once with every batch written at once; then what is particular to the edge:
// a batch that fails part-way rolls back, derived state really waits (and a crash loses it),
// the flush timer, and chunking of payloads over the platform's 2 MB row cap.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestHarness } from 'wrangler';
import type { Entry, Snapshot } from '../../worker/raft/types.ts';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { DerivedStats } from '../../worker/edge/storage.ts';
import { DurableObjectPeerStorage, ROW_BLOB_BYTES_MAX } from '../../worker/edge/storage.ts';
import type { DurableStorageLike } from '../../worker/edge/sql.ts';
import { DEFAULT_KV_LIMITS, STORAGE_ROW_BYTES_MAX } from '../../worker/kv/types.ts';
import type { KeyRecord, SessionRecord } from '../../worker/kv/types.ts';
import { encodePast, historyKey } from '../../worker/kv/history.ts';
import { defaultRaftConfig } from '../../worker/raft/config.ts';
import { restartFrom } from '../../worker/peer/restart.ts';
import { STORAGE_CONTRACT } from '../support/storage-contract.ts';
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
    contract: async (name: string) => (await call<{ result: 'passed' | 'skipped' }>({ op: 'contract', name })).result,
    /** Runs a case of fixtures/records-cases.ts or staged-cases.ts inside workerd. */
    records: async <T>(name: string) => (await call<{ result: T }>({ op: 'records', name })).result,
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
    kv: {
      revision: index,
      upserts: [[key, { value: key, createRevision: index, modRevision: index, version: 1 }]],
      deletes: [],
      sessionUpserts: [],
      sessionDeletes: [],
    },
    applied: index,
  };
}

// Derived state deferred (for longer than any case takes: only a write, a close or a flush writes
// it), and not deferred at all.
for (const flushMs of [600_000, 0]) {
  describe(`PeerStorage contract: edge Durable Object storage in workerd, flushMs ${flushMs}`, () => {
    for (const c of STORAGE_CONTRACT) {
      it(c.name, async (ctx) => {
        // The edge does not refuse malformed batches (the peer never makes them); the probe
        // says so by skipping that case.
        if ((await probe(flushMs).contract(c.name)) === 'skipped') ctx.skip();
      });
    }
  });
}

describe('edge storage (Durable Object SQLite)', () => {
  it('a batch that fails part-way leaves no trace (one transaction)', async () => {
    const p = probe();
    await p.save({ entries: [entry(1, 1, 'kept')], hardState: { term: 1, vote: '', commit: 0 } });
    // The entries and KV parts are written before the hard state, whose NULL vote violates
    // NOT NULL: the whole batch must roll back.
    const bad = {
      entries: [entry(1, 3, 'replaced'), entry(2, 3, 'added')],
      kv: {
        revision: 9,
        upserts: [['x', { value: 'x', createRevision: 9, modRevision: 9, version: 1 }]],
        deletes: [],
        sessionUpserts: [],
        sessionDeletes: [],
      },
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

  it('derived state really waits for the next write, and a crash before it loses only it', async () => {
    // The contract allows this; here we see the edge does it (so the contract's deferral rules
    // are exercised above, not vacuously met).
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
    expect(() => restartFrom(crashed.state, noMembers)).not.toThrow();
    // Again, now followed by a log append: it is written with the append (merged), not lost.
    await p.save({ hardState: { term: 1, vote: 'p1', commit: 2 }, ...applied(2, 'a') });
    await p.save({ entries: [entry(3, 1, 'c')] });
    expect(await p.derived()).toMatchObject({ deferred: 1, merged: 1, waiting: 0 });
    expect((await p.crashLoad()).lost).toBe(0);
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

describe('edge storage: the platform row limit', () => {
  const { keyBytesMax, valueBytesMax, commandBytesMax } = DEFAULT_KV_LIMITS;
  const record = (value: string, revision: number): KeyRecord => ({ value, createRevision: 1, modRevision: revision, version: revision });
  const changes = (upserts: Array<[string, KeyRecord]>, sessionUpserts: Array<[string, SessionRecord]> = []) => ({
    revision: 2,
    upserts,
    deletes: [],
    sessionUpserts,
    sessionDeletes: [],
  });

  it('the limits are derived from the row limit: a largest key (UTF-16 in its BLOB) and value fit one row, chunks fit with room', () => {
    expect(2 * keyBytesMax + valueBytesMax + 1024).toBeLessThanOrEqual(STORAGE_ROW_BYTES_MAX);
    // The storage checks it when constructed: a key counts two bytes per code unit.
    const noStorage = {} as DurableStorageLike;
    const tooLong = { keyBytesMax: 500_000, valueBytesMax: 1_000_000 }; // fits as UTF-8, not as UTF-16
    expect(tooLong.keyBytesMax + tooLong.valueBytesMax + 1024).toBeLessThanOrEqual(STORAGE_ROW_BYTES_MAX);
    expect(() => new DurableObjectPeerStorage(noStorage, tooLong)).toThrow(/do not fit one 2000000-byte row/);
    expect(valueBytesMax).toBe(1024 * 1024);
    expect(commandBytesMax).toBe(2 * valueBytesMax);
    expect(ROW_BLOB_BYTES_MAX).toBeLessThan(STORAGE_ROW_BYTES_MAX);
  });

  it('writes the largest allowed key and value, as a record and as the history record it leaves, and reads them back', async () => {
    const p = probe();
    const key = 'k'.repeat(keyBytesMax);
    // Multi-byte characters: the row is measured in UTF-8 bytes, as the limit is.
    const value = 'é'.repeat(valueBytesMax / 2);
    const past = historyKey(2, key);
    await p.save({ kv: changes([[key, record(value, 2)]]), applied: 2 });
    await p.save({
      kv: changes([[past, { value: encodePast(record(value, 1)), createRevision: 2, modRevision: 2, version: 1 }]]),
      applied: 3,
    });
    const state = await p.load();
    expect(state.kv.records.map(([k]) => k).sort()).toEqual([key, past].sort());
    expect(state.kv.records.find(([k]) => k === key)![1].value).toBe(value);
  });

  it('writes the largest allowed batch: a full append of largest commands, their largest values applied, a kept answer', async () => {
    const appendBytesMax = defaultRaftConfig('_', { nextInt: () => 0 }).appendBytesMax;
    const count = Math.floor(appendBytesMax / commandBytesMax);
    const entries: Entry[] = Array.from({ length: count }, (_, i) => {
      const data = new Uint8Array(commandBytesMax);
      data.fill(i + 1);
      return { index: i + 1, term: 1, type: 'normal', data };
    });
    const values: Array<[string, KeyRecord]> = Array.from({ length: count }, (_, i) => [`big-${i}`, record('v'.repeat(valueBytesMax), 2)]);
    const session: SessionRecord = { seq: 1, result: { ok: true, op: 'put', revision: 2 }, lastIndex: count };
    const p = probe();
    await p.save({
      entries,
      hardState: { term: 1, vote: 'p1', commit: count },
      kv: changes(values, [['client-1', session]]),
      applied: count,
    });
    const state = await p.load();
    expect(state.entries).toHaveLength(count);
    for (let i = 0; i < count; i++) expect(sameBytes(state.entries[i]!.data, entries[i]!.data)).toBe(true);
    expect(state.kv.records.map(([k, r]) => [k, r.value.length])).toEqual(values.map(([k]) => [k, valueBytesMax]));
    expect(state.kv.sessions).toEqual([['client-1', session]]);
  });

  it('refuses a row above the limit before writing it, naming it, and the whole batch rolls back', async () => {
    const p = probe();
    await p.save({ entries: [entry(1, 1, 'kept')], hardState: { term: 1, vote: '', commit: 0 } });
    const tooBig = 'x'.repeat(STORAGE_ROW_BYTES_MAX);
    const batch: SaveBatch = {
      entries: [entry(2, 1, 'not kept')],
      hardState: { term: 1, vote: '', commit: 0 },
      kv: changes([['a', record(tooBig, 2)]]),
    };
    await expect(p.save(batch)).rejects.toThrow(/refusing to write a \d+-byte row to records .*limited to 2000000 bytes/);
    const state = await p.load();
    expect(state.entries).toEqual([entry(1, 1, 'kept')]);
    expect(state.kv.records).toEqual([]);
    // A session's kept answer is measured too.
    const q = probe();
    const answer: SessionRecord = { seq: 1, result: { ok: false, code: 'invalid', revision: 1, message: tooBig }, lastIndex: 1 };
    await expect(q.save({ entries: [entry(1, 1, 'c')], kv: changes([], [['c', answer]]), applied: 1 })).rejects.toThrow(
      /row to session \(client "c"\)/,
    );
    const after = await q.load();
    expect(after.kv.sessions).toEqual([]);
    expect(after.entries).toEqual([]);
  });
});

// The key space's table as DiskRecords (worker/edge/records.ts), each case run inside workerd
// (fixtures/records-cases.ts, fixtures/staged-cases.ts say what each checks).
describe('edge records (the tier)', () => {
  it('get, walkFrom and changedSince match a reference after random batches (derived ones deferred), and after a reopen', async () => {
    const r = await probe().records<Record<string, number>>('random reads');
    expect(r.checks).toBe(150);
    expect(r.installs).toBeGreaterThan(0);
    expect(r.derived).toBeGreaterThan(0);
  });

  it('the checker catches a walk that skips the first key, a wrong changedSince bound and a stale get', async () => {
    const [walk, since, get] = await probe().records<string[]>('checker catches');
    expect(walk).toMatch(/^walkFrom/);
    expect(since).toMatch(/^changedSince/);
    expect(get).toMatch(/^get/);
  });

  it('views keep the records as of their opening while saves, installs and closes go on (random, against references)', async () => {
    const r = await probe().records<Record<string, number>>('random views');
    expect(r.viewsOpened).toBeGreaterThan(30);
    expect(r.installs).toBeGreaterThan(30);
    expect(r.checks).toBeGreaterThan(600);
    expect(r.preImageWrites).toBeGreaterThan(0);
  });

  for (const flaw of ['no pre-image for deletes', 'pre-image stored twice, the later wins', 'view walk ignores pre-images']) {
    it(`the view checker catches a planted bug: ${flaw}`, async () => {
      expect(await probe().records<string>(`planted: ${flaw}`)).toMatch(/^caught: .*view \d+: (get|walkFrom|changedSince)/);
    });
  }

  it('views: fixed cases, closing twice, reads after close throw, a storage close drops them', async () => {
    expect((await probe().records<{ preImages: number }>('views keep their records')).preImages).toBeGreaterThan(0);
  });

  it('a save that fails after replacing the records under a view rolls back whole, the view with it', async () => {
    expect(await probe().records<string>('failed install under a view')).toMatch(/refusing to write/);
  });

  it('walks and changedSince are served by the primary key and the mod index, with no sort', async () => {
    const plans = await probe().records<{ walk: string; changed: string }>('query plans');
    expect(plans.walk).toBe('SEARCH records USING PRIMARY KEY (k>?)');
    expect(plans.changed).toMatch(/^SEARCH records USING COVERING INDEX records_mod \(\(mod,k\)>\(\?,\?\)\)$/);
  });

  it('derived batches still waiting are seen by get without being written, and by walks, changedSince and views', async () => {
    const r = await probe().records<{ walked: string[]; changed: string[]; inView: string[] }>('derived visible');
    expect(r).toEqual({ walked: ['a=a2'], changed: ['b'], inView: ['a=a2', 'b=b3', 'c=c4'] });
  });

  it('a staged install swaps the staged records in, with their summary, the snapshot and an empty log; after a reopen too', async () => {
    expect(await probe().records('staged install')).toEqual({ staged: 80 });
  });

  it('a view keeps the old records through staged and plain installs (a retired table, dropped by its last view); a staged install with records is refused', async () => {
    const r = await probe().records<{ refused: string }>('view through installs');
    expect(r.refused).toMatch(/staged snapshot install carries 1 records/);
  });

  it('a database with the old kv table is moved to records once, in one transaction (a bad row leaves kv as it was)', async () => {
    const r = await probe().records<{ moved: number; failed: string }>('migration');
    expect(r.moved).toBeGreaterThan(1500);
    expect(r.failed).toMatch(/expected an integer/);
  });

  it('open drops what a crash left of views, retired tables and staged records; an unknown summary is counted once', async () => {
    expect(await probe().records('leftovers')).toEqual({ preImages: 2, retired: 1, staged: 30 });
  });
});
