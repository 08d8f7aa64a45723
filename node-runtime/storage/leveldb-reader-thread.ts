// Entry point of the leveldb engine's reader thread: walks LevelDB for the event loop, which
// waits for each page (leveldb-reader.ts). classic-level reads ranges only asynchronously, and
// the state machine's walks are synchronous, so they run here, on an iterator of this thread's
// own handle to the same database (classic-level's `multithreading`: one LevelDB shared by the
// process's threads). An iterator reads one implicit snapshot from its first page to its last;
// a view holds an explicit snapshot until closed.

import { parentPort, workerData } from 'node:worker_threads';
import { ClassicLevel } from 'classic-level';
import type { FilterBuilt, FromReader, ReaderData, ToReader, WalkRequest } from './leveldb-reader-protocol.ts';
import { KeyFilter } from './key-filter.ts';

type Db = ClassicLevel<Buffer, Buffer>;
type Iter = ReturnType<Db['iterator']>;
type Snap = ReturnType<Db['snapshot']>;

if (parentPort === null) throw new Error('leveldb-reader-thread.ts runs only as a worker thread');
const starter = parentPort;
const { dir, signal, port } = workerData as ReaderData;
const db: Db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', multithreading: true });
const iters = new Map<number, Iter>();
const views = new Map<number, Snap>();
let nextView = 1;
/** A page stops growing past this many bytes (LevelDB reads ahead of it no further). */
const PAGE_BYTES = 1 << 20;

/** Answers the request the event loop is waiting for. */
function answer(m: FromReader, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

function snapshotOf(view: number): Snap | undefined {
  if (view === 0) return undefined;
  const s = views.get(view);
  if (s === undefined) throw new Error(`leveldb reader: view ${view} is not open`);
  return s;
}

function open(m: WalkRequest): Iter {
  const it = db.iterator({
    gte: Buffer.from(m.gte.buffer, m.gte.byteOffset, m.gte.byteLength),
    lt: Buffer.from(m.lt.buffer, m.lt.byteOffset, m.lt.byteLength),
    values: !m.keysOnly,
    snapshot: snapshotOf(m.view),
    highWaterMarkBytes: PAGE_BYTES,
  });
  iters.set(m.id, it);
  return it;
}

/** Up to `n` entries; fewer only at the iterator's end. (nextv may return fewer before it, once
 *  highWaterMarkBytes are read: only an empty answer is the end.) */
async function take(it: Iter, n: number): Promise<Array<[Buffer, Buffer | undefined]>> {
  const entries: Array<[Buffer, Buffer | undefined]> = [];
  while (entries.length < n) {
    const got = (await it.nextv(n - entries.length)) as Array<[Buffer, Buffer | undefined]>;
    if (got.length === 0) break;
    for (const e of got) entries.push(e);
  }
  return entries;
}

async function page(id: number, it: Iter, n: number): Promise<void> {
  const entries = await take(it, n);
  let bytes = 0;
  for (const [k, v] of entries) bytes += 8 + k.length + (v?.length ?? 0);
  const out = Buffer.allocUnsafeSlow(bytes);
  let at = 0;
  for (const [k, v] of entries) {
    at = out.writeUInt32LE(k.length, at);
    at += k.copy(out, at);
    const value = v ?? EMPTY;
    at = out.writeUInt32LE(value.length, at);
    at += value.copy(out, at);
  }
  const done = entries.length < n;
  if (done) {
    iters.delete(id);
    await it.close();
  }
  answer({ kind: 'page', page: out.buffer as ArrayBuffer, count: entries.length, done }, [out.buffer as ArrayBuffer]);
}
const EMPTY = Buffer.alloc(0);

/** The filter request being built (a newer one, or close, abandons it). */
let filtering = 0;
/** Keys read per step of a filter build: requests waiting are answered between steps. */
const FILTER_STEP = 1024;

async function buildFilter(m: Extract<ToReader, { kind: 'filter' }>): Promise<void> {
  filtering = m.id;
  const filter = new KeyFilter(m.bits);
  const it = db.keys({ gte: Buffer.from(m.gte), lt: Buffer.from(m.lt) });
  try {
    for (;;) {
      const keys = await it.nextv(FILTER_STEP);
      if (filtering !== m.id) return;
      if (keys.length === 0) break; // the end (fewer than asked is not)
      for (const k of keys) filter.addUtf16be(k, m.keyAt);
    }
  } finally {
    await it.close();
  }
  const built: FilterBuilt = { kind: 'filter', id: m.id, words: filter.words.buffer as ArrayBuffer, keys: filter.keys };
  starter.postMessage(built, [built.words]);
}

async function handle(m: ToReader): Promise<void> {
  switch (m.kind) {
    case 'walk':
      return page(m.id, open(m), m.n);
    case 'next': {
      const it = iters.get(m.id);
      if (it === undefined) throw new Error(`leveldb reader: iterator ${m.id} is not open`);
      return page(m.id, it, m.n);
    }
    case 'close-iter': {
      const it = iters.get(m.id);
      iters.delete(m.id);
      await it?.close();
      return;
    }
    case 'view': {
      const id = nextView++;
      views.set(id, db.snapshot());
      return answer({ kind: 'view', id });
    }
    case 'get': {
      const key = Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength);
      const value = await db.get(key, { snapshot: snapshotOf(m.view) });
      return answer({ kind: 'value', value: value ?? null });
    }
    case 'close-view': {
      const s = views.get(m.id);
      views.delete(m.id);
      await s?.close();
      return;
    }
    case 'filter':
      return buildFilter(m).catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        starter.postMessage({ kind: 'filter-failed', id: m.id, message } satisfies FilterBuilt);
      });
    case 'close':
      filtering = 0;
      for (const it of iters.values()) await it.close();
      for (const s of views.values()) await s.close();
      await db.close();
      answer({ kind: 'closed' });
      port.close();
  }
}

const answers = new Set<ToReader['kind']>(['walk', 'next', 'view', 'get', 'close']);

port.on('message', (m: ToReader) => {
  handle(m).catch((err: unknown) => {
    const message = err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err);
    if (answers.has(m.kind)) answer({ kind: 'failed', message });
  });
});

db.open({ createIfMissing: false }).then(
  () => starter.postMessage({ kind: 'ready' } satisfies FromReader),
  (err: unknown) => {
    starter.postMessage({ kind: 'failed', message: err instanceof Error ? err.message : String(err) } satisfies FromReader);
  },
);
