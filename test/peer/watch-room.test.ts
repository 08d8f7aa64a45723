// The watch room on its own, over a real KV state machine: replay then live with no gap or
// duplicate, whole revisions, filters, pacing of a replaying watcher, overflow of a live one,
// the per-peer limits, progress, deadlines, compaction and a state machine swapped under it.

import { describe, expect, it } from 'vitest';
import { KvStateMachine } from '../../worker/kv/state-machine.ts';
import { DEFAULT_KV_LIMITS } from '../../worker/kv/types.ts';
import { DEFAULT_WATCH_LIMITS, WatchRoom } from '../../worker/peer/watch-room.ts';
import type { WatchFrame, WatchLimits, Watcher } from '../../worker/peer/watch-room.ts';
import { PeerError } from '../../worker/peer/errors.ts';

function setup(limits: Partial<WatchLimits> = {}, retention = DEFAULT_KV_LIMITS.historyRetention) {
  const env = { kv: new KvStateMachine({ ...DEFAULT_KV_LIMITS, historyRetention: retention }), tick: 0, index: 0 };
  const room = new WatchRoom(
    { ...DEFAULT_WATCH_LIMITS, ...limits },
    () => env.kv,
    () => env.tick,
  );
  const put = (...pairs: Array<[string, string]>) => {
    env.kv.apply(++env.index, { op: 'put', pairs });
    room.notify();
  };
  const del = (...keys: string[]) => {
    env.kv.apply(++env.index, { op: 'delete', keys });
    room.notify();
  };
  return { env, room, put, del };
}

function drain(w: Watcher): WatchFrame[] {
  const out: WatchFrame[] = [];
  for (let f = w.poll(); f !== undefined; f = w.poll()) out.push(f);
  return out;
}

/** "rev:type:key=value" per change, in the order received. */
function changes(frames: WatchFrame[]): string[] {
  return frames.flatMap((f) =>
    f.kind === 'events' ? f.events.map((e) => `${e.revision}:${e.type}:${e.key}=${e.record?.value ?? ''}`) : [],
  );
}

describe('watch room', () => {
  it('replays from a past revision, then follows live changes: no gap, no duplicate, whole revisions', () => {
    const { room, put, del } = setup();
    put(['a', '1']);
    put(['b', '1'], ['a', '2']);
    const w = room.add({ filter: { prefix: '' }, from: 2, progressTicks: 0, deadlineTick: 0 });
    put(['c', '1']);
    del('a', 'zz');
    const frames = drain(w);
    expect(frames.map((f) => (f.kind === 'events' ? f.revision : f.kind))).toEqual([2, 3, 4]);
    expect(changes(frames)).toEqual(['2:put:a=2', '2:put:b=1', '3:put:c=1', '4:delete:a=']);
    const first = frames[0]!;
    const rev2 = first.kind === 'events' ? first.events[0]! : null;
    expect(rev2?.prev?.value).toBe('1'); // the version it replaced
    expect(w.next).toBe(5);
  });

  it('filters: a key, a prefix, a range; a revision without a match only moves the position', () => {
    const { room, put } = setup();
    const key = room.add({ filter: { key: 'app/x' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    const prefix = room.add({ filter: { prefix: 'app/' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    const range = room.add({ filter: { start: 'b', end: 'd' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    put(['app/x', '1'], ['app/y', '1'], ['b', '1'], ['d', '1'], ['apple', '1']);
    put(['c', '2']);
    expect(changes(drain(key))).toEqual(['1:put:app/x=1']);
    expect(changes(drain(prefix))).toEqual(['1:put:app/x=1', '1:put:app/y=1']);
    expect(changes(drain(range))).toEqual(['1:put:b=1', '2:put:c=2']);
    expect(key.next).toBe(3);
  });

  it('waits for a start above the current revision', () => {
    const { room, put } = setup();
    const w = room.add({ filter: { key: 'k' }, from: 3, progressTicks: 0, deadlineTick: 0 });
    put(['k', '1']);
    put(['k', '2']);
    expect(drain(w)).toEqual([]);
    put(['k', '3']);
    expect(changes(drain(w))).toEqual(['3:put:k=3']);
  });

  it('paces a watcher replaying history by its consumer, whatever the history length', () => {
    const { room, put } = setup({ watcherEventsMax: 3 });
    for (let i = 1; i <= 20; i++) put(['k', String(i)]);
    const w = room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    expect(w.queuedEvents).toBe(3);
    put(['k', '21']); // a write while it replays does not overflow it
    const got: WatchFrame[] = [];
    for (let f = w.poll(); f !== undefined; f = w.poll()) got.push(f);
    expect(changes(got).map((c) => Number(c.split(':')[0]))).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(w.live).toBe(true);
  });

  it('ends a live watcher that cannot take a new revision with overflow and where to resume', () => {
    const { room, put } = setup({ watcherEventsMax: 2 });
    const w = room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    put(['k', '1']);
    put(['k', '2']);
    put(['k', '3']); // nobody reads
    const frames = drain(w);
    expect(changes(frames)).toEqual(['1:put:k=1', '2:put:k=2']);
    const end = frames[frames.length - 1]!;
    expect(end).toMatchObject({ kind: 'end', reason: 'overflow', resume: 3 });
    expect(w.closed).toBe(true);
    expect(room.size).toBe(0);
  });

  it('bounds the bytes of one watcher and of the whole room', () => {
    const big = 'v'.repeat(1000);
    const one = setup({ watcherBytesMax: 2500 });
    const w = one.room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    for (let i = 0; i < 3; i++) one.put(['k', big]);
    // Revision 2 carries the value and the one it replaced: over 2500 beside revision 1.
    expect(drain(w).at(-1)).toMatchObject({ kind: 'end', reason: 'overflow', resume: 2 });

    const all = setup({ roomBytesMax: 2500 });
    const a = all.room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    const b = all.room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    all.put(['k', big]);
    all.put(['k', big]);
    expect(all.room.bytes).toBeLessThanOrEqual(2500 + 1100);
    const ended = [drain(a).at(-1), drain(b).at(-1)].filter((f) => f?.kind === 'end');
    expect(ended.length).toBeGreaterThan(0);
    expect(all.room.bytes).toBe(0);
  });

  it('refuses watchers past watchersMax; a closed watcher frees its place and its bytes', () => {
    const { room, put } = setup({ watchersMax: 2 });
    const a = room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    expect(() => room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 })).toThrow(PeerError);
    put(['k', 'x']);
    expect(room.bytes).toBeGreaterThan(0);
    a.close();
    expect(room.size).toBe(1);
    room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
  });

  it('sends progress after its interval of silence, at the revision the watcher is complete to', () => {
    const { env, room, put } = setup();
    const w = room.add({ filter: { key: 'quiet' }, from: 1, progressTicks: 5, deadlineTick: 0 });
    put(['noisy', '1']);
    env.tick = 4;
    room.tick();
    expect(drain(w)).toEqual([]);
    env.tick = 5;
    room.tick();
    expect(drain(w)).toEqual([{ kind: 'progress', revision: 1 }]);
    // A watcher ahead of this peer (resumed from a later revision) gets no progress.
    const ahead = room.add({ filter: { key: 'quiet' }, from: 9, progressTicks: 1, deadlineTick: 0 });
    env.tick = 20;
    room.tick();
    expect(drain(ahead)).toEqual([]);
  });

  it('ends at a deadline, and take() waits for the next frame', async () => {
    const { env, room, put } = setup();
    const w = room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 3 });
    const first = w.take();
    put(['k', '1']);
    expect(changes([(await first)!])).toEqual(['1:put:k=1']);
    const second = w.take();
    env.tick = 3;
    room.tick();
    expect(await second).toMatchObject({ kind: 'end', reason: 'deadline', resume: 2 });
    expect(await w.take()).toBeNull();
  });

  it('closes with compacted below the compacted revision, at once or once compaction passes a lagging watcher', () => {
    const { room, put } = setup({}, 2);
    for (let i = 1; i <= 6; i++) put(['k', String(i)]);
    const w = room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    expect(drain(w)).toEqual([expect.objectContaining({ kind: 'end', reason: 'compacted', resume: 4 })]);
  });

  it('follows a state machine swapped under it (a snapshot install) from its history, or closes with compacted', () => {
    const { env, room, put } = setup();
    put(['k', '1']);
    const w = room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    expect(changes(drain(w))).toEqual(['1:put:k=1']);
    // A leader's state two revisions ahead, restored from its snapshot.
    const leader = new KvStateMachine(DEFAULT_KV_LIMITS);
    leader.apply(1, { op: 'put', pairs: [['k', '1']] });
    leader.apply(2, { op: 'put', pairs: [['k', '2']] });
    leader.apply(3, { op: 'delete', keys: ['k'] });
    env.kv = new KvStateMachine(DEFAULT_KV_LIMITS, leader.snapshot());
    room.notify();
    expect(changes(drain(w))).toEqual(['2:put:k=2', '3:delete:k=']);

    const compacted = new KvStateMachine({ ...DEFAULT_KV_LIMITS, historyRetention: 1 });
    for (let i = 1; i <= 8; i++) compacted.apply(i, { op: 'put', pairs: [['k', String(i)]] });
    env.kv = new KvStateMachine(DEFAULT_KV_LIMITS, compacted.snapshot());
    room.notify();
    expect(drain(w)).toEqual([expect.objectContaining({ kind: 'end', reason: 'compacted' })]);
  });

  it('ends every watcher when the peer is removed, with the revision to resume from', () => {
    const { room, put } = setup();
    const w = room.add({ filter: { key: 'k' }, from: 1, progressTicks: 0, deadlineTick: 0 });
    put(['k', '1']);
    room.endAll('removed', 'p1 was removed');
    expect(drain(w).at(-1)).toMatchObject({ kind: 'end', reason: 'removed', resume: 2 });
    expect(room.size).toBe(0);
  });
});
