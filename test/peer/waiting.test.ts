// The waiting rooms on their own: who gets answered, who gets failed, and when.

import { describe, expect, it } from 'vitest';
import { PeerError } from '../../worker/peer/errors.ts';
import { ProposalRoom, ReadRoom } from '../../worker/peer/waiting.ts';
import type { AppliedOutcome, ReadWaiter } from '../../worker/peer/waiting.ts';

const lost = (): PeerError => new PeerError('leadership-lost', 'lost');

function proposal(room: ProposalRoom, index: number, term: number, deadlineTick = 100) {
  const seen: { outcome?: AppliedOutcome; error?: PeerError } = {};
  room.add(index, { term, deadlineTick, resolve: (o) => (seen.outcome = o), reject: (e) => (seen.error = e) }, lost);
  return seen;
}

function read(room: ReadRoom, ctx: string, index = -1, requested = true, deadlineTick = 100) {
  const seen = { served: false, error: undefined as PeerError | undefined };
  const waiter: ReadWaiter = { ctx, index, requested, deadlineTick, serve: () => (seen.served = true), reject: (e) => (seen.error = e) };
  room.add(waiter);
  return seen;
}

describe('ProposalRoom', () => {
  it('answers the proposer of the applied entry and fails one whose index got another term’s entry', () => {
    const room = new ProposalRoom(10);
    const mine = proposal(room, 5, 2);
    const overwritten = proposal(room, 6, 2);
    room.applied(5, 2, { ok: true, op: 'put', revision: 9 }, lost);
    room.applied(6, 3, { ok: true, op: 'put', revision: 10 }, lost);
    expect(mine.outcome).toEqual({ index: 5, result: { ok: true, op: 'put', revision: 9 } });
    expect(overwritten.error?.code).toBe('leadership-lost');
    expect(room.size).toBe(0);
  });

  it('fails an older waiter when its index is handed out again in a later term', () => {
    const room = new ProposalRoom(10);
    const old = proposal(room, 7, 2);
    const fresh = proposal(room, 7, 4);
    expect(old.error?.code).toBe('leadership-lost');
    room.applied(7, 4, null, lost);
    expect(fresh.outcome).toEqual({ index: 7, result: null });
  });

  it('is bounded, expires by deadline, and fails everything up to a snapshot', () => {
    const room = new ProposalRoom(3);
    const a = proposal(room, 1, 1, 5);
    const b = proposal(room, 2, 1, 10);
    const c = proposal(room, 3, 1, 10);
    expect(room.hasRoom()).toBe(false);
    room.expire(5, () => new PeerError('timeout', 't'));
    expect(a.error?.code).toBe('timeout');
    expect(b.error).toBeUndefined();
    room.failUpTo(2, lost);
    expect(b.error?.code).toBe('leadership-lost');
    expect(c.error).toBeUndefined();
    expect(room.size).toBe(1);
  });
});

describe('ReadRoom', () => {
  it('serves a read once its index is released and applied, not before', () => {
    const room = new ReadRoom(10);
    const r = read(room, 'c1');
    room.serveUpTo(100);
    expect(r.served).toBe(false); // not released yet
    room.release('c1', 8);
    room.serveUpTo(7);
    expect(r.served).toBe(false);
    room.serveUpTo(8);
    expect(r.served).toBe(true);
    expect(room.size).toBe(0);
  });

  it('fails only unreleased reads when leadership is lost: released ones stay linearizable', () => {
    const room = new ReadRoom(10);
    const released = read(room, 'a');
    const pending = read(room, 'b');
    room.release('a', 3);
    room.failUnreleased(() => new PeerError('not-leader', 'x'));
    expect(pending.error?.code).toBe('not-leader');
    expect(released.error).toBeUndefined();
    room.serveUpTo(3);
    expect(released.served).toBe(true);
  });

  it('lists reads the core has not accepted yet, and expires by deadline', () => {
    const room = new ReadRoom(2);
    read(room, 'x', -1, false, 4);
    const y = read(room, 'y', -1, true, 50);
    expect(room.unrequested().map((w) => w.ctx)).toEqual(['x']);
    expect(room.hasRoom()).toBe(false);
    room.expire(4, () => new PeerError('timeout', 't'));
    expect(room.size).toBe(1);
    expect(y.error).toBeUndefined();
  });
});
