// Watch clients in the simulator and their check. A few watchers per run register on the nodes'
// peers through Peer.watch (what GET /watch does), each with a filter (one key, every key, a
// range), some from revision 1 (replay), some from the revision their node serves now, some
// slow (they take their frames only every few ticks, so buffers overflow), some asking for
// progress. They follow the SSE client's rules: the position is the last revision received
// (a `revision` frame's id, a progress frame's, an overflow's or closed's resume point), and
// when their node crashes, is removed, or they leave on their own, they reconnect to any live
// node from there (Last-Event-ID). A `compacted` end is the only gap a watcher accepts, and
// it is recorded.
//
// The check (after convergence, once every watcher caught up): each watcher received exactly
// the committed changes matching its filter, in revision order, with no gap and no duplicate,
// compared against the converged history (kv.eventsFrom) over the revisions it covered.

import type { KeyEvent } from '../../worker/kv/history.ts';
import { isRevisionProblem } from '../../worker/kv/state-machine.ts';
import { PeerError } from '../../worker/peer/errors.ts';
import { filterMatches, type WatchFilter, type Watcher } from '../../worker/peer/watch-room.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import type { SimCluster } from './cluster.ts';
import type { NodeCounters } from './counters.ts';
import { SIM_TICK_MS } from './options.ts';
import { violation } from './violation.ts';

interface SimWatch {
  name: string;
  filter: WatchFilter;
  /** First revision this watcher covers (set on its first registration). */
  start: number;
  /** The first revision not received yet: where it resumes. 0 until registered once. */
  next: number;
  /** Registered on this node's incarnation, or null while disconnected. */
  on: { node: NodeId; incarnation: number; watcher: Watcher } | null;
  reconnectAt: number;
  /** Takes its frames every this many ticks (1: every tick). */
  everyTicks: number;
  progressMs: number;
  received: string[];
  /** [from, to): revisions lost to compaction (announced by a `compacted` end). */
  gaps: Array<[number, number]>;
}

export function eventLine(e: KeyEvent): string {
  const r = e.record;
  return `${e.revision}|${e.type}|${e.key}|${r === undefined ? '' : `${r.value}|${r.createRevision}|${r.modRevision}|${r.version}`}`;
}

export class SimWatchers {
  private readonly watches: SimWatch[] = [];
  private readonly random: SeededRandom;
  private readonly cluster: SimCluster;
  private readonly counters: NodeCounters;
  private readonly log: (line: string) => void;

  constructor(random: SeededRandom, cluster: SimCluster, counters: NodeCounters, keys: number, log: (line: string) => void) {
    this.random = random;
    this.cluster = cluster;
    this.counters = counters;
    this.log = log;
    const filters: WatchFilter[] = [{ key: 'k0' }, { prefix: '' }, { start: 'k1', end: keys > 2 ? 'k3' : '' }, { prefix: 'k1' }];
    const count = 2 + random.nextInt(3);
    for (let i = 0; i < count; i++) {
      this.watches.push({
        name: `w${i}`,
        filter: filters[random.nextInt(filters.length)]!,
        start: 0,
        next: random.nextInt(2) === 0 ? 1 : 0, // 1: replay from the beginning; 0: from now
        on: null,
        reconnectAt: random.nextInt(100),
        everyTicks: random.nextInt(3) === 0 ? 1 + random.nextInt(6) : 1,
        progressMs: random.nextInt(2) === 0 ? SIM_TICK_MS * (2 + random.nextInt(10)) : 0,
        received: [],
        gaps: [],
      });
    }
  }

  /** `quiet`: a quiet stretch (faults.ts): now and then a client goes away, and none comes back
   *  until it ends, so peers with no watcher left may stop ticking (quiescence.ts). */
  tick(now: number, chaos: boolean, quiet = false): void {
    // Once healed, a client that hears nothing from a node outside the configuration (a joiner
    // never added holds no state) tries a member instead, as an operator would point it.
    const members = chaos ? null : this.members();
    for (const w of this.watches) {
      if (w.on !== null) {
        const node = this.cluster.nodes.get(w.on.node);
        if (node === undefined || node.incarnation !== w.on.incarnation || node.peer === null) {
          // The node crashed or was retired: the connection is gone; resume elsewhere.
          this.disconnect(w, now, 'node gone');
          continue;
        }
        if (members !== null && !members.has(node.id)) {
          w.on.watcher.close();
          this.disconnect(w, now, 'not a member');
          continue;
        }
        if (node.paused) continue; // its socket holds the frames until it wakes
        if (quiet && this.random.nextInt(5) === 0) {
          this.take(w, now); // what it was handed, then it hangs up
          if (w.on !== null) {
            w.on.watcher.close();
            this.disconnect(w, now, 'quiet');
          }
          continue;
        }
        if (now % w.everyTicks === 0 || !chaos) this.take(w, now);
        // Now and then a client moves to another node on its own (Last-Event-ID).
        if (w.on !== null && chaos && this.random.nextInt(200) === 0) {
          w.on.watcher.close();
          this.disconnect(w, now, 'moved');
        }
      }
      if (w.on === null && now >= w.reconnectAt && !quiet) this.connect(w, now, members);
    }
  }

  private members(): Set<NodeId> | null {
    const m = this.cluster.leader()?.currentMembership();
    return m === null || m === undefined ? null : new Set([...m.voters, ...m.learners]);
  }

  /** Every watcher is connected, its watcher is past `revision` and it took every frame. A
   *  client's own position moves only with frames (revisions that match nothing send none), so
   *  this is judged on the peer's side. */
  caughtUp(revision: number): boolean {
    return this.watches.every((w) => w.on !== null && w.on.watcher.next > revision && w.on.watcher.queuedFrames === 0);
  }

  describe(): string {
    return this.watches
      .map((w) => {
        if (w.on === null) return `${w.name}@${w.next} (disconnected)`;
        const x = w.on.watcher;
        const rev = this.cluster.nodes.get(w.on.node)?.peer?.revision ?? -1;
        return `${w.name}@${w.next} on ${w.on.node} (its watcher at ${x.next}, ${x.queuedFrames} frames queued${x.ended ? ', ended' : ''}; the node at revision ${rev})`;
      })
      .join(', ');
  }

  /** The check, once caughtUp(revision): each watcher's changes equal the committed ones matching
   *  its filter, from its start (or the compacted revision) through `revision`. */
  check(history: Iterable<KeyEvent>, compacted: number, revision: number): void {
    const all = [...history];
    for (const w of this.watches) {
      const from = Math.max(w.start, compacted);
      const upTo = revision + 1;
      const inGap = (revision: number) => w.gaps.some(([a, b]) => revision >= a && revision < b);
      const expected = all
        .filter((e) => e.revision >= from && e.revision < upTo && !inGap(e.revision) && filterMatches(w.filter, e.key))
        .map(eventLine);
      const got = w.received.filter((line) => Number(line.slice(0, line.indexOf('|'))) >= from);
      for (let i = 0; i < Math.max(expected.length, got.length); i++) {
        if (expected[i] !== got[i]) {
          violation(
            'watch',
            `${w.name} ${JSON.stringify(w.filter)} from ${w.start} (gaps ${JSON.stringify(w.gaps)}): change #${i} is ${got[i] ?? 'missing'}, committed: ${expected[i] ?? 'none'} ` +
              `(${got.length} received, ${expected.length} committed in [${from}, ${upTo}))`,
          );
        }
      }
      this.counters.watchEventsChecked += got.length;
    }
  }

  private connect(w: SimWatch, now: number, members: Set<NodeId> | null): void {
    const up = [...this.cluster.nodes.values()].filter((n) => n.peer !== null && !n.paused && (members === null || members.has(n.id)));
    if (up.length === 0) return;
    const node = up[this.random.nextInt(up.length)]!;
    try {
      const opts: { from?: number; progressMs: number } = { progressMs: w.progressMs };
      if (w.next > 0) opts.from = w.next;
      const watcher = node.peer!.watch(w.filter, opts);
      if (w.next === 0) w.next = w.start = watcher.next;
      else if (w.start === 0) w.start = w.next;
      w.on = { node: node.id, incarnation: node.incarnation, watcher };
      this.counters.watchRegistrations++;
      this.log(`${w.name} watches ${JSON.stringify(w.filter)} on ${node.id} from ${w.next}`);
    } catch (err) {
      if (!(err instanceof PeerError)) throw err;
      w.reconnectAt = now + 1 + this.random.nextInt(5); // removed, closing, full: another try soon
    }
  }

  private disconnect(w: SimWatch, now: number, why: string): void {
    this.log(`${w.name} disconnected from ${w.on?.node ?? '?'} (${why}) at ${w.next}`);
    w.on = null;
    w.reconnectAt = now + 1 + this.random.nextInt(8);
  }

  private take(w: SimWatch, now: number): void {
    const on = w.on!;
    for (let f = on.watcher.poll(); f !== undefined; f = on.watcher.poll()) {
      if (f.kind === 'events') {
        if (f.revision < w.next) violation('watch', `${w.name} got revision ${f.revision} again (it had everything below ${w.next})`);
        for (const e of f.events) {
          if (e.revision !== f.revision || !filterMatches(w.filter, e.key))
            violation('watch', `${w.name} got a foreign change ${eventLine(e)}`);
          w.received.push(eventLine(e));
        }
        w.next = f.revision + 1;
        this.counters.watchEventsReceived += f.events.length;
      } else if (f.kind === 'progress') {
        if (f.revision + 1 < w.next) violation('watch', `${w.name} got progress ${f.revision} behind its position ${w.next}`);
        w.next = f.revision + 1;
        this.counters.watchProgress++;
      } else {
        if (f.reason === 'compacted') {
          if (f.resume > w.next) w.gaps.push([w.next, f.resume]);
          this.counters.watchCompacted++;
        } else {
          if (f.resume < w.next) violation('watch', `${w.name} told to resume at ${f.resume}, behind its position ${w.next}`);
          if (f.reason === 'overflow') this.counters.watchOverflows++;
        }
        w.next = Math.max(w.next, f.resume);
        this.disconnect(w, now, f.reason);
        return;
      }
    }
  }
}

/** The converged history a member serves, for the check. */
export async function convergedHistory(peer: {
  read<T>(level: 'stale', q: (kv: import('../../worker/peer/peer.ts').KvView) => T): Promise<{ value: T }>;
}): Promise<{ events: KeyEvent[]; compacted: number; revision: number }> {
  const out = await peer.read('stale', (kv) => {
    const events = kv.eventsFrom(kv.compactedRevision);
    if (isRevisionProblem(events)) throw new Error('its own compacted revision is unreadable');
    return { events: [...events], compacted: kv.compactedRevision, revision: kv.revision };
  });
  return out.value;
}
