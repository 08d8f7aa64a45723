// One simulated node: the production Peer (worker/peer/peer.ts), opened through Peer.open (so
// worker/peer/restart.ts bootstraps and restarts it) on every incarnation, hosted over the
// simulated disk (storage.ts), network (network.ts) and clock (clock.ts). The host does what the
// Node and edge hosts do: it calls tick() on its timer, hands inbound messages to receive(), and
// calls the peer's public client methods (write, read, membership, transfer). A crash drops the
// Peer object with everything in memory; the next incarnation loads only what was durable.
//
// Crash points (CrashPoint) are armed by the chaos schedule and fire where the peer awaits its
// storage: at save() (nothing of that batch durable; the early sends and applies of the overlap
// order in peer.handleReady already happened), the moment a write became durable but before
// save() answered (nothing after it is sent or applied), and — a plain crash — any time,
// including while writes are outstanding on a slow disk.

import { Peer, PeerError, type PeerLimits } from '../../worker/peer/peer.ts';
import type { Membership, Message, NodeId } from '../../worker/raft/types.ts';
import type { KeyRecord, KvCommand, KvLimits, KvResult } from '../../worker/kv/types.ts';
import { isRevisionProblem } from '../../worker/kv/state-machine.ts';
import { encodeState } from '../../worker/kv/codec.ts';
import { mayWaitForCompany, type SaveBatch } from '../../worker/peer/ports.ts';
import { NodeClock } from './clock.ts';
import type { NodeCounters } from './counters.ts';
import type { Invariants } from './invariants.ts';
import type { SimNetwork } from './network.ts';
import { ELECTION_TICKS, HEARTBEAT_TICKS, LEASE_DRIFT_TICKS, SIM_TICK_MS } from './options.ts';
import { SimDisk, sortedKv, type PersistenceMode, type SaveContext } from './storage.ts';
import { digestBytes, stream } from './streams.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';
import { violation } from './violation.ts';
import { LeaderContactWatch, type StrangerOutcome } from './stranger.ts';
import type { WatchLimits } from '../../worker/peer/watch-room.ts';

/**
 * Where an armed crash fires:
 *   at-save            at the next save(): the batch never reaches the disk
 *   after-early-send   at a save() whose Ready sent appends carrying entries before it (a
 *                      leader's early send, thesis §10.2.1): followers may persist and
 *                      acknowledge entries the leader's disk never gets
 *   after-early-apply  at a save() carrying apply results the peer already answered: applied
 *                      effects lost, re-applied after the restart
 *   at-durable         the moment a write becomes durable, before save() answers: durable,
 *                      never sent, applied or answered on
 */
export type CrashPoint = 'at-save' | 'after-early-send' | 'after-early-apply' | 'at-durable';
export const CRASH_POINTS: CrashPoint[] = ['at-save', 'after-early-send', 'after-early-apply', 'at-durable'];

export type ReadLevel = 'consistent' | 'default' | 'stale';

export type NodeRequest =
  | { kind: 'write'; reqId: number; cmd: KvCommand }
  | { kind: 'read'; reqId: number; key: string; level: ReadLevel }
  /** Peer.keepAlive (lease-actor.ts). */
  | { kind: 'keepalive'; reqId: number; id: number };

export type NodeAnswer =
  | { kind: 'write'; result: KvResult; index: number }
  | { kind: 'read'; value: string | null; modRevision: number }
  /** A keep-alive's answer: false when the lease is gone (or expired, its revoke due). */
  | { kind: 'keepalive'; kept: boolean }
  /** Not taken here (not leader, busy, full, …): retry, preferably at `leader`. */
  | { kind: 'refused'; leader: NodeId; code: string }
  /** The outcome is unknown (timeout, leadership lost): retry with the same stamp. */
  | { kind: 'dropped'; code: string }
  /** The leader refused a put that would grow the state past its quota: it did not apply. */
  | { kind: 'no-space' };

export interface RaftTuning {
  appendBytesMax: number;
  inflightAppendsMax: number;
}

/** Per-run host settings (drawn from the seed: options.ts). */
export interface HostSettings {
  persistence: PersistenceMode;
  /** Max ticks a write takes (0: durable within save()). */
  diskDelayTicksMax: number;
  /** Ticks derived-state batches may wait (0: never deferred). */
  deferDerivedTicks: number;
  /** A tiered disk and the peers' cache budget (options.ts tierCacheBytes), or -1: all in memory. */
  tierCacheBytes: number;
  /** The transport holds commit-only appends for company (ports.ts mayWaitForCompany). */
  transportWaits: boolean;
  limits: Partial<PeerLimits>;
  kvLimits: KvLimits;
  clockSkewPercent: number;
  tuning: RaftTuning;
  /** A stranger sends messages in this run: keep each node's LeaderContactWatch (stranger.ts). */
  watchLeaderContact: boolean;
  /** The peers' watch limits (watchers.ts draws small buffers on some seeds). */
  watchLimits?: Partial<WatchLimits>;
}

export interface NodeEnv {
  readonly seed: number;
  readonly settings: HostSettings;
  readonly network: SimNetwork;
  readonly invariants: Invariants;
  readonly counters: NodeCounters;
  now(): number;
  answer(reqId: number, from: NodeId, answer: NodeAnswer): void;
  /** A TimeoutNow just left `from` (after it was handed to the network). */
  onTimeoutNow(from: NodeId, to: NodeId): void;
  /** A check failed inside the peer's call stack (which would swallow a throw): fail the run. */
  fail(err: unknown): void;
  trace(line: string): void;
  readonly tracing: boolean;
}

export class SimHost {
  readonly id: NodeId;
  readonly disk: SimDisk;
  private readonly env: NodeEnv;
  private readonly clock: NodeClock;
  private readonly initial: Membership;
  /** Draws each write's delay on a slow disk. */
  private readonly diskRandom: SeededRandom;
  /** Orders what a paused process handles when it wakes. */
  private readonly wakeRandom: SeededRandom;
  incarnation = 0;
  /** The running peer (null while down or opening). */
  peer: Peer | null = null;
  private opening = false;
  /** Closing for a clean restart (its close() is under way). */
  private closing = false;
  /** Crash at this point. */
  crashPlan: CrashPoint | null = null;
  /** A paused process (a long GC, SIGSTOP, a starved isolate): no ticks, no messages, no
   *  requests, no disk completions until this tick. The lease guard must notice on resume. */
  pausedUntil = 0;
  /** The peer asked its host to stop ticking (TickPort.rest): until this global tick (a lease
   *  expiry; Infinity: until a call or message). Null while it wants ticks. */
  private restingUntil: number | null = null;
  /** Highest entry index sent in appends since the last save() (the early send of a Ready). */
  private sentEntriesSinceSave = 0;
  /** The leader's membership at its previous save (see Invariants.onCommit). */
  private lastMembership: Membership | null = null;
  /** Highest index applied in memory and answered, lost in a crash (re-applied after restart). */
  private lostAppliedUpTo = 0;
  /** When the peer last heard its leader (only in runs with a stranger: it costs a status()). */
  private readonly contact: LeaderContactWatch | null;

  constructor(id: NodeId, initial: Membership, env: NodeEnv) {
    this.id = id;
    this.env = env;
    this.initial = initial;
    this.clock = new NodeClock(stream(env.seed, `clock:${id}`), env.settings.clockSkewPercent);
    this.diskRandom = stream(env.seed, `disk:${id}`);
    this.wakeRandom = stream(env.seed, `wake:${id}`);
    const s = env.settings;
    this.contact = s.watchLeaderContact ? new LeaderContactWatch() : null;
    this.disk = new SimDisk({
      now: () => env.now(),
      writeDelayTicks: () => (s.diskDelayTicksMax === 0 ? 0 : this.diskRandom.nextInt(s.diskDelayTicksMax + 1)),
      deferDerivedTicks: s.deferDerivedTicks,
      mode: s.persistence,
      tiered: s.tierCacheBytes >= 0,
    });
    this.disk.onSave = (batch) => this.atSave(batch);
    this.disk.onDurable = () => {
      if (this.crashPlan !== 'at-durable') return null;
      this.env.counters.crashesAtDurable++;
      return 'crash';
    };
    this.disk.crashNow = (why) => this.crash(why);
    // A check failing inside save() would be taken by the peer for a storage failure: report it
    // to the run instead (the write still lands, as it would have).
    const checks = env.invariants.diskObserver(id, (from, to) => this.noteDurableApplied(from, to));
    const guarded = (f: () => void): void => {
      try {
        f();
      } catch (err) {
        env.fail(err);
      }
    };
    this.disk.observe({
      beforeDurable: (...args) => guarded(() => checks.beforeDurable(...args)),
      afterDurable: (...args) => guarded(() => checks.afterDurable(...args)),
    });
    env.invariants.disks.set(id, this.disk);
  }

  get up(): boolean {
    return this.peer !== null;
  }

  /** Crashed and not yet restarting (a node whose Peer.open or close() is under way is neither). */
  get down(): boolean {
    return this.peer === null && !this.opening && !this.closing;
  }

  /** A clean restart, as an operator's: close() (the ready in flight finishes, pending apply
   *  results are saved, waiting clients get `closed`, the storage closes), then open again. */
  restart(): void {
    const peer = this.peer;
    if (peer === null) return;
    const incarnation = this.incarnation;
    this.peer = null;
    this.closing = true;
    this.log('clean restart: closing');
    peer.close().then(
      () => {
        if (incarnation !== this.incarnation) return; // crashed while closing
        this.closing = false;
        this.env.counters.cleanRestarts++;
        this.start();
      },
      (err: unknown) => this.env.fail(err),
    );
  }

  /** Open a new incarnation through Peer.open from what the disk holds. */
  start(): void {
    if (this.peer !== null || this.opening) throw new Error(`${this.id} already up`);
    this.incarnation++;
    const incarnation = this.incarnation;
    this.opening = true;
    this.crashPlan = null;
    this.lastMembership = null;
    this.restingUntil = null;
    this.contact?.reset();
    const s = this.env.settings;
    const storage = this.disk.storage(() => this.saveContext());
    Peer.open({
      id: this.id,
      storage,
      transport: { send: (msgs) => this.send(msgs, incarnation) },
      clock: { nowMs: () => this.env.now() * SIM_TICK_MS },
      // As the Node and edge hosts: a resting peer is not ticked until it is called, messaged
      // or its lease timer is due (worker/peer/quiescence.ts).
      ticks: {
        rest: (wakeAtMs) => {
          if (incarnation !== this.incarnation) return;
          this.restingUntil = wakeAtMs === null ? Infinity : Math.ceil(wakeAtMs / SIM_TICK_MS);
          if (wakeAtMs !== null) this.env.counters.leaseTimers++;
          if (this.env.tracing) this.log(`rest${wakeAtMs === null ? '' : ` until ${this.restingUntil} (lease)`}`);
        },
        resume: () => {
          if (incarnation !== this.incarnation || this.restingUntil === null) return;
          this.restingUntil = null;
          this.env.counters.quiescentWakes++;
          if (this.env.tracing) this.log('resume');
        },
      },
      random: stream(this.env.seed, `node:${this.id}:${incarnation}`),
      initialMembership: this.initial,
      tickMs: SIM_TICK_MS,
      ...(s.tierCacheBytes >= 0 ? { cacheBytes: s.tierCacheBytes } : {}),
      raft: {
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: HEARTBEAT_TICKS,
        preVote: true,
        checkQuorum: true,
        appendBytesMax: s.tuning.appendBytesMax,
        inflightAppendsMax: s.tuning.inflightAppendsMax,
        uncommittedEntriesMax: 64,
        snapshotChunkBytes: 96,
        leaseDriftTicks: LEASE_DRIFT_TICKS,
      },
      kvLimits: s.kvLimits,
      limits: s.limits,
      ...(s.watchLimits === undefined ? {} : { watchLimits: s.watchLimits }),
      log: (level, event, fields) => this.onLog(incarnation, level, event, fields),
    }).then(
      (peer) => {
        if (incarnation !== this.incarnation) return; // crashed while opening
        this.opening = false;
        this.peer = peer;
        const applied = peer.staleness().applied;
        this.env.invariants.onApplied(this.id, applied, 'restart');
        this.log(
          `start #${incarnation}${this.clock.kind === 'steady' ? '' : ` (${this.clock.kind} clock)`} applied=${applied} last=${this.disk.lastIndex()}`,
        );
      },
      (err: unknown) => this.env.fail(err),
    );
  }

  /** Lose everything not durable: the Peer object, outstanding writes, deferred state. */
  crash(why: string): void {
    if (this.down) return;
    const c = this.env.counters;
    const appliedInMemory = this.peer?.staleness().applied ?? 0;
    const lost = this.disk.crash();
    if (lost.writes > 0) c.crashesDuringWrite++;
    if (appliedInMemory > this.disk.applied) this.lostAppliedUpTo = Math.max(this.lostAppliedUpTo, appliedInMemory);
    this.incarnation++; // the old peer's sends and open() are ignored from now on
    this.peer = null;
    this.closing = false;
    this.held = [];
    this.pausedUntil = 0;
    this.restingUntil = null;
    this.waitingForCompany.clear();
    this.opening = false;
    this.crashPlan = null;
    this.log(`crash (${why})${lost.writes > 0 ? `, ${lost.writes} writes lost` : ''}`);
  }

  private atSave(batch: SaveBatch): 'crash' | null {
    const c = this.env.counters;
    // The Ready being saved sent its own entries before its write: the overlap order's early send.
    const first = batch.entries?.[0]?.index;
    const early = first !== undefined && this.sentEntriesSinceSave >= first;
    this.sentEntriesSinceSave = 0;
    if (early) c.earlySendSaves++;
    const plan = this.crashPlan;
    if (plan === null || plan === 'at-durable') return null;
    if (plan === 'at-save') {
      c.crashesAtSave++;
      return 'crash';
    }
    if (plan === 'after-early-send' && early) {
      c.crashesAfterEarlySend++;
      return 'crash';
    }
    if (plan === 'after-early-apply' && batch.applied !== undefined && batch.applied > this.disk.applied) {
      c.crashesAfterEarlyApply++;
      return 'crash';
    }
    return null;
  }

  private saveContext(): SaveContext {
    const peer = this.peer;
    if (peer === null || !peer.isLeader()) {
      this.lastMembership = null;
      return { leaderOf: null, term: 0 };
    }
    const now = peer.membership();
    const leaderOf = this.lastMembership === null ? [now] : [this.lastMembership, now];
    this.lastMembership = now;
    return { leaderOf, term: peer.status().term };
  }

  private send(msgs: Message[], incarnation: number): void {
    if (incarnation !== this.incarnation) return;
    const inv = this.env.invariants;
    try {
      for (const m of msgs) {
        if (m.type === 'voteResp' && m.reject !== true) inv.onVoteGranted(m.from, m.to, m.term);
        const last = m.type === 'append' ? m.entries?.[m.entries.length - 1] : undefined;
        if (last !== undefined) this.sentEntriesSinceSave = Math.max(this.sentEntriesSinceSave, last.index);
      }
    } catch (err) {
      this.env.fail(err);
    }
    if (!this.env.settings.transportWaits) this.env.network.send(msgs, this.env.now());
    else {
      // As a batching transport may (ports.ts mayWaitForCompany): a commit-only append waits for
      // the next message to its peer, or the next tick, and leaves before it, in order.
      const out: Message[] = [];
      for (const m of msgs) {
        const waiting = this.waitingForCompany.get(m.to);
        if (waiting !== undefined) {
          out.push(...waiting);
          this.waitingForCompany.delete(m.to);
        }
        if (mayWaitForCompany(m)) {
          this.waitingForCompany.set(m.to, [m]);
          this.env.counters.heldForCompany++;
        } else out.push(m);
      }
      if (out.length > 0) this.env.network.send(out, this.env.now());
    }
    for (const m of msgs) if (m.type === 'timeoutNow') this.env.onTimeoutNow(m.from, m.to);
  }

  /** Commit-only appends held by the transport, per destination (see send). */
  private readonly waitingForCompany = new Map<NodeId, Message[]>();

  private flushWaitingForCompany(): void {
    if (this.waitingForCompany.size === 0) return;
    const out = [...this.waitingForCompany.values()].flat();
    this.waitingForCompany.clear();
    this.env.network.send(out, this.env.now());
  }

  private onLog(incarnation: number, _level: string, event: string, fields: Record<string, unknown>): void {
    if (incarnation !== this.incarnation) return;
    const c = this.env.counters;
    try {
      switch (event) {
        case 'peer.role':
          if (fields.role === 'leader') this.env.invariants.onRole(this.id, 'leader', fields.term as number);
          if (this.peer?.removed() != null && fields.role !== 'follower') {
            violation(
              'removed-campaigned',
              `${this.id} knows it was removed but became ${String(fields.role)} in term ${String(fields.term)}`,
            );
          }
          break;
        case 'peer.removed':
          c.removedLearned++;
          break;
        case 'peer.snapshot.taken':
          c.compactions++;
          break;
        case 'peer.snapshot.installed':
          c.snapshotsInstalled++;
          if (fields.staged === true) c.snapshotsStaged++;
          break;
        case 'peer.snapshot.streaming':
          c.snapshotStreams++;
          break;
        case 'peer.tick.stall':
          c.stalls++;
          break;
        case 'peer.quiesce':
          c.quiesces++;
          break;
        case 'peer.membership.applied':
          c.confChangesApplied++;
          break;
        case 'peer.transfer':
          c.transfersTaken++;
          break;
        case 'peer.stopped':
          violation('peer-stopped', `${this.id}: ${String(fields.error)}`);
      }
    } catch (err) {
      this.env.fail(err);
    }
    if (this.env.tracing) this.log(`${event} ${JSON.stringify(fields)}`);
  }

  /** One global tick: land due writes, then the node's own clock decides how many peer ticks. */
  tick(globalTick: number): void {
    if (this.paused) return;
    this.wake();
    this.flushWaitingForCompany();
    this.disk.advance();
    const n = this.clock.ticksAt(globalTick);
    if (this.restingUntil !== null && this.peer !== null) {
      if (globalTick < this.restingUntil) {
        this.env.counters.restingTicks += n;
        return;
      }
      this.env.counters.leaseWakes++;
      this.peer.wake(); // resumes ticking (TickPort.resume)
    }
    for (let i = 0; i < n && this.peer !== null; i++) {
      this.peer.tick();
      this.contact?.ticked();
    }
  }

  get paused(): boolean {
    return this.pausedUntil > this.env.now();
  }

  /** Messages and client requests that reached a paused process: its sockets buffer them, and
   *  it handles them when it wakes, before its timer's next tick. */
  private held: Array<{ messages: Message[] } | { req: NodeRequest }> = [];

  /** A process that woke up handles what queued up while it was paused, one socket's data
   *  before another's in no particular order (a client's read may come before the news that
   *  another peer leads now: only the lease guard stops a stale answer then). */
  private wake(): void {
    if (this.held.length === 0 || this.paused) return;
    const held = this.held;
    this.held = [];
    // One socket per peer (its messages in order) and per client request; sockets in any order.
    const sockets: Array<{ messages: Message[] } | { req: NodeRequest }> = [];
    const bySender = new Map<NodeId, Message[]>();
    for (const h of held) {
      if ('req' in h) {
        sockets.push(h);
        continue;
      }
      for (const m of h.messages) {
        let queue = bySender.get(m.from);
        if (queue === undefined) {
          queue = [];
          bySender.set(m.from, queue);
          sockets.push({ messages: queue });
        }
        queue.push(m);
      }
    }
    for (let i = sockets.length - 1; i > 0; i--) {
      const j = this.wakeRandom.nextInt(i + 1);
      [sockets[i], sockets[j]] = [sockets[j]!, sockets[i]!];
    }
    for (const h of sockets) {
      if ('req' in h) this.request(h.req);
      else this.receive(h.messages);
    }
  }

  receive(messages: Message[]): void {
    const peer = this.peer;
    if (peer === null) return;
    if (this.paused) {
      this.held.push({ messages });
      return;
    }
    this.wake();
    if (this.disk.outstanding > 0) {
      const c = this.env.counters;
      c.stepsDuringWrite += messages.length;
      if (peer.isLeader()) for (const m of messages) if (m.type === 'appendResp' && m.reject !== true) c.leaderAcksDuringWrite++;
    }
    peer.receive(messages);
    this.contact?.delivered(messages, () => peer.status());
  }

  /** A stranger's message (stranger.ts), handed to the peer on its own: what it did. Null when
   *  the node is down, opening or paused (the check needs its state before and after). */
  fromStranger(m: Message): StrangerOutcome | null {
    const peer = this.peer;
    if (peer === null || this.paused || this.contact === null) return null;
    const before = peer.status();
    const inContact = this.contact.inContact(before);
    const stepped = peer.receive([m]);
    return { before, after: peer.status(), inContact, stepped };
  }

  /** A client request, through the peer's public methods as the routers call them. */
  request(req: NodeRequest): void {
    const peer = this.peer;
    if (peer === null) return; // lost with the node; the client times out
    if (this.paused) {
      this.held.push({ req });
      return;
    }
    this.wake();
    const c = this.env.counters;
    if (this.disk.outstanding > 0) c.requestsDuringWrite++;
    const incarnation = this.incarnation;
    const answer = (a: NodeAnswer): void => {
      // A crashed incarnation never answers (its process is gone).
      if (incarnation !== this.incarnation) return;
      try {
        this.env.answer(req.reqId, this.id, a);
      } catch (err) {
        this.env.fail(err); // a client's check failed: the run's failure, not an unhandled rejection
      }
    };
    const refuse = (err: unknown): void => answer(this.refusal(err));
    if (req.kind === 'write') {
      peer.write(req.cmd).then((o) => answer({ kind: 'write', result: o.result, index: o.index }), refuse);
      return;
    }
    if (req.kind === 'keepalive') {
      peer.keepAlive(req.id).then((k) => answer({ kind: 'keepalive', kept: k !== null }), refuse);
      return;
    }
    const pendingBefore = req.level === 'default' ? peer.status().pendingReads : -1;
    const read = peer.read(req.level, (kv) => kv.get(req.key), [req.key]);
    // A default read that did not wait in the read room (and did not fail) was served under the
    // lease, now: by a leader no newer leader may exist beside (lease safety).
    const after = req.level === 'default' ? peer.status() : null;
    const byLease = after !== null && after.pendingReads === pendingBefore;
    const newestLeaderTerm = this.env.invariants.newestLeaderTerm;
    read.then((o) => {
      if (byLease) {
        c.leaseReads++;
        try {
          this.env.invariants.onLeaseRead(this.id, after.term, newestLeaderTerm);
        } catch (err) {
          this.env.fail(err);
        }
      }
      answer({ kind: 'read', value: o.value?.value ?? null, modRevision: o.value?.modRevision ?? 0 });
    }, refuse);
  }

  private refusal(err: unknown): NodeAnswer {
    if (!(err instanceof PeerError)) {
      this.env.fail(err);
      return { kind: 'dropped', code: 'exception' };
    }
    switch (err.code) {
      case 'timeout':
      case 'leadership-lost':
        return { kind: 'dropped', code: err.code };
      case 'no-space':
        this.env.counters.noSpace++;
        return { kind: 'no-space' };
      case 'too-large':
      case 'invalid':
      case 'member-not-found':
      case 'member-conflict':
        this.env.fail(new Error(`${this.id} refused a well-formed client operation: ${err.code}: ${err.message}`));
        return { kind: 'dropped', code: err.code };
      case 'too-many-pending':
        this.env.counters.tooManyPending++;
        return { kind: 'refused', leader: err.leader, code: err.code };
      case 'removed':
        this.env.counters.removedRefusals++;
        return { kind: 'refused', leader: err.leader, code: err.code };
      default:
        // not-leader, no-leader, busy, too-many-pending, closed, failed (and a removed member's
        // refusal): nothing was proposed, retry elsewhere.
        return { kind: 'refused', leader: err.leader, code: err.code };
    }
  }

  /** A membership change through the peer (the outcome only shows in the log and the checks). */
  changeMembership(kind: 'addLearner' | 'addVoter' | 'promote' | 'remove', node: NodeId): void {
    const peer = this.peer;
    if (peer === null) return;
    const done =
      kind === 'addLearner' || kind === 'addVoter'
        ? peer.addMember(node, `sim://${node}`, kind === 'addLearner')
        : kind === 'promote'
          ? peer.promoteMember(node)
          : peer.removeMember(node);
    done.then(
      (m) => this.log(`${kind} ${node} applied: voters ${m.voters.join(',')} learners ${m.learners.join(',')}`),
      (err: unknown) => this.log(`${kind} ${node}: ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  transferLeadership(to: NodeId): void {
    const peer = this.peer;
    if (peer === null) return;
    peer.transferLeader(to).then(
      (id) => this.log(`transfer to ${id} done`),
      (err: unknown) => this.log(`transfer to ${to}: ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  // ---- what the run reads (through the peer's public API and the disk) -----------------------

  get role(): string {
    return this.peer?.status().role ?? 'follower';
  }

  get term(): number {
    return this.peer?.status().term ?? 0;
  }

  get leader(): NodeId {
    return this.peer?.status().leader ?? '';
  }

  get appliedIndex(): number {
    return this.peer?.staleness().applied ?? 0;
  }

  /** The membership in this node's log (what it acts on), or null when down. */
  currentMembership(): Membership | null {
    return this.peer?.membership() ?? null;
  }

  lastIndex(): number {
    return this.peer?.status().lastIndex ?? 0;
  }

  commitIndex(): number {
    return this.peer?.staleness().commit ?? 0;
  }

  /** A digest of the KV records and revision this peer serves (a stale read of everything). */
  async stateDigest(): Promise<number> {
    const peer = this.peer;
    if (peer === null) throw new Error(`${this.id} is down`);
    const out = await peer.read('stale', (kv) => ({
      revision: kv.revision,
      records: kv.range({ limit: 1_000_000 }),
      tokens: kv.tokens.list(),
      compacted: kv.compactedRevision,
      history: kv.eventsFrom(kv.compactedRevision),
      leases: [...kv.leases.ttls()].sort((a, b) => a[0] - b[0]).map(([id]) => kv.leases.get(id)),
    }));
    // The history replicas keep (what reads at a revision and watches see) must agree too.
    const history = out.value.history;
    if (isRevisionProblem(history)) throw new Error(`${this.id}: its own compacted revision is unreadable`);
    const events: Array<[string, KeyRecord]> = [...history].map((e, i) => [
      `event:${String(i).padStart(8, '0')}`,
      { value: JSON.stringify(e), createRevision: 1, modRevision: 1, version: 1 },
    ]);
    events.push([`compacted:${out.value.compacted}`, { value: '', createRevision: 1, modRevision: 1, version: 1 }]);
    // The tokens as the authorizer sees them (the index), not only as records.
    const tokens: Array<[string, KeyRecord]> = out.value.tokens.map((t) => [
      `token:${t.id}`,
      { value: JSON.stringify(t), createRevision: 1, modRevision: 1, version: 1 },
    ]);
    // The leases as the lessor and the API see them (the index), with their keys.
    const leases: Array<[string, KeyRecord]> = out.value.leases.map((l) => [
      `lease:${String(l!.id).padStart(16, '0')}`,
      { value: JSON.stringify(l), createRevision: 1, modRevision: 1, version: 1 },
    ]);
    const records = [...out.value.records, ...tokens, ...leases, ...events];
    return digestBytes(encodeState(sortedKv({ revision: Math.max(1, out.value.revision), records, sessions: [] })));
  }

  /** What this node's applied state says of lease `id` and `key` (lease-actor.ts), or null
   *  while it has no peer. */
  leaseState(id: number, key: string): { applied: number; lease: boolean; key: boolean; leases: number } | null {
    const peer = this.peer;
    if (peer === null) return null;
    // A stale read answers at once, from the applied state (a removed or stopped peer refuses).
    let out: { applied: number; lease: boolean; key: boolean; leases: number } | null = null;
    peer
      .read('stale', (kv) => {
        out = { applied: 0, lease: kv.leases.get(id) !== undefined, key: kv.get(key) !== undefined, leases: kv.leases.size };
      })
      .catch(() => {});
    if (out === null) return null;
    (out as { applied: number }).applied = peer.staleness().applied;
    return out;
  }

  /** How many API tokens this member holds (for the run's counters). */
  async tokenCount(): Promise<number> {
    const peer = this.peer;
    if (peer === null) throw new Error(`${this.id} is down`);
    return (await peer.read('stale', (kv) => kv.tokens.size)).value;
  }

  /** One line of peer state for liveness failure reports. */
  describe(): string {
    const peer = this.peer;
    if (peer === null)
      return `${this.id}: ${this.opening ? 'opening' : 'down'} (disk: applied ${this.disk.applied}, last ${this.disk.lastIndex()}, ${this.disk.outstanding} writes out)`;
    const s = peer.status();
    const members = s.members.map((m) => `${m.id}${m.voter ? '' : '(l)'}${m.match === null ? '' : `@${m.match}`}`).join(',');
    return (
      `${this.id}: ${s.role} t${s.term} lead=${s.leader || '-'} commit=${s.commit} applied=${s.applied} ` +
      `log=[${s.firstIndex}..${s.lastIndex}] snap=${s.snapshotIndex} members=${members} pending=${s.pendingProposals}/${s.pendingReads} ` +
      `writesOut=${this.disk.outstanding} dropped=${JSON.stringify(s.dropped)}`
    );
  }

  /** Entries applied again after a crash lost their results (counted once the disk shows them). */
  noteDurableApplied(from: number, to: number): void {
    const upTo = Math.min(to, this.lostAppliedUpTo);
    if (upTo > from) this.env.counters.reappliedEntries += upTo - from;
  }

  private log(line: string): void {
    if (this.env.tracing) this.env.trace(`${this.id} ${line}`);
  }
}
