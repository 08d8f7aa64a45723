import { describe, expect, it } from 'vitest';
import { Outbox, approxMessageBytes } from '../../worker/peer/outbox.ts';
import type { Message } from '../../worker/raft/types.ts';

function append(index: number, dataBytes: number): Message {
  return {
    type: 'append',
    from: 'a',
    to: 'b',
    term: 1,
    index,
    logTerm: 1,
    commit: 0,
    entries: [{ term: 1, index: index + 1, type: 'normal', data: new Uint8Array(dataBytes) }],
  };
}

describe('Outbox (one destination’s bounded queue, shared by both transports)', () => {
  it('drops the oldest messages beyond the message bound and says how many', () => {
    const box = new Outbox({ queueMessagesMax: 3, queueBytesMax: 1 << 20, batchBytesMax: 1 << 20 });
    const dropped = [1, 2, 3, 4, 5].map((i) => box.push(append(i, 10)));
    expect(dropped).toEqual([0, 0, 0, 1, 1]);
    expect(box.takeBatch().map((m) => m.index)).toEqual([3, 4, 5]);
    expect(box.length).toBe(0);
  });

  it('drops the oldest beyond the byte bound but keeps a lone oversized message', () => {
    const size = approxMessageBytes(append(0, 1000));
    const box = new Outbox({ queueMessagesMax: 100, queueBytesMax: 2 * size, batchBytesMax: 1 << 20 });
    expect(box.push(append(1, 1000)) + box.push(append(2, 1000))).toBe(0);
    expect(box.push(append(3, 1000))).toBe(1);
    expect(box.push(append(4, 10 * 1000))).toBe(2); // alone it is over the bound, and stays
    expect(box.takeBatch().map((m) => m.index)).toEqual([4]);
  });

  it('takes batches up to the byte bound, at least one message each', () => {
    const size = approxMessageBytes(append(0, 500));
    const box = new Outbox({ queueMessagesMax: 100, queueBytesMax: 1 << 20, batchBytesMax: 2 * size });
    for (let i = 1; i <= 5; i++) box.push(append(i, 500));
    expect(box.takeBatch().map((m) => m.index)).toEqual([1, 2]);
    expect(box.takeBatch().map((m) => m.index)).toEqual([3, 4]);
    expect(box.takeBatch().map((m) => m.index)).toEqual([5]);
    expect(box.takeBatch()).toEqual([]);
    const big = new Outbox({ queueMessagesMax: 100, queueBytesMax: 1 << 20, batchBytesMax: 10 });
    big.push(append(7, 500));
    expect(big.takeBatch().map((m) => m.index)).toEqual([7]);
  });

  it('clear empties the queue and counts what it dropped', () => {
    const box = new Outbox({ queueMessagesMax: 100, queueBytesMax: 1 << 20, batchBytesMax: 1 << 20 });
    box.push(append(1, 1));
    box.push(append(2, 1));
    expect(box.clear()).toBe(2);
    expect(box.length).toBe(0);
  });
});
