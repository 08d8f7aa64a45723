// Waiting your turn by create revision: the recipe of etcd's `concurrency` package (Mutex,
// Election), run by the leader on behalf of a client. Each contender puts its own key
// `<prefix><lease in hex>`, attached to its lease, only if the key does not exist yet; the
// contenders are ordered by their key's create revision, and a contender holds the turn once no
// key under the prefix has a lower one. A waiter watches only its predecessor's key (the next
// lower create revision), so a release wakes one waiter, not all of them (no thundering herd).
//
// The create revision of the holder's key is a fencing token: it is larger for every later
// holder, because a holder's key is created after its predecessor's and the turn passes only
// when every lower key is gone. A resource guarded by the lock records the largest token it has
// seen and refuses an operation carrying a smaller one: a holder whose lease expired (paused,
// partitioned) and who does not know it yet is then refused, instead of writing beside the new
// holder.
//
// Time: deadlines are whole milliseconds from `now()`, given by the caller (the API passes the
// wall clock, the simulator its own), and a wait is the watch's deadline (in the peer's ticks).

import type { KeyRecord, KvCommand } from '../kv/types.ts';
import type { KvView, ReadLevel, ReadOutcome, WriteOutcome } from '../peer/outcomes.ts';
import type { WatchFilter, Watcher } from '../peer/watch-room.ts';

/** What the recipe needs of a peer (Peer has it). */
export interface TurnPeer {
  write(cmd: KvCommand): Promise<WriteOutcome>;
  read<T>(level: ReadLevel, query: (kv: KvView) => T): Promise<ReadOutcome<T>>;
  watch(filter: WatchFilter, opts: { from?: number; waitMs?: number }): Watcher;
}

/** Contenders for one turn at most (a range read of the prefix answers them all). */
export const CONTENDERS_MAX = 10_000;

/** A contender's place in the queue: its key, and that key's create revision (the fencing token). */
export interface Ticket {
  key: string;
  revision: number;
  lease: number;
}

export type TurnFailure = 'lease-not-found' | 'lost' | 'timeout';

export class TurnError extends Error {
  readonly reason: TurnFailure;
  constructor(reason: TurnFailure, message: string) {
    super(message);
    this.name = 'TurnError';
    this.reason = reason;
  }
}

/** The key a lease contends with under `prefix` (etcd: prefix + lease id in hex). */
export function contenderKey(prefix: string, lease: number): string {
  return `${prefix}${lease.toString(16)}`;
}

/** Put this lease's key under `prefix` (unless it is there already: a retry keeps its place). */
export async function enqueue(peer: TurnPeer, prefix: string, lease: number, value: string): Promise<Ticket> {
  const key = contenderKey(prefix, lease);
  const result = (await peer.write({ op: 'put', pairs: [[key, value]], compare: { key, modRevision: 0 }, lease })).result;
  if (result.ok) return { key, revision: result.revision, lease };
  if (result.code === 'lease-not-found') throw new TurnError('lease-not-found', `lease ${lease} not found`);
  if (result.code === 'compare-failed') {
    const existing = (await peer.read('default', (kv) => kv.get(key))).value;
    if (existing !== undefined) return { key, revision: existing.createRevision, lease };
    throw new TurnError('lost', `${key} vanished while it was being queued (its lease expired?)`);
  }
  throw new Error(`queueing ${key}: ${result.code}: ${'message' in result ? result.message : ''}`);
}

/** The contender holding the turn among `records`: the lowest create revision. */
export function holderOf(records: ReadonlyArray<[string, KeyRecord]>): [string, KeyRecord] | undefined {
  let holder: [string, KeyRecord] | undefined;
  for (const r of records) if (holder === undefined || r[1].createRevision < holder[1].createRevision) holder = r;
  return holder;
}

/** The contenders under `prefix` by create revision, lowest (the holder) first, and the revision read at. */
export async function contenders(peer: TurnPeer, prefix: string): Promise<{ queue: Array<[string, KeyRecord]>; revision: number }> {
  const out = await peer.read('default', (kv) => kv.range({ prefix, limit: CONTENDERS_MAX }));
  const queue = out.value.slice().sort((a, b) => a[1].createRevision - b[1].createRevision);
  return { queue, revision: out.revision };
}

/**
 * Resolves, with the revision it saw it at, once `ticket` holds the turn (no lower create
 * revision left under `prefix`: at that revision the holder is alone ahead of the queue); throws
 * TurnError 'timeout' at `deadline` (ms, by `now`) and 'lost' when the ticket's key is gone (its
 * lease expired or it was released).
 */
export async function waitTurn(
  peer: TurnPeer,
  prefix: string,
  ticket: Ticket,
  deadline: number,
  now: () => number,
  keep?: KeepAlive,
): Promise<number> {
  for (;;) {
    await keep?.run();
    const { queue, revision } = await contenders(peer, prefix);
    const mine = queue.find(([key]) => key === ticket.key);
    if (mine === undefined || mine[1].createRevision !== ticket.revision) {
      throw new TurnError('lost', `${ticket.key} is gone (released, or its lease expired)`);
    }
    let predecessor: string | null = null;
    for (const [key, record] of queue) if (record.createRevision < ticket.revision) predecessor = key;
    if (predecessor === null) return revision;
    const left = deadline - now();
    if (left <= 0) throw new TurnError('timeout', `still waiting behind ${predecessor}`);
    await deleted(peer, predecessor, revision + 1, Math.min(left, keep?.everyMs ?? left));
    if (deadline - now() <= 0) {
      // One last look: the turn may have come with the deadline.
      const last = await contenders(peer, prefix);
      if (last.queue[0]?.[0] === ticket.key) return last.revision;
      throw new TurnError('timeout', `still waiting behind ${predecessor}`);
    }
  }
}

/** A lease the waiter keeps alive while it waits (one granted for the request): renewed before
 *  each look at the queue, and at least every `everyMs`. */
export interface KeepAlive {
  everyMs: number;
  run(): Promise<unknown>;
}

/** Resolves when `key` is deleted at a revision >= `from`, or the wait ends (then the caller looks again). */
async function deleted(peer: TurnPeer, key: string, from: number, waitMs: number): Promise<void> {
  const watcher = peer.watch({ key }, { from, waitMs });
  try {
    for (;;) {
      const frame = await watcher.take();
      if (frame === null || frame.kind === 'end') return;
      if (frame.kind === 'events' && frame.events.some((e) => e.type === 'delete')) return;
    }
  } finally {
    watcher.close();
  }
}
