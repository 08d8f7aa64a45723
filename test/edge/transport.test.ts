// The edge transport's queueing rules, against fake peer stubs (the RPC itself is exercised by
// the cluster tests in workerd): order, one call in flight, batching, bounds, failure handling.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { RpcTransport } from '../../worker/edge/transport.ts';
import type { DeliverTarget } from '../../worker/edge/transport.ts';
import { decodeMessages } from '../../worker/raft/codec.ts';
import type { Message } from '../../worker/raft/types.ts';

function hb(to: string, term: number): Message {
  return { type: 'heartbeat', from: 'p1', to, term, commit: 0 };
}

function append(to: string, index: number, bytes: number): Message {
  return {
    type: 'append', from: 'p1', to, term: 1, index: index - 1, logTerm: 1, commit: 0,
    entries: [{ index, term: 1, type: 'normal', data: new Uint8Array(bytes) }],
  };
}

/** A fake peer whose deliver calls stay pending until the test settles them. */
class FakePeer implements DeliverTarget {
  readonly calls: Array<{ msgs: Message[]; resolve: () => void; reject: (e: Error) => void }> = [];
  deliver(batch: Uint8Array): Promise<unknown> {
    const msgs = decodeMessages(batch);
    return new Promise<void>((resolve, reject) => this.calls.push({ msgs, resolve, reject }));
  }
  terms(call: number): number[] {
    return this.calls[call]!.msgs.map((m) => m.term);
  }
}

const settle = () => new Promise<void>((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe('edge RPC transport', () => {
  it('keeps one call in flight per destination and sends what queued meanwhile as one batch, in order', async () => {
    const p2 = new FakePeer();
    const p3 = new FakePeer();
    const t = new RpcTransport((to) => (to === 'p2' ? p2 : p3));
    t.send([hb('p2', 1), hb('p3', 1)]);
    t.send([hb('p2', 2)]);
    t.send([hb('p2', 3), hb('p2', 4)]);
    await settle();
    expect(p2.calls).toHaveLength(1);
    expect(p3.calls).toHaveLength(1);
    expect(p2.terms(0)).toEqual([1]);
    p2.calls[0]!.resolve();
    await settle();
    expect(p2.calls).toHaveLength(2);
    expect(p2.terms(1)).toEqual([2, 3, 4]);
    p2.calls[1]!.resolve();
    await settle();
    expect(t.stats().sentMessages).toBe(4);
    expect(t.stats().sentBatches).toBe(2);
  });

  it('splits a backlog into batches bounded in bytes', async () => {
    const p2 = new FakePeer();
    const t = new RpcTransport(() => p2, { batchBytesMax: 2500 });
    t.send([hb('p2', 0)]);
    t.send([append('p2', 1, 1000), append('p2', 2, 1000), append('p2', 3, 1000)]);
    await settle();
    p2.calls[0]!.resolve();
    await settle();
    expect(p2.calls[1]!.msgs.map((m) => m.entries![0]!.index)).toEqual([1, 2]);
    p2.calls[1]!.resolve();
    await settle();
    expect(p2.calls[2]!.msgs.map((m) => m.entries![0]!.index)).toEqual([3]);
  });

  it('bounds each queue, dropping the oldest messages and counting them', async () => {
    const p2 = new FakePeer();
    const t = new RpcTransport(() => p2, { queueMessagesMax: 3 });
    t.send([hb('p2', 1)]); // goes out at once and stays in flight
    t.send([2, 3, 4, 5, 6].map((term) => hb('p2', term)));
    expect(t.queued()).toEqual({ p2: 3 });
    expect(t.stats().dropped.queueFull).toBe(2);
    await settle();
    p2.calls[0]!.resolve();
    await settle();
    expect(p2.terms(1)).toEqual([4, 5, 6]);
  });

  it('bounds each queue in bytes too', () => {
    const p2 = new FakePeer();
    const t = new RpcTransport(() => p2, { queueBytesMax: 3000 });
    t.send([hb('p2', 0)]);
    t.send([1, 2, 3, 4].map((i) => append('p2', i, 1000)));
    expect(t.queued()).toEqual({ p2: 2 });
    expect(t.stats().dropped.queueFull).toBe(2);
  });

  it('drops the batch and reconnects after a failed call', async () => {
    const first = new FakePeer();
    const second = new FakePeer();
    let connects = 0;
    const t = new RpcTransport(() => (++connects === 1 ? first : second));
    t.send([hb('p2', 1)]);
    t.send([hb('p2', 2)]);
    await settle();
    first.calls[0]!.reject(new Error('object reset'));
    await settle();
    expect(t.stats().dropped.callFailed).toBe(1);
    expect(connects).toBe(2);
    expect(second.terms(0)).toEqual([2]);
  });

  it('gives up on a call that does not answer within the timeout', async () => {
    vi.useFakeTimers();
    const stuck = new FakePeer();
    const fresh = new FakePeer();
    let connects = 0;
    const t = new RpcTransport(() => (++connects === 1 ? stuck : fresh), { callTimeoutMs: 1000 });
    t.send([hb('p2', 1)]);
    t.send([hb('p2', 2)]);
    await vi.advanceTimersByTimeAsync(999);
    expect(fresh.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.stats().dropped.callTimeout).toBe(1);
    expect(fresh.terms(0)).toEqual([2]);
  });

  it('sends nothing after close', async () => {
    const p2 = new FakePeer();
    const t = new RpcTransport(() => p2);
    t.close();
    t.send([hb('p2', 1)]);
    await settle();
    expect(p2.calls).toHaveLength(0);
  });
});
