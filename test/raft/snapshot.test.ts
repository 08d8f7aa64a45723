import { describe, expect, it } from 'vitest';
import { Network, text } from './harness.ts';
import { SnapshotReceiver } from '../../worker/raft/snapshot.ts';

const E = 10;

function laggingCluster(chunkBytes: number): Network {
  const net = new Network(['a', 'b', 'c'], { config: { snapshotChunkBytes: chunkBytes } });
  net.elect('a');
  net.isolate('c');
  for (let i = 0; i < 10; i++) net.propose('a', `value-${i}`);
  net.get('a').compact();
  return net;
}

/** The first snapshot chunk at `offset` is lost (later ones, a resend, get through). */
function loseChunkOnce(net: Network, offset: number): void {
  let dropped = false;
  net.dropIf((m) => {
    if (m.type !== 'snapshot' || m.snapshot!.offset !== offset || dropped) return false;
    dropped = true;
    return true;
  });
}

/** The second chunk to the lagging follower c is lost once: c is caught up only once it is
 *  sent again, an election timeout later. */
function expectLostChunkResent(net: Network): void {
  net.heal();
  loseChunkOnce(net, 16);
  net.tick(1);
  expect(net.get('c').state).toEqual([]);
  net.tick(E);
  expect(net.get('c').state).toEqual(net.get('a').state);
}

describe('log compaction', () => {
  it('compact() drops the log up to the snapshot and keeps the rest', () => {
    const net = laggingCluster(1024);
    const st = net.raw('a').status();
    expect(st.snapshotIndex).toBe(11);
    expect(st.firstIndex).toBe(12);
    net.propose('a', 'after');
    expect(net.raw('a').status().lastIndex).toBe(12);
  });

  it('refuses to compact beyond what was applied', () => {
    const net = laggingCluster(1024);
    expect(() => net.raw('a').compact(99, new Uint8Array())).toThrow(RangeError);
  });
});

describe('InstallSnapshot in chunks', () => {
  it('a follower behind the compacted log gets the snapshot in snapshotChunkBytes pieces, then the log', () => {
    const chunk = 16;
    const net = laggingCluster(chunk);
    net.propose('a', 'after');
    net.heal();
    net.delivered = [];
    net.tick(1);
    const chunks = net.delivered.filter((m) => m.type === 'snapshot').map((m) => m.snapshot!);
    const size = net.raw('a').status().snapshotIndex && net.get('a').stored.snapshot.data.length;
    expect(chunks.length).toBe(Math.ceil(size / chunk));
    expect(chunks.every((c) => c.data.length <= chunk)).toBe(true);
    expect(chunks.map((c) => c.offset)).toEqual(chunks.map((_, i) => i * chunk));
    // The follower emitted the reassembled snapshot once, in a Ready, for the host to install.
    const installed = net.get('c').readies.filter((rd) => rd.snapshot !== undefined);
    expect(installed).toHaveLength(1);
    expect(JSON.parse(text(installed[0]!.snapshot!.data))).toEqual(Array.from({ length: 10 }, (_, i) => `value-${i}`));
    expect(net.get('c').state).toEqual(net.get('a').state);
    expect(net.raw('c').status()).toMatchObject({ commit: 12, applied: 12, snapshotIndex: 11 });
  });

  it('a follower restarted mid-transfer refuses the next chunk and the transfer starts over', () => {
    const net = laggingCluster(16);
    net.heal();
    let chunksSeen = 0;
    let restarted = false;
    net.dropIf((m) => {
      if (m.type === 'snapshot' && m.to === 'c') {
        chunksSeen++;
        if (chunksSeen === 3 && !restarted) {
          restarted = true;
          net.get('c').restart(); // the first two chunks were in volatile memory only
        }
      }
      return false;
    });
    net.tick(1);
    const offsets = net.delivered.filter((m) => m.type === 'snapshot').map((m) => m.snapshot!.offset);
    expect(offsets.slice(0, 4)).toEqual([0, 16, 32, 0]);
    expect(net.delivered.some((m) => m.type === 'snapshotResp' && m.reject === true)).toBe(true);
    expect(net.get('c').state).toEqual(net.get('a').state);
  });

  it('a lost chunk is sent again after an election timeout', () => {
    const net = laggingCluster(16);
    expectLostChunkResent(net);
  });

  it('a leader that compacts past the snapshot it is sending moves the follower on to the latest (sim F1)', () => {
    const net = laggingCluster(16);
    net.heal();
    // The transfer of snapshot@11 runs up to its last chunk, which is lost once…
    let held = false;
    net.dropIf((m) => {
      if (m.type !== 'snapshot' || !m.snapshot!.done || held) return false;
      held = true;
      return true;
    });
    net.tick(1);
    expect(held).toBe(true);
    expect(net.raw('a').status().progress['c']!.state).toBe('snapshot');
    // …while the leader moves on and compacts past it.
    for (let i = 0; i < 5; i++) net.propose('a', `more-${i}`);
    net.get('a').compact();
    expect(net.raw('a').status().snapshotIndex).toBe(16);
    // The resent last chunk completes snapshot@11, which is no longer enough for the log.
    net.tick(3 * E);
    expect(net.get('c').state).toEqual(net.get('a').state);
    expect(net.raw('a').status().progress['c']!.state).toBe('replicate');
  });

  it('a restarted leader keeps serving its snapshot to laggards', () => {
    const net = laggingCluster(1024);
    net.get('a').restart();
    net.heal();
    net.isolate('c');
    net.tickUntilLeader(['a', 'b']);
    net.heal();
    net.tick(2);
    expect(net.get('c').state).toEqual(net.get('b').state);
    expect(net.get('c').state).toHaveLength(10);
  });
});

describe('streamed snapshots (a host that keeps no snapshot bytes)', () => {
  /** laggingCluster whose nodes stream (as leaders) and stage (as followers) as asked. */
  function streamingCluster(chunkBytes: number, streams: boolean, staging: boolean): Network {
    const net = new Network(['a', 'b', 'c'], { config: { snapshotChunkBytes: chunkBytes } });
    for (const id of ['a', 'b', 'c']) net.get(id).hostStreams({ streams, staging });
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 10; i++) net.propose('a', `value-${i}`);
    net.get('a').compact();
    for (let i = 0; i < 3; i++) net.propose('a', `after-${i}`);
    return net;
  }

  const snapshotChunks = (net: Network) => net.delivered.filter((m) => m.type === 'snapshot' && m.to === 'c').map((m) => m.snapshot!);

  for (const [streams, staging] of [
    [true, true],
    [true, false],
    [false, true],
  ] as const) {
    it(`catches a follower up (leader streams: ${streams}, follower stages: ${staging})`, () => {
      const net = streamingCluster(16, streams, staging);
      net.heal();
      net.delivered = [];
      net.tick(1);
      expect(net.get('c').state).toEqual(net.get('a').state);
      expect(net.get('c').state).toHaveLength(13);
      const chunks = snapshotChunks(net);
      expect(chunks.length).toBeGreaterThan(3);
      // A streamed snapshot is of the state applied when the transfer began (14), not of the
      // compaction (11), whose bytes the core was never given.
      expect(chunks[0]!.meta.index).toBe(streams ? 14 : 11);
      const installs = net.get('c').readies.filter((rd) => rd.snapshot !== undefined);
      expect(installs).toHaveLength(1);
      expect(installs[0]!.snapshot!.staged === true).toBe(staging);
      if (staging) expect(installs[0]!.snapshot!.data.length).toBe(0);
      if (streams) {
        const opened = net.get('a').streams!;
        expect(opened).toHaveLength(1);
        expect(opened[0]!.closed).toBe(true); // the transfer ended: its view is released
      }
    });
  }

  it('a follower restarted mid-transfer gets a new stream from offset 0; the old one is closed', () => {
    const net = streamingCluster(16, true, true);
    net.heal();
    let chunksSeen = 0;
    net.dropIf((m) => {
      if (m.type === 'snapshot' && m.to === 'c' && ++chunksSeen === 3) net.get('c').restart();
      return false;
    });
    net.tick(1);
    const offsets = snapshotChunks(net).map((c) => c.offset);
    expect(offsets.slice(0, 4)).toEqual([0, 16, 32, 0]);
    const opened = net.get('a').streams!;
    expect(opened).toHaveLength(2);
    expect(opened.every((s) => s.closed)).toBe(true);
    expect(net.get('c').state).toEqual(net.get('a').state);
  });

  it('a lost chunk is read again from the stream after an election timeout', () => {
    const net = streamingCluster(16, true, true);
    expectLostChunkResent(net);
    expect(net.get('a').streams).toHaveLength(1); // resent from the same stream
  });

  it('a host that cannot stream now: the leader sends nothing it did not open, and streams once the host can', () => {
    const net = streamingCluster(16, true, true);
    net.get('a').refuseStreams = 3;
    net.heal();
    net.delivered = [];
    net.tick(1);
    // Refused: no chunk left, and the follower is probed from its own log, not from a snapshot
    // it never got.
    expect(snapshotChunks(net)).toHaveLength(0);
    expect(net.raw('a').status().progress['c']!.state).toBe('probe');
    net.tick(3 * E);
    expect(net.get('a').refuseStreams).toBe(0);
    expect(net.get('c').state).toEqual(net.get('a').state);
    expect(net.get('a').streams).toHaveLength(1);
  });

  it('a stream the host closed mid-transfer, and no new one yet: back to probing from what the follower holds', () => {
    const net = streamingCluster(16, true, true);
    net.heal();
    net.dropIf((m) => m.type === 'snapshotResp'); // the transfer stalls after its first chunk
    net.tick(1);
    const a = net.get('a');
    expect(a.streams).toHaveLength(1);
    a.streams![0]!.close(); // e.g. the host stopped it
    a.refuseStreams = Number.MAX_SAFE_INTEGER;
    net.heal();
    net.tick(E); // the stalled chunk is due again: the stream cannot serve it, none opens
    const pr = net.raw('a').status().progress['c']!;
    expect(pr.state).toBe('probe');
    expect(pr.next, 'probing where the follower log ends').toBe(pr.match + 1);
    a.refuseStreams = 0;
    net.tick(3 * E);
    expect(net.get('c').state).toEqual(a.state);
  });

  it('a leader that steps down closes the streams of its transfers under way', () => {
    const net = streamingCluster(16, true, true);
    net.heal();
    net.dropIf((m) => m.type === 'snapshotResp'); // the transfer never gets past its first chunk
    net.tick(1);
    const opened = net.get('a').streams!;
    expect(opened).toHaveLength(1);
    expect(opened[0]!.closed).toBe(false);
    net.isolate('a');
    net.tick(3 * E, ['a']); // CheckQuorum: it steps down
    expect(net.raw('a').status().role).not.toBe('leader');
    expect(opened[0]!.closed).toBe(true);
  });
});

describe('SnapshotReceiver', () => {
  const meta = { index: 5, term: 2, membership: { voters: ['a'], learners: [], addresses: {} } };
  const chunk = (offset: number, data: string, done = false) => ({ meta, offset, data: new TextEncoder().encode(data), done });

  it('reassembles in order and reports how far it is on duplicates and gaps', () => {
    const r = new SnapshotReceiver();
    expect(r.accept(chunk(0, 'ab'), 'a', 2)).toEqual({ kind: 'progress', bytes: 2 });
    expect(r.accept(chunk(0, 'ab'), 'a', 2)).toEqual({ kind: 'progress', bytes: 2 }); // duplicate: no reset
    expect(r.accept(chunk(4, 'ef'), 'a', 2)).toEqual({ kind: 'reject', bytes: 2 }); // gap
    expect(r.accept(chunk(2, 'cd'), 'a', 2)).toEqual({ kind: 'progress', bytes: 4 });
    const done = r.accept(chunk(4, 'ef', true), 'a', 2);
    expect(done.kind).toBe('complete');
    expect(text((done as { snapshot: { data: Uint8Array } }).snapshot.data)).toBe('abcdef');
  });

  it('never splices chunks of another sender or term into a transfer', () => {
    const r = new SnapshotReceiver();
    r.accept(chunk(0, 'ab'), 'a', 2);
    expect(r.accept(chunk(2, 'XY'), 'b', 3)).toEqual({ kind: 'reject', bytes: 0 });
    expect(r.accept(chunk(2, 'XY'), 'a', 3)).toEqual({ kind: 'reject', bytes: 0 });
    expect(r.accept(chunk(0, 'xy'), 'b', 3)).toEqual({ kind: 'progress', bytes: 2 }); // a new transfer
  });

  it('is active from the first chunk of a transfer until it completes or is cleared', () => {
    const r = new SnapshotReceiver();
    expect(r.active).toBe(false);
    r.accept(chunk(0, 'ab'), 'a', 2);
    expect(r.active).toBe(true);
    r.clear(); // e.g. the leader went back to appends
    expect(r.active).toBe(false);
    r.accept(chunk(0, 'ab'), 'a', 2);
    expect(r.accept(chunk(2, 'cd', true), 'a', 2).kind).toBe('complete');
    expect(r.active).toBe(false);
  });

  it('after a restart (empty buffer) refuses a chunk in the middle', () => {
    expect(new SnapshotReceiver().accept(chunk(2, 'cd'), 'a', 2)).toEqual({ kind: 'reject', bytes: 0 });
  });
});
