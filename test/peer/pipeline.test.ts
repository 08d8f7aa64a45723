// The leader's write overlaps replication (its appends leave before its own save is durable),
// and a write is answered as soon as it is committed and durable on a majority including the
// leader — not one save later. The leader's saves are held in flight by the test.

import { afterEach, describe, expect, it } from 'vitest';
import type { KvCommand } from '../../worker/kv/types.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import { TestCluster } from './cluster.ts';

const put = (key: string, value: string): KvCommand => ({ op: 'put', pairs: [[key, value]] });

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

/** Queues every save of `id` until the test releases it: `release()` lets the oldest complete. */
function holdSaves(c: TestCluster, id: NodeId): { pending(): number; release(): void; stop(): void } {
  const storage = c.storages.get(id)!;
  const save = storage.save.bind(storage);
  const queued: Array<() => void> = [];
  let holding = true;
  storage.save = (batch) => {
    if (!holding) return save(batch);
    return new Promise<void>((resolve, reject) => queued.push(() => void save(batch).then(resolve, reject)));
  };
  return {
    pending: () => queued.length,
    release: () => queued.shift()!(),
    stop: () => {
      holding = false;
      for (const go of queued.splice(0)) go();
    },
  };
}

const holds = (c: TestCluster, id: NodeId, key: string) =>
  c.disks.get(id)!.entries.some((e) => new TextDecoder().decode(e.data).includes(key));

describe('peer: leader write in parallel with replication', () => {
  it('followers persist a new entry while the leader still writes it; the answer waits for the leader', async () => {
    const c = (cluster = await TestCluster.start());
    const leader = await c.waitLeader();
    await c.drive(leader.write(put('warm', 'up')));
    const followers = c.followers();

    const saves = holdSaves(c, leader.id);
    try {
      let answered = false;
      const write = leader.write(put('k', 'v')).then((out) => {
        answered = true;
        return out;
      });
      await c.settle();
      expect(saves.pending()).toBe(1);
      // The appends went out before the leader's save: both followers hold the entry durably.
      for (const f of followers) expect(holds(c, f, 'k'), `${f} holds k`).toBe(true);
      expect(holds(c, leader.id, 'k')).toBe(false);
      // A majority of followers acknowledged it, but the leader's own copy is not durable: no answer.
      expect(answered).toBe(false);

      // The leader's save completes; its next save (commit index, apply results) stays held, and
      // the answer does not wait for it.
      saves.release();
      await c.settle();
      expect(holds(c, leader.id, 'k')).toBe(true);
      expect(saves.pending()).toBe(1);
      expect(answered).toBe(true);
      expect((await write).result).toMatchObject({ ok: true, op: 'put' });
    } finally {
      saves.stop();
    }
    await c.settle();
  });

  it('a leader that dies with its save in flight acknowledged nothing, and the entry its followers hold survives', async () => {
    const c = (cluster = await TestCluster.start());
    const leader = await c.waitLeader();
    await c.drive(leader.write(put('warm', 'up')));
    const old = leader.id;
    holdSaves(c, old);
    let answered = false;
    void leader.write(put('k', 'v')).then(
      () => (answered = true),
      () => undefined,
    );
    await c.settle();
    c.crash(old);
    expect(answered).toBe(false);
    expect(holds(c, old, 'k')).toBe(false);

    const next = await c.waitLeader();
    expect(next.id).not.toBe(old);
    // The followers' copies make it committable by the new leader (Raft may keep it; nothing was promised).
    await c.drive(next.write(put('after', 'x')));
    const value = (await c.drive(next.read('consistent', (kv) => kv.get('k')?.value))).value;
    expect(value).toBe('v');
    await c.open(old);
    await c.until(() => c.peer(old).status().applied >= next.status().applied, 200, `${old} catches up`);
    expect((await c.peer(old).read('stale', (kv) => kv.get('k')?.value)).value).toBe('v');
  });
});
