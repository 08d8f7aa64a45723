// The edge transport's queueing rules, against fake peer stubs (the RPC itself is exercised by
// the cluster tests in workerd): order, one call in flight, batching, bounds, failure handling.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { RpcTransport } from '../../worker/edge/transport.ts';
import type { DeliverTarget } from '../../worker/edge/transport.ts';
import { decodeMessages, encodeMessages } from '../../worker/raft/codec.ts';
import type { Message } from '../../worker/raft/types.ts';

function hb(to: string, term: number): Message {
  return { type: 'heartbeat', from: 'p1', to, term, commit: 0 };
}

function append(to: string, index: number, bytes: number): Message {
  return {
    type: 'append',
    from: 'p1',
    to,
    term: 1,
    index: index - 1,
    logTerm: 1,
    commit: 0,
    entries: [{ index, term: 1, type: 'normal', data: new Uint8Array(bytes) }],
  };
}

/** An append that carries only the commit index (no entries). */
function commitOnly(to: string, commit: number): Message {
  return { type: 'append', from: 'p1', to, term: 1, index: commit, logTerm: 1, commit, entries: [] };
}

function ack(from: string, index: number): Message {
  return { type: 'appendResp', from, to: 'p1', term: 1, index, hintIndex: index };
}

/** A fake peer whose deliver calls stay pending until the test settles them (optionally with a reply). */
class FakePeer implements DeliverTarget {
  readonly calls: Array<{ msgs: Message[]; resolve: (reply?: unknown) => void; reject: (e: Error) => void }> = [];
  deliver(batch: Uint8Array): Promise<unknown> {
    const msgs = decodeMessages(batch);
    return new Promise<unknown>((resolve, reject) => this.calls.push({ msgs, resolve, reject }));
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

  it('hands the replies a call returns to the reply handler, and counts them', async () => {
    const p2 = new FakePeer();
    const replies: Message[][] = [];
    const t = new RpcTransport(
      () => p2,
      {},
      (bytes) => replies.push(decodeMessages(bytes)),
    );
    t.send([append('p2', 1, 10)]);
    await settle();
    p2.calls[0]!.resolve(encodeMessages([ack('p2', 1)]));
    await settle();
    expect(replies).toEqual([[ack('p2', 1)]]);
    t.send([append('p2', 2, 10)]);
    await settle();
    p2.calls[1]!.resolve(null); // nothing to say: no reply
    await settle();
    expect(replies).toHaveLength(1);
    expect(t.stats().repliesReceived).toBe(1);
    expect(t.stats().dropped.callFailed).toBe(0);
  });

  it('holds what is sent to a caller while its call is handled and returns it as one batch', async () => {
    const p1 = new FakePeer();
    const t = new RpcTransport(() => p1, { batchBytesMax: 2500 });
    expect(t.holdReplies('p1')).toBe(true);
    expect(t.holdReplies('p1')).toBe(false); // one hold per caller at a time
    t.send([ack('p2', 1), ack('p2', 2)]);
    await settle();
    expect(p1.calls).toHaveLength(0); // held, not sent
    expect(t.takeReplies('p1')).toEqual([ack('p2', 1), ack('p2', 2)]);
    expect(t.stats().repliesReturned).toBe(1);
    // Not holding any more: the next message is an ordinary call.
    t.send([ack('p2', 3)]);
    await settle();
    expect(p1.calls[0]!.msgs).toEqual([ack('p2', 3)]);
    expect(t.takeReplies('p1')).toEqual([]);
  });

  it('never lets held replies overtake messages already queued or in flight to the caller', async () => {
    const p1 = new FakePeer();
    const t = new RpcTransport(() => p1);
    t.send([ack('p2', 1)]); // in flight
    await settle();
    expect(t.holdReplies('p1')).toBe(false);
    t.send([ack('p2', 2)]);
    p1.calls[0]!.resolve();
    await settle();
    expect(p1.calls[1]!.msgs).toEqual([ack('p2', 2)]);
  });

  it('answers with one batch at most and queues the rest behind it', async () => {
    const p1 = new FakePeer();
    const t = new RpcTransport(() => p1, { batchBytesMax: 2500 });
    expect(t.holdReplies('p1')).toBe(true);
    const big = (i: number): Message => ({ ...append('p1', i, 1000), from: 'p2' });
    t.send([big(1), big(2), big(3)]);
    expect(t.takeReplies('p1').map((m) => m.entries![0]!.index)).toEqual([1, 2]);
    await settle();
    expect(p1.calls[0]!.msgs.map((m) => m.entries![0]!.index)).toEqual([3]);
  });

  it('lets a commit-only append wait up to lazyMs for company, then sends it alone', async () => {
    vi.useFakeTimers();
    const p2 = new FakePeer();
    const t = new RpcTransport(() => p2, { lazyMs: 20 });
    t.send([commitOnly('p2', 5)]);
    await vi.advanceTimersByTimeAsync(19);
    expect(p2.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(p2.calls[0]!.msgs).toEqual([commitOnly('p2', 5)]);
  });

  it('sends a waiting commit-only append with the next other message, in order', async () => {
    vi.useFakeTimers();
    const p2 = new FakePeer();
    const t = new RpcTransport(() => p2, { lazyMs: 20 });
    t.send([commitOnly('p2', 5)]);
    await vi.advanceTimersByTimeAsync(5);
    t.send([append('p2', 6, 10)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(p2.calls).toHaveLength(1);
    expect(p2.calls[0]!.msgs.map((m) => m.entries!.length)).toEqual([0, 1]);
    // Arriving during a call, it waits again rather than making a call of its own at once.
    t.send([commitOnly('p2', 6)]);
    p2.calls[0]!.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(p2.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(20);
    expect(p2.calls[1]!.msgs).toEqual([commitOnly('p2', 6)]);
    // With lazyMs 0 nothing waits.
    const p3 = new FakePeer();
    const eager = new RpcTransport(() => p3, { lazyMs: 0 });
    eager.send([commitOnly('p3', 1)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(p3.calls).toHaveLength(1);
  });

  it('puts a waiting commit-only append ahead of the replies held for that peer', async () => {
    vi.useFakeTimers();
    const p2 = new FakePeer();
    const t = new RpcTransport(() => p2, { lazyMs: 20 });
    t.send([commitOnly('p2', 5)]);
    expect(t.holdReplies('p2')).toBe(true);
    t.send([{ type: 'heartbeatResp', from: 'p1', to: 'p2', term: 1 }]);
    expect(t.takeReplies('p2').map((m) => m.type)).toEqual(['append', 'heartbeatResp']);
    await vi.advanceTimersByTimeAsync(50);
    expect(p2.calls).toHaveLength(0); // it left with the reply, not again on its own
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
