// One Raft peer: the loop that joins the Raft core, the KV state machine and the host ports
// (the peer layer of worker/README.md). This is the one place the Ready contract (worker/raft/types.ts) is
// carried out:
//
//   1. persist   one storage.save per ready: snapshot install, entries, hard state — plus the
//                apply results not saved yet (kv changes + applied index, and a compaction
//                snapshot), folded in because they only ever trail the log they came from;
//   2. send      only after the save resolved (persist before you speak) — except a leader's
//                appends and heartbeats, which the core allows out while the leader's own
//                write is under way (RawNode.splitMessages), so that write overlaps the
//                followers' (Raft thesis §10.2.1);
//   3. apply     committed entries to the KV state machine, answer the waiting proposals —
//                before the save when they are durable already (they committed through an
//                earlier ready), after it otherwise;
//   4. release   read states, serve reads whose index is applied;
//   5. advance.
//
// One ready is in flight at a time. Inputs (client proposals, inbound messages, ticks) that
// arrive while a save is under way accumulate in the core and leave together in the next ready,
// so concurrent requests share one save (group commit). Apply results that no later ready picks
// up are flushed on the next tick (or by close()).
//
// Beside the loop, in their own files: when to snapshot and the sliced encoding
// (snapshot-job.ts), whether the leader lease may be trusted (lease-guard.ts), when the group
// sleeps and the host may stop ticking (quiescence.ts), the status and
// health reports (status.ts), the waiting rooms (waiting.ts) and where a restart starts from
// (restart.ts).

import { decodeConfChange } from '../raft/codec.ts';
import { KvStateMachine } from '../kv/state-machine.ts';
import type { DiskRecords } from '../kv/record-store.ts';
import { DEFAULT_CACHE_BYTES, openTiered, type TierOptions } from './record-tier.ts';
import { summarize } from '../kv/record-summary.ts';
import { SnapshotStager, SnapshotStreams } from './snapshot-streams.ts';
import { invariant } from '../raft/assert.ts';
import { decodeCommand, decodeState, encodeCommand } from '../kv/codec.ts';
import { validateCommand } from '../kv/validate.ts';
import type { ConfChange, Entry, Membership, Message, NodeId, ProposeRefusal, Ready, Role } from '../raft/types.ts';
import type { KvCommand, KvLimits, KvResult, KvState, RecordSummary } from '../kv/types.ts';
import { DEFAULT_KV_LIMITS } from '../kv/types.ts';
import type { Clock, PeerStorage, PeerTransport, SaveBatch } from './ports.ts';
import { PeerError, learnerBehindError, lostError, notLeaderError, refusalError, removedError, timeoutError } from './errors.ts';
import { applyConfChange, cloneMembership, confChangeProblem, isLearner, isMember, isVoter } from '../raft/membership.ts';
import { defaultRaftConfig } from '../raft/config.ts';
import { DEFAULT_PEER_LIMITS, DEFAULT_TICK_MS, TIERED_PEER_LIMITS, REQUEST_TIMEOUT_MS, requestTimeoutTicksFor } from './options.ts';
import type { PeerLimits, PeerLog, PeerOptions } from './options.ts';
import { createCore } from './core.ts';
import type { RaftCore } from './core.ts';
import { campaignsAtStart, restartFrom } from './restart.ts';
import type { TokenView } from '../kv/tokens.ts';
import type { Health, KvView, PeerStatus, ReadLevel, ReadOutcome, Staleness, WriteOutcome } from './outcomes.ts';
import { SnapshotJob } from './snapshot-job.ts';
import type { StateView } from '../kv/state-view.ts';
import { LeaseGuard } from './lease-guard.ts';
import { LeaderContact, peerHealth, peerStatus } from './status.ts';
import { PeerCounters } from './counters.ts';
import { REMOVED_META_KEY, decodeRemoval, encodeRemoval, noticeProvesRemoval, removalNotice } from './removal.ts';
import type { Removal } from './removal.ts';
import { DropLogLimit, FORMER_MEMBERS_META_KEY, SenderFilter, decodeFormerMembers } from './senders.ts';
import { CatchUpRoom, ProposalRoom, ReadRoom, TransferRoom } from './waiting.ts';
import { Lessor } from './lessor.ts';
import type { LeaseInfo } from '../kv/leases.ts';
import type { AppliedOutcome } from './waiting.ts';
import { DEFAULT_WATCH_LIMITS, WatchRoom } from './watch-room.ts';
import { Quiescence } from './quiescence.ts';
import type { WatchFilter, Watcher } from './watch-room.ts';

export { DEFAULT_TICK_MS, DEFAULT_PEER_LIMITS, REQUEST_TIMEOUT_MS, requestTimeoutTicksFor };
export type { PeerLimits, PeerLog, PeerOptions };
export { PeerError } from './errors.ts';
export type { PeerErrorCode } from './errors.ts';

export { READ_LEVELS } from './outcomes.ts';
export type { Health, KvView, MemberStatus, PeerStatus, ReadLevel, ReadOutcome, Staleness, WriteOutcome } from './outcomes.ts';

const EMPTY_KV_STATE: KvState = { revision: 0, records: [], sessions: [] };

/** What a tiered peer has that one holding its state in memory does not. */
interface TierParts {
  disk: DiskRecords;
  options: TierOptions;
  streams: SnapshotStreams;
  stager: SnapshotStager;
}

export class Peer {
  readonly id: NodeId;
  private readonly storage: PeerStorage;
  private readonly transport: PeerTransport;
  private readonly clock: Clock;
  private readonly log: PeerLog;
  private readonly limits: PeerLimits;
  /** Limits on keys, values and commands (the router checks bodies against them). */
  readonly kvLimits: KvLimits;
  private readonly electionTicks: number;
  private readonly tickMs: number;
  private readonly leaseGuard: LeaseGuard;
  /** When leases expire, on the leader (lessor.ts). */
  private readonly lessor: Lessor;
  /** When the group sleeps and this host may stop ticking (quiescence.ts). */
  private readonly quiescence: Quiescence;
  private readonly core: RaftCore;
  private kv: KvStateMachine;
  /** A tiered peer's parts: its engine's records (record-tier.ts) and its streamed snapshots,
   *  sent and staged (snapshot-streams.ts). Null when the state is all in memory, and
   *  snapshots go whole as bytes. */
  private readonly tier: TierParts | null;

  /** Highest log index applied to `kv`, its term, and the membership as of it. */
  private applied: number;
  private appliedTerm: number;
  private appliedMembership: Membership;
  private appliedMembershipIndex: number;
  /** Set once this peer knows it is no longer a member (removal.ts): it then serves nothing. */
  private removal: Removal | null;
  /** Which senders' messages reach the core (senders.ts), and how often drops are logged. */
  private readonly senders: SenderFilter;
  private readonly dropLog: DropLogLimit;
  private readonly cluster: string;
  /** Index of the latest snapshot taken here or installed from a leader. */
  private snapshotIndex: number;
  /** When to snapshot, and the snapshot being encoded (a slice at a time). */
  private readonly snapshotJob: SnapshotJob;
  /** When the snapshot under way began (elapsedMs), for its duration. */
  private snapshotStartMs = 0;
  /** A snapshot install is saving: the state is being replaced (no stream opens on it). */
  private installing = false;

  // Soft state as of the last ready handled (the core may already be ahead).
  private role: Role = 'follower';
  private leader: NodeId = '';
  private term: number;

  private ticks = 0;
  private readSeq = 0;
  private readonly leaderContact = new LeaderContact();
  /** Events and durations counted for GET /metrics (counters.ts); read-only to everyone else. */
  readonly counters = new PeerCounters();

  private readonly proposals: ProposalRoom;
  private readonly reads: ReadRoom;
  private readonly transfer = new TransferRoom();
  /** New voters' learners catching up before their promotion (addMember). */
  private readonly catchUp = new CatchUpRoom();
  /** Watches and blocking reads (watch-room.ts), filled from the applied state's history. */
  private readonly watches: WatchRoom;

  /**
   * Apply results not yet saved (kv changes + applied index, and a compaction snapshot): folded
   * into the next ready's save, or flushed on a tick. The kv changes stay in the state
   * machine's dirty set until takeCarry() builds the batch, so applies accumulate.
   */
  private unsaved: { compact: SaveBatch['compact'] } | null = null;
  /** Storage metadata to write with the next save (the removal record). */
  private unsavedMeta: Record<string, string> | null = null;
  private loop: Promise<void> | null = null;
  private closing = false;
  private failure: Error | null = null;

  private constructor(
    opts: PeerOptions,
    core: RaftCore,
    kv: KvStateMachine,
    tier: { disk: DiskRecords; options: TierOptions } | null,
    init: {
      applied: number;
      appliedTerm: number;
      appliedMembership: Membership;
      appliedMembershipIndex: number;
      removal: Removal | null;
      formerMembers: NodeId[];
      snapshotIndex: number;
      term: number;
      limits: PeerLimits;
      kvLimits: KvLimits;
      electionTicks: number;
      tickMs: number;
    },
  ) {
    this.id = opts.id;
    this.storage = opts.storage;
    this.transport = opts.transport;
    this.clock = opts.clock;
    this.log = opts.log ?? (() => {});
    this.core = core;
    this.kv = kv;
    this.applied = init.applied;
    this.appliedTerm = init.appliedTerm;
    this.appliedMembership = init.appliedMembership;
    this.appliedMembershipIndex = init.appliedMembershipIndex;
    this.removal = init.removal;
    this.senders = new SenderFilter(init.formerMembers);
    this.dropLog = new DropLogLimit(init.tickMs);
    this.cluster = opts.cluster ?? '';
    this.snapshotIndex = init.snapshotIndex;
    this.term = init.term;
    this.limits = init.limits;
    this.kvLimits = init.kvLimits;
    this.electionTicks = init.electionTicks;
    this.tickMs = init.tickMs;
    this.leaseGuard = new LeaseGuard(init.tickMs, init.electionTicks, opts.clock);
    this.lessor = new Lessor(init.tickMs, init.electionTicks);
    this.quiescence = new Quiescence(init.electionTicks, init.tickMs, opts.ticks, opts.clock);
    this.snapshotJob = new SnapshotJob(init.limits, opts.clock, tier !== null);
    if (tier === null) this.tier = null;
    else {
      const streams = new SnapshotStreams({
        kv: () => this.kv,
        applied: () => this.applied,
        replacing: () => this.installing,
        opened: (index) => {
          this.counters.snapshotStreamsOpened++;
          this.log('info', 'peer.snapshot.streaming', { id: this.id, term: this.term, index });
        },
      });
      this.tier = { ...tier, streams, stager: new SnapshotStager(init.kvLimits.sessionsMax) };
      core.setSnapshotProvider(streams);
      core.stageSnapshots();
    }
    this.proposals = new ProposalRoom(init.limits.pendingProposalsMax);
    this.reads = new ReadRoom(init.limits.pendingReadsMax);
    this.watches = new WatchRoom(
      { ...DEFAULT_WATCH_LIMITS, ...opts.watchLimits },
      () => this.kv,
      () => this.ticks,
    );
  }

  /** Load everything the peer persisted and build the core and the state machine from it. */
  static async open(opts: PeerOptions): Promise<Peer> {
    if (!Number.isSafeInteger(opts.tickMs) || opts.tickMs < 1)
      throw new RangeError(`tickMs must be a positive integer, got ${opts.tickMs}`);
    const loaded = await opts.storage.load();
    const limits = checkLimits({
      ...DEFAULT_PEER_LIMITS,
      ...(loaded.tier === undefined ? {} : TIERED_PEER_LIMITS),
      requestTimeoutTicks: requestTimeoutTicksFor(opts.tickMs),
      ...opts.limits,
    });
    const kvLimits = opts.kvLimits ?? DEFAULT_KV_LIMITS;
    const raft = { ...defaultRaftConfig(opts.id, opts.random), ...opts.raft, id: opts.id, random: opts.random };
    if (opts.quiesce !== undefined) raft.quiesce = opts.quiesce;
    const start = restartFrom(loaded, opts.initialMembership, opts.initialState);
    // A brand-new peer's membership must be durable before it can vote or be voted for,
    // or a restart would come back with a hard state and no idea who its peers are.
    if (start.bootstrap !== null) {
      const { snapshot, hardState, kv } = start.bootstrap;
      await opts.storage.save({ installSnapshot: { snapshot, kv }, hardState });
    }
    const core = createCore(raft, start.restart);
    const tierOptions: TierOptions = { kvLimits, cacheBytes: opts.cacheBytes ?? DEFAULT_CACHE_BYTES, random: opts.random };
    const disk = loaded.tier?.disk ?? null;
    let kv: KvStateMachine;
    if (disk === null) kv = new KvStateMachine(kvLimits, start.bootstrap?.kv ?? loaded.kv);
    else if (start.bootstrap !== null) kv = openTiered(disk, summarize(start.bootstrap.kv.records), start.bootstrap.kv, tierOptions);
    else kv = openTiered(disk, loaded.tier!.summary, loaded.kv, tierOptions);
    const peer = new Peer(opts, core, kv, disk === null ? null : { disk, options: tierOptions }, {
      applied: start.restart.applied,
      appliedTerm: start.appliedTerm,
      appliedMembership: start.appliedMembership,
      appliedMembershipIndex: start.appliedMembershipIndex,
      removal: decodeRemoval(loaded.meta[REMOVED_META_KEY]),
      formerMembers: decodeFormerMembers(loaded.meta[FORMER_MEMBERS_META_KEY]),
      snapshotIndex: start.restart.snapshot.meta.index,
      term: start.restart.hardState.term,
      limits,
      kvLimits,
      electionTicks: raft.electionTicks,
      tickMs: opts.tickMs,
    });
    peer.log('info', 'peer.open', {
      id: opts.id,
      term: start.restart.hardState.term,
      applied: start.restart.applied,
      entries: start.restart.entries.length,
      snapshotIndex: start.restart.snapshot.meta.index,
      fresh: start.bootstrap !== null,
      removed: peer.removal !== null,
    });
    peer.kick();
    if (peer.removal === null && campaignsAtStart(opts.id, start, core.membership())) peer.campaign();
    return peer;
  }

  // ---- driven by the host -------------------------------------------------------------------

  /** The host calls this every tickMs (PeerOptions). */
  tick(): void {
    if (this.closing || this.failure !== null) return;
    if (this.removal !== null) return this.kick(true); // no Raft time passes; only unsaved results are written
    this.ticks++;
    const stallMs = this.leaseGuard.noteTick(this.ticks);
    if (stallMs !== null) this.log('warn', 'peer.tick.stall', { id: this.id, term: this.term, gapMs: stallMs });
    this.core.tick();
    this.watches.tick();
    const now = this.ticks;
    this.proposals.expire(now, () => this.timeoutError('write'));
    this.reads.expire(now, () => this.timeoutError('read'));
    this.checkTransfer();
    this.requestParkedReads();
    this.expireLeases();
    if (this.snapshotJob.active && this.loop === null) this.maybeSnapshot(true);
    if (this.role === 'leader' && this.quiescence.idleTick(this.leaderIdle())) {
      this.core.quiesce();
      this.log('debug', 'peer.quiesce', { id: this.id, term: this.term });
    }
    this.kick(true);
    this.syncRest();
  }

  /**
   * Something other than a Raft message needs this peer's group: a client operation that needs
   * the leader or the log, or the host's timer for a due lease (TickPort.rest's wakeAtMs). A
   * quiescent peer wakes and its first messages wake the others; a follower that knows no
   * leader (just restarted, say) tells the voters too (raft.ts, quiescence).
   */
  wake(): void {
    if (this.closing || this.failure !== null || this.removal !== null) return;
    this.core.wake();
    this.kick();
    this.syncRest();
  }

  /** A leader with nothing waiting here and nothing in flight in the core (quiescence.ts). */
  private leaderIdle(): boolean {
    // A Ready or save under way needs no tick: the core's own conditions say whether what it
    // carries is durable, applied and acknowledged.
    if (this.core.quiesceProblem() !== null) return false;
    if (this.proposals.size > 0 || this.reads.size > 0 || this.transfer.pendingTo !== null || this.catchUp.size > 0) return false;
    if (this.snapshotJob.active || this.watches.blocking > 0) return false;
    const lease = this.lessor.nextDeadline();
    return lease === null || lease - this.ticks > this.electionTicks;
  }

  /** Tell the host whether it may stop ticking: the core is quiescent and no watcher here needs
   *  ticks. On waking, the time asleep comes off the lease deadlines (never owed as ticks). */
  private syncRest(): void {
    const quiescent = this.core.isQuiescent();
    const rest = quiescent && this.watches.size === 0 && !this.closing && this.failure === null && this.removal === null;
    if (rest && !this.quiescence.resting) this.kick(true); // nothing may wait for a tick
    const slept = this.quiescence.sync(quiescent, rest, this.ticks, () => this.leaseWakeAtMs());
    if (slept === null) return;
    this.lessor.elapse(slept);
    this.leaseGuard.resumed();
  }

  /** When a resting leader must wake for its earliest lease expiry (clock ms), or null. */
  private leaseWakeAtMs(): number | null {
    const deadline = this.role === 'leader' ? this.lessor.nextDeadline() : null;
    return deadline === null ? null : this.clock.nowMs() + Math.max(0, deadline - this.ticks) * this.tickMs;
  }

  /**
   * Inbound Raft messages (already decoded by the host). Messages from senders that are not
   * members are dropped here, before the core (senders.ts says which and why); bad ones are the
   * core's to drop. Returns how many were stepped (a host learns a sender's address only from
   * those).
   */
  receive(msgs: readonly Message[]): number {
    if (this.closing || this.failure !== null || this.removal !== null) return 0;
    let told: NodeId | null = null; // notice a sender once per run of its messages (a host's batch is one peer's)
    let stepped = 0;
    for (const msg of msgs) {
      if (msg.type === 'removed') {
        if (noticeProvesRemoval(this.id, msg, this.appliedMembership, this.core.lastIndex())) {
          this.becomeRemoved({ index: msg.index!, toldBy: msg.from });
          return stepped;
        }
        continue;
      }
      // A sender outside the configuration is told so, whether or not its message is stepped
      // (it may be a leader this peer's log has not reached).
      if (told !== msg.from) {
        told = msg.from;
        const notice = removalNotice(
          this.id,
          this.term,
          msg.from,
          () => this.core.membership(),
          this.appliedMembership,
          this.appliedMembershipIndex,
        );
        if (notice !== null) this.send([notice]);
      }
      const verdict = this.senders.judge(msg, this.core, this.appliedMembership, this.applied);
      if (verdict === 'removed' || verdict === 'unknown') {
        this.noteDropped(msg, verdict);
        continue;
      }
      // Only a leader sends these; remember when we last heard one (stale-read headers, health).
      if ((msg.type === 'append' || msg.type === 'heartbeat' || msg.type === 'snapshot') && msg.term >= this.term) {
        this.leaderContact.heard(this.ticks, this.clock.nowMs());
      }
      this.core.step(msg);
      stepped++;
    }
    this.kick();
    this.syncRest(); // a message wakes a quiescent core; a quiesce heartbeat puts it to sleep
    return stepped;
  }

  /** A message from a non-member was dropped: one log line now and then (senders.ts). */
  private noteDropped(msg: Message, sender: 'removed' | 'unknown'): void {
    const drops = this.dropLog.note(this.ticks);
    if (drops === null) return;
    this.log('warn', 'peer.sender.dropped', { id: this.id, term: this.term, from: msg.from, type: msg.type, sender, drops });
  }

  /** Start an election now (transfers, tests; open() decides whether a peer campaigns at start). */
  campaign(): void {
    if (this.closing || this.failure !== null || this.removal !== null) return;
    this.core.campaign();
    this.kick();
    this.syncRest();
  }

  /** Finish the ready in flight, save pending apply results, fail waiters, close the storage. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    while (this.loop !== null) await this.loop;
    const closed = (): PeerError => new PeerError('closed', 'peer is shutting down');
    try {
      const carry = this.failure === null ? this.takeCarry() : null;
      if (carry !== null) await this.storage.save(carry);
    } finally {
      this.snapshotJob.abandon();
      this.tier?.streams.closeAll();
      this.proposals.failAll(closed);
      this.reads.failAll(closed);
      this.transfer.fail(closed());
      this.catchUp.fail(closed());
      this.watches.endAll('closed', 'peer is shutting down');
      await this.storage.close();
      this.log('info', 'peer.close', { id: this.id, term: this.term, applied: this.applied });
    }
  }

  // ---- client operations (used by the router) -----------------------------------------------

  /** Propose a KV command; resolves when it is applied here (the leader). */
  async write(cmd: KvCommand): Promise<WriteOutcome> {
    this.assertServing();
    const checked = validateCommand(cmd, this.kvLimits);
    if (!checked.ok) throw new PeerError(checked.code === 'too-large' ? 'too-large' : 'invalid', checked.message);
    this.wake(); // a follower too: the router forwards to the leader, which its wake has woken
    if (this.role !== 'leader') throw this.notLeaderError();
    this.assertProposalRoom();
    this.assertSpaceFor(checked.cmd);
    const proposed = this.core.propose([encodeCommand(checked.cmd)]);
    if (!proposed.ok) {
      this.counters.proposalsFailed++;
      throw this.refusalError(proposed.reason, proposed.leader);
    }
    const outcome = await this.park(proposed.index, proposed.term);
    if (outcome.result === null) {
      this.counters.proposalsFailed++;
      throw this.lostError();
    }
    return { result: outcome.result, index: outcome.index };
  }

  // ---- leases (the lessor decides when; the log carries the revoke: lessor.ts) --------------------

  /** The shortest TTL granted, in seconds: 1.5 election timeouts (etcd's minLeaseTTL), so a
   *  lease outlives an election. Shorter requests are raised to it, as etcd does. */
  get leaseTtlMinSeconds(): number {
    return Math.ceil((1.5 * this.electionTicks * this.tickMs) / 1000);
  }

  /** Keep lease `id` alive for its TTL from now (leader only, no log entry). Leadership is
   *  confirmed as for a default read first, so a deposed leader acknowledges nothing. Null when
   *  the lease does not exist or already expired (its revoke is due). */
  /** Milliseconds by the host's clock (the Clock port): for deadlines kept beside this peer's waits. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  async keepAlive(id: number): Promise<{ ttl: number } | null> {
    const ttl = (await this.read('default', (kv) => kv.leases.get(id)?.ttl)).value;
    if (ttl === undefined) return null;
    if (this.role !== 'leader') throw this.notLeaderError();
    return this.lessor.renew(id, ttl, this.ticks) ? { ttl } : null;
  }

  /** Lease `id` with the seconds it has left on this leader (`ttl`), or null when there is none. */
  async leaseTimeToLive(id: number): Promise<(LeaseInfo & { grantedTtl: number }) | null> {
    const info = (await this.read('default', (kv) => kv.leases.get(id))).value;
    if (info === undefined) return null;
    return { ...info, grantedTtl: info.ttl, ttl: this.lessor.remainingSeconds(id, this.ticks) ?? info.ttl };
  }

  /** Propose the revoke of every lease past its deadline (rate-limited, never twice at once). */
  private expireLeases(): void {
    if (this.role !== 'leader') return;
    for (const id of this.lessor.due(this.ticks)) {
      this.log('info', 'peer.lease.expired', { id: this.id, term: this.term, lease: id });
      this.write({ op: 'lease-revoke', id }).then(
        () => this.lessor.settled(id),
        () => this.lessor.settled(id), // lost, timed out, not leader: proposed again if still due
      );
    }
  }

  /** Refuse a put that would grow the state past its quota: its keys and values and the history
   *  it keeps (the versions it replaces). Deletes and compactions always pass, so a full store can
   *  be cleaned up: delete, then compact (POST /compact) to let the history go. */
  private assertSpaceFor(cmd: KvCommand): void {
    if (cmd.op !== 'put') return;
    const max = this.limits.stateBytesMax;
    const growth = this.kv.putGrowth(cmd.pairs);
    if (growth > 0 && this.kv.stateBytes + growth > max) {
      throw new PeerError(
        'no-space',
        `the store is at its space quota (${this.kv.stateBytes} of ${max} bytes of keys, values and history); delete keys and compact the history (POST /compact) to free space`,
      );
    }
  }

  /**
   * Run `query` against the state machine at a point that satisfies `level`:
   *   stale       now, on any peer (may lag the leader; see staleness());
   *   default     on the leader, under a valid lease (no round trip); without a lease it
   *               falls back to a ReadIndex round;
   *   consistent  on the leader, after a ReadIndex heartbeat round confirms leadership.
   * default/consistent on a follower fail with not-leader (the router redirects).
   * `keys`: the keys `query` reads (when few and known): a tiered store fetches those it does
   * not hold off the event loop first (RecordStore.prefetch), so the read does not block the
   * loop on the disk. The answer comes from the state once they are in hand, which has only
   * moved forward since the read's point, as a read parked for apply would.
   */
  async read<T>(level: ReadLevel, query: (kv: KvView) => T, keys?: readonly string[]): Promise<ReadOutcome<T>> {
    this.assertServing();
    if (level === 'stale') return this.answerFetched(query, keys); // from this peer's state: wakes nobody
    this.wake();
    if (this.role !== 'leader') throw this.notLeaderError();
    if (level === 'default') {
      const leaseIndex = this.leaseGuard.trusted(this.ticks) ? this.core.leaseRead() : null;
      if (leaseIndex !== null && leaseIndex <= this.applied) return this.answerFetched(query, keys);
      if (leaseIndex !== null) return this.parkRead(query, leaseIndex, keys);
    }
    return this.parkRead(query, -1, keys);
  }

  /**
   * Watch `filter` from revision `from` (default: the next one) in this peer's applied state,
   * whatever its role (stale semantics: a follower's watch trails the leader by its apply lag).
   * The caller takes frames from the Watcher and must close() it when it stops listening.
   * `progressMs`: a progress frame after this long without a frame (0: none); `waitMs`: end
   * with `deadline` after this long (0: never). Full: too-many-pending.
   */
  watch(filter: WatchFilter, opts: { from?: number; progressMs?: number; waitMs?: number } = {}): Watcher {
    this.assertServing();
    const ticks = (ms: number | undefined): number => (ms === undefined || ms <= 0 ? 0 : Math.max(1, Math.ceil(ms / this.tickMs)));
    const wait = ticks(opts.waitMs);
    const watcher = this.watches.add({
      filter,
      from: opts.from ?? this.kv.revision + 1,
      progressTicks: ticks(opts.progressMs),
      deadlineTick: wait === 0 ? 0 : this.ticks + wait,
    });
    this.syncRest(); // a watcher needs this peer's ticks (not the group's)
    return watcher;
  }

  /** Watchers registered here, and the bytes they hold queued. */
  watchStats(): { watchers: number; bytes: number } {
    return { watchers: this.watches.size, bytes: this.watches.bytes };
  }

  /**
   * Add a member through Raft (as a learner when `learner`). Resolves with the membership once
   * applied. A new voter joins as a learner first and is promoted once that entry committed:
   * the core counts a voter in the quorum as soon as its entry is appended, so a configuration
   * that cannot commit without the newcomer (a second voter) would need its address contacted
   * before the cluster agreed to it, while a host sends its credential only to committed
   * addresses (committedAddress). A learner never counts. So every voter's address was committed
   * (as a learner's) before any configuration made it a voter. If leadership moves between the
   * two steps the call fails and the member stays a learner: adding it again promotes it.
   */
  async addMember(id: NodeId, address: string, learner: boolean): Promise<Membership> {
    this.assertServing();
    this.wake();
    if (this.role !== 'leader') throw this.notLeaderError();
    const current = this.core.membership();
    if (learner || isVoter(current, id)) return this.changeMembership({ type: learner ? 'addLearner' : 'addVoter', node: id, address });
    if (!isLearner(current, id)) {
      await this.changeMembership({ type: 'addLearner', node: id, address });
      // Promoted only once its log holds the entry that added it: a voter with an empty log knows
      // no configuration, so it drops every vote request as a stranger's (senders.ts), and a
      // cluster that then lost a voter could elect no leader.
      const added = this.applied;
      if ((this.core.matchIndex(id) ?? 0) < added) await this.catchUp.add(id, added, this.ticks + this.limits.requestTimeoutTicks);
    } else if (current.addresses[id] !== address) {
      throw new PeerError(
        'member-conflict',
        `${id} is a learner at ${current.addresses[id] ?? '(no address)'}; remove it to change its address`,
      );
    }
    return this.changeMembership({ type: 'promoteLearner', node: id });
  }

  async removeMember(id: NodeId): Promise<Membership> {
    return this.changeMembership({ type: 'removeNode', node: id });
  }

  /** Promote a learner to voter, once it has caught up (see limits.promoteLagEntriesMax). */
  async promoteMember(id: NodeId): Promise<Membership> {
    this.assertServing();
    if (this.role === 'leader' && this.core.membership().learners.includes(id)) {
      const match = this.core.matchIndex(id) ?? 0;
      const last = this.core.lastIndex();
      if (match === 0 || last - match > this.limits.promoteLagEntriesMax) {
        throw learnerBehindError(id, match, last, this.limits.promoteLagEntriesMax);
      }
    }
    return this.changeMembership({ type: 'promoteLearner', node: id });
  }

  /** Hand leadership to `to`; resolves once this peer sees `to` lead. */
  async transferLeader(to: NodeId): Promise<NodeId> {
    this.assertServing();
    this.wake();
    if (this.role !== 'leader') throw this.notLeaderError();
    if (to === this.id) return this.id;
    const membership = this.core.membership();
    if (!membership.voters.includes(to)) {
      if (membership.learners.includes(to)) throw new PeerError('member-conflict', `${to} is a learner; promote it first`);
      throw new PeerError('member-not-found', `${to} is not a member`);
    }
    const pending = this.transfer.pendingTo;
    if (pending !== null) throw new PeerError('busy', `a transfer to ${pending} is in progress`);
    if (!this.core.transferLeadership(to)) throw new PeerError('busy', `cannot transfer leadership to ${to} now`);
    this.log('info', 'peer.transfer', { id: this.id, term: this.term, to });
    const done = this.transfer.add(to, this.ticks + this.limits.requestTimeoutTicks);
    this.kick();
    return done;
  }

  /** Who leads, as far as this peer knows ('' when nobody): cheap, for every answer's headers. */
  get leaderId(): NodeId {
    return this.leader;
  }

  /** Who leads, as far as this peer knows (`id` '' when nobody), and its address. */
  leaderInfo(): { id: NodeId; address: string; self: boolean } {
    const address = this.leader === '' ? '' : (this.core.membership().addresses[this.leader] ?? '');
    return { id: this.leader, address, self: this.role === 'leader' };
  }

  isLeader(): boolean {
    return this.role === 'leader';
  }

  /** Null while this peer is a member; once it was removed, what it answers clients (410). */
  removed(): string | null {
    return this.removal === null ? null : removedError(this.id, this.cluster).message;
  }

  /** Current KV revision applied here. */
  get revision(): number {
    return this.kv.revision;
  }

  /** The API tokens of the state applied here: what the router authorizes requests against. */
  get tokens(): TokenView {
    return this.kv.tokens;
  }

  /** A view of the KV state applied here as of now, with the applied index and cluster it belongs
   *  to: for a backup (worker/backup/), encoded while writes go on. Close the view when done. */
  backupView(): { view: StateView; applied: number; cluster: string } {
    this.assertServing();
    return { view: this.kv.beginView(), applied: this.applied, cluster: this.cluster };
  }

  /** The current membership (latest in the log). */
  membership(): Membership {
    return cloneMembership(this.core.membership());
  }

  /**
   * `id`'s address as a committed configuration holds it, or undefined: the configuration this
   * peer applied, or for a voter of the latest one, that one (a voter was a learner first, and
   * promoted only once that entry committed: addMember). A learner this peer has not applied is
   * not named yet. A host that sends a credential with its Raft messages sends them only here:
   * an address from /join is contacted once its entry commits, not when it is appended.
   */
  committedAddress(id: NodeId): string | undefined {
    if (isMember(this.appliedMembership, id)) return this.appliedMembership.addresses[id];
    const latest = this.core.membership();
    return isVoter(latest, id) ? latest.addresses[id] : undefined;
  }

  staleness(): Staleness {
    return {
      leader: this.leader,
      lastLeaderContactMs: this.lastContactMs(),
      applied: this.applied,
      commit: this.core.committedIndex(),
    };
  }

  status(): PeerStatus {
    return this.withWatchers(
      peerStatus({
        id: this.id,
        core: this.core,
        kv: this.kv,
        applied: this.applied,
        limits: this.limits,
        pendingProposals: this.proposals.size,
        pendingReads: this.reads.size,
        lastLeaderContactMs: this.lastContactMs(),
        failure: this.failure,
        removed: this.removed(),
        tickMs: this.tickMs,
        tickStalls: this.leaseGuard.stalls,
        nonMemberMessages: this.senders.counts,
        snapshotStreams:
          this.tier === null
            ? null
            : {
                sending: this.tier.streams.active,
                // What the stager holds counts only while the core's transfer goes on: one it
                // dropped (the leader went back to appends) is not being received.
                receiving: this.core.receivingSnapshot() ? this.tier.stager.receiving() : null,
              },
      }),
    );
  }

  private withWatchers(status: Omit<PeerStatus, 'watchers' | 'quiescent' | 'quiescedAtMs' | 'wakes'>): PeerStatus {
    return {
      ...status,
      watchers: this.watches.size,
      quiescent: this.core.isQuiescent(),
      quiescedAtMs: this.quiescence.quiescedAtMs,
      wakes: this.quiescence.wakes,
    };
  }

  /** See peerHealth (status.ts). */
  health(): Health {
    return peerHealth({
      failure: this.failure,
      removed: this.removed(),
      closing: this.closing,
      leader: this.leader,
      isLeader: this.role === 'leader',
      ticksSinceLeader: this.leaderContact.ticksSince(this.ticks),
      electionTicks: this.electionTicks,
      applied: this.applied,
      commit: this.core.committedIndex(),
    });
  }

  // ---- the ready loop -------------------------------------------------------------------------

  /** Start the loop if there is work and none is running. `flush`: also save a lone carry. */
  private kick(flush = false): void {
    if (this.loop !== null || this.closing || this.failure !== null) return;
    if (!this.core.hasReady() && !(flush && this.hasCarry())) return;
    // The loop is claimed before runLoop's synchronous part runs: a kick from inside it (an
    // apply that removes this peer) must not start a second loop, which would save the carry
    // of the ready in hand ahead of that ready's own hard state (applied above a durable commit).
    let finished!: () => void;
    this.loop = new Promise<void>((resolve) => (finished = resolve));
    void this.runLoop().finally(() => {
      this.loop = null;
      finished();
      this.kick(this.quiescence.resting); // resting: no tick will come to flush the carry
    });
  }

  private async runLoop(): Promise<void> {
    try {
      if (!this.core.hasReady() && this.hasCarry()) await this.save(this.takeCarry()!);
      while (!this.closing && this.failure === null && this.core.hasReady()) {
        await this.handleReady(this.core.ready());
      }
      // Metadata (the removal record) is written now, not on a later tick: a removed peer's
      // host may stop ticking it.
      if (this.unsavedMeta !== null && !this.closing && this.failure === null) await this.save(this.takeCarry()!);
    } catch (err) {
      this.stop(err);
    }
  }

  /** One durable write, timed by the host's clock (counters.ts: etcd's wal_fsync histogram). */
  private async save(batch: SaveBatch): Promise<void> {
    const startMs = this.elapsedMs();
    // The changes in `batch` leave a tiered store's overlay once the disk shows them.
    const kv = this.kv;
    const changes = batch.kv !== undefined ? kv.lastChangesBatch : null;
    await this.storage.save(batch);
    if (changes !== null) kv.changesDurable(changes);
    const seconds = (this.elapsedMs() - startMs) / 1000;
    this.counters.saveSeconds.observe(seconds);
    if (batch.installSnapshot !== undefined) this.counters.snapshotInstallSeconds.observe(seconds);
  }

  private elapsedMs(): number {
    return this.clock.elapsedMs?.() ?? this.clock.nowMs();
  }

  /** The unsaved apply results as a save batch (null when there are none). */
  private takeCarry(): SaveBatch | null {
    const unsaved = this.unsaved;
    const meta = this.unsavedMeta;
    if (unsaved === null && meta === null) return null;
    this.unsaved = null;
    this.unsavedMeta = null;
    const batch: SaveBatch = unsaved === null ? {} : { kv: this.kv.takeChanges(), applied: this.applied };
    if (unsaved?.compact !== undefined) batch.compact = unsaved.compact;
    if (meta !== null) batch.meta = meta;
    return batch;
  }

  private hasCarry(): boolean {
    return this.unsaved !== null || this.unsavedMeta !== null;
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined) this.noteSoftState(rd.softState.role, rd.softState.leader, rd.softState.term);

    // 2a. A leader's appends and heartbeats leave while its own write is under way, so the
    //     followers' writes overlap it (the core says which messages may: splitMessages).
    const { beforePersist, afterPersist } = this.core.splitMessages(rd);
    if (beforePersist.length > 0) this.send(beforePersist);

    // 3a. Committed entries that are already durable here — in every Ready but one that also
    //     carries them (a sole voter's) — are applied and answered now, and their effects ride
    //     in this Ready's write rather than the next one. Reads released now are served too.
    const committed = rd.committedEntries;
    const applyFirst =
      rd.snapshot === undefined && committed.length > 0 && committed[committed.length - 1]!.index <= this.core.persistedIndex();
    if (applyFirst) this.applyEntries(committed);
    for (const rs of rd.readStates) this.reads.release(rs.ctx, rs.index);
    if (rd.snapshot === undefined) this.reads.serveUpTo(this.applied);
    // Watchers see what reads see: committed entries applied early go out before this write,
    // as their writes' answers do (a crash replays them from the durable log, the same).
    if (applyFirst) this.watches.notify();

    // 1. persist
    const batch: SaveBatch = {};
    let restored: KvStateMachine | null = null;
    /** A staged install (a tiered peer's): the snapshot's state but its records, and their count. */
    let staged: { state: KvState; summary: RecordSummary } | null = null;
    // A snapshot arriving in chunks: their records go to the engine's staging area now.
    if (rd.snapshotParts !== undefined) batch.stage = this.tierOf().stager.take(rd.snapshotParts);
    if (rd.snapshot !== undefined) {
      if (rd.snapshot.meta.index < this.applied) {
        throw new Error(`core handed a snapshot at ${rd.snapshot.meta.index} below applied ${this.applied}`);
      }
      if (rd.snapshot.staged === true) {
        staged = this.tierOf().stager.finish();
        batch.installSnapshot = { snapshot: rd.snapshot, kv: staged.state, staged: staged.summary };
        this.kv.store.pin(); // reads keep seeing this state while the install replaces the disk
        this.installing = true;
      } else {
        invariant(this.tier === null, 'a tiered peer stages the snapshots it receives (RawNode.stageSnapshots)');
        const state = rd.snapshot.data.length === 0 ? EMPTY_KV_STATE : decodeState(rd.snapshot.data);
        restored = new KvStateMachine(this.kvLimits, state);
        batch.installSnapshot = { snapshot: rd.snapshot, kv: state };
      }
      this.unsaved = null; // everything it held is older than the snapshot, which replaces it
    } else {
      const carry = this.takeCarry();
      if (carry !== null) Object.assign(batch, carry);
    }
    if (rd.entries.length > 0) batch.entries = rd.entries;
    if (rd.hardState !== undefined) batch.hardState = rd.hardState;
    if (Object.keys(batch).length > 0) await this.save(batch);
    // A tiered store opens over the disk once it shows the installed records.
    if (staged !== null) {
      restored = openTiered(this.tierOf().disk, staged.summary, staged.state, this.tierOf().options);
      this.installing = false;
    }

    if (rd.snapshot !== undefined && restored !== null) {
      const meta = rd.snapshot.meta;
      this.snapshotJob.abandon(); // of the state the snapshot just replaced
      this.kv.store.close();
      this.kv = restored;
      if (this.lessor.isLeading) this.lessor.promote(this.ticks, this.kv.leases); // the leases it tracked are gone
      this.applied = meta.index;
      this.appliedTerm = meta.term;
      this.noteAppliedMembership(cloneMembership(meta.membership), meta.index);
      this.snapshotIndex = meta.index;
      this.snapshotJob.noteInstalled();
      this.counters.snapshotsInstalled++;
      if (rd.snapshot.staged === true) this.counters.snapshotsInstalledStaged++;
      this.proposals.failUpTo(meta.index, () => this.lostError());
      this.log('info', 'peer.snapshot.installed', { id: this.id, term: this.term, index: meta.index, staged: rd.snapshot.staged === true });
    }

    // 2b. send the rest
    if (afterPersist.length > 0) this.send(afterPersist);

    // 3b. apply what was not yet durable before this write
    if (!applyFirst && committed.length > 0) this.applyEntries(committed);

    // 4. serve the released reads that apply has reached
    this.reads.serveUpTo(this.applied);

    // Entries that committed above were answered; whatever is left cannot be vouched for by a
    // peer that no longer leads.
    if (this.role !== 'leader') {
      this.proposals.failAll(() => this.lostError());
      this.reads.failUnreleased(() => this.notLeaderError());
    }
    this.checkTransfer();

    // Watchers follow what was applied, or the installed snapshot's history (watch-room.ts).
    this.watches.notify();

    // 5. advance
    this.core.advance(rd);
    this.maybeSnapshot();
    this.requestParkedReads();
  }

  /** The tiered parts, which staged snapshot bytes need (only a tiered peer's core stages). */
  private tierOf(): TierParts {
    if (this.tier === null) throw new Error('the core handed staged snapshot bytes to a peer that does not stage');
    return this.tier;
  }

  private send(messages: Message[]): void {
    try {
      this.transport.send(messages);
    } catch (err) {
      // Transport loss is Raft's to handle; a throwing transport is a host bug, not a reason to stop.
      this.log('error', 'peer.transport.threw', { id: this.id, term: this.term, error: String(err) });
    }
  }

  private applyEntries(entries: Entry[]): void {
    let removedAt = 0;
    for (const entry of entries) {
      if (entry.index <= this.applied) continue;
      if (entry.index !== this.applied + 1) {
        throw new Error(`apply gap: applied ${this.applied}, next committed entry ${entry.index}`);
      }
      let result: KvResult | null = null;
      if (entry.type === 'normal') {
        if (entry.data.length > 0) result = this.applyCommand(entry);
      } else {
        const cc = decodeConfChange(entry.data);
        if (cc !== null) {
          this.noteAppliedMembership(applyConfChange(this.appliedMembership, cc), entry.index);
          if (cc.type === 'removeNode' && cc.node === this.id) removedAt = entry.index;
        }
        this.log('info', 'peer.membership.applied', { id: this.id, term: this.term, index: entry.index, change: cc });
      }
      this.applied = entry.index;
      this.appliedTerm = entry.term;
      this.snapshotJob.noteApplied(entry.data.length);
      this.proposals.applied(entry.index, entry.term, result, () => this.lostError());
    }
    this.unsaved = { compact: this.unsaved?.compact };
    // Its own removal applied (a leader removing itself has stepped down by now): the answers
    // above went out; nothing more is served.
    if (removedAt > 0 && this.removal === null) this.becomeRemoved({ index: removedAt, toldBy: '' });
  }

  /** The configuration applied changed: members that left it are former members from now on
   *  (senders.ts), recorded with the next save so a restart still knows them. */
  private noteAppliedMembership(membership: Membership, index: number): void {
    if (this.senders.noteApplied(this.appliedMembership, membership)) {
      this.unsavedMeta = { ...this.unsavedMeta, [FORMER_MEMBERS_META_KEY]: this.senders.encode() };
    }
    this.appliedMembership = membership;
    this.appliedMembershipIndex = index;
  }

  private applyCommand(entry: Entry): KvResult {
    let cmd: KvCommand;
    try {
      cmd = decodeCommand(entry.data);
    } catch (err) {
      // Every replica fails the same way on the same bytes, so skipping keeps them in agreement.
      this.log('warn', 'peer.apply.undecodable', { id: this.id, term: this.term, index: entry.index, error: String(err) });
      return { ok: false, code: 'invalid', revision: this.kv.revision, message: 'undecodable command' };
    }
    const result = this.kv.apply(entry.index, cmd);
    if (result.ok && result.op === 'lease-grant') this.lessor.granted(result.id, result.ttl, this.ticks);
    else if (result.ok && cmd.op === 'lease-revoke') this.lessor.revoked(cmd.id);
    return result;
  }

  /** Take a slice of the snapshot under way, or begin one when due (snapshot-job.ts); the
   *  last slice compacts the log. */
  private maybeSnapshot(onTick = false): void {
    if (!this.snapshotJob.active) this.snapshotStartMs = this.elapsedMs();
    const snapshot = this.snapshotJob.step(
      {
        kv: this.kv,
        applied: this.applied,
        appliedTerm: this.appliedTerm,
        appliedMembership: this.appliedMembership,
        snapshotIndex: this.snapshotIndex,
      },
      onTick,
    );
    if (snapshot === null) return;
    const index = snapshot.meta.index;
    // A tiered peer's snapshot is meta only: its table is the state, streamed when sent.
    invariant(this.tier === null || snapshot.data.length === 0, 'a tiered peer keeps no snapshot bytes');
    this.core.compact(index, snapshot.data);
    // The kv changes up to `applied` (>= the snapshot's index) are saved with the compaction or
    // before it, so the log is never cut ahead of the state that replaces it.
    this.unsaved = { compact: snapshot };
    this.snapshotIndex = index;
    this.counters.snapshotsTaken++;
    this.counters.snapshotTakeSeconds.observe((this.elapsedMs() - this.snapshotStartMs) / 1000);
    this.log('info', 'peer.snapshot.taken', { id: this.id, term: this.term, index, bytes: snapshot.data.length });
  }

  private noteSoftState(role: Role, leader: NodeId, term: number): void {
    if (role !== this.role || leader !== this.leader || term !== this.term) {
      this.log('info', 'peer.role', { id: this.id, term, role, leader });
    }
    // As etcd counts them: a leader is known and it is not the one known before.
    if (leader !== '' && leader !== this.leader) this.counters.leaderChanges++;
    if (role === 'leader') this.leaderContact.heard(this.ticks, this.clock.nowMs());
    if (role === 'leader' && (this.role !== 'leader' || term !== this.term)) this.lessor.promote(this.ticks, this.kv.leases);
    else if (role !== 'leader' && this.role === 'leader') this.lessor.demote();
    this.role = role;
    this.leader = leader;
    this.term = term;
  }

  /** This peer is no longer a member: it stops campaigning (no ticks reach the core, messages
   *  are dropped), fails what waits, refuses clients, and records the removal durably. */
  private becomeRemoved(removal: Removal): void {
    this.removal = removal;
    this.log('warn', 'peer.removed', { id: this.id, term: this.term, index: removal.index, toldBy: removal.toldBy });
    const removed = (): PeerError => removedError(this.id, this.cluster);
    this.proposals.failAll(removed);
    this.reads.failAll(removed);
    this.transfer.fail(removed());
    this.catchUp.fail(removed());
    this.watches.endAll('removed', removed().message);
    this.unsavedMeta = { ...this.unsavedMeta, [REMOVED_META_KEY]: encodeRemoval(removal) };
    this.kick(true);
  }

  /** A storage failure (or a broken invariant) stops the peer: better down than divergent. */
  private stop(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.failure = error;
    this.tier?.streams.closeAll();
    this.log('error', 'peer.stopped', { id: this.id, term: this.term, error: error.message });
    const failed = (): PeerError => new PeerError('failed', `peer stopped: ${error.message}`);
    this.proposals.failAll(failed);
    this.reads.failAll(failed);
    this.transfer.fail(failed());
    this.catchUp.fail(failed());
    this.watches.endAll('failed', `peer stopped: ${error.message}`);
  }

  // ---- waiting rooms --------------------------------------------------------------------------

  private park(index: number, term: number): Promise<AppliedOutcome> {
    const done = new Promise<AppliedOutcome>((resolve, reject) => {
      const deadlineTick = this.ticks + this.limits.requestTimeoutTicks;
      const failed = (err: PeerError): void => {
        this.counters.proposalsFailed++;
        reject(err);
      };
      this.proposals.add(index, { term, deadlineTick, resolve, reject: failed }, () => this.lostError());
    });
    this.kick();
    return done;
  }

  private parkRead<T>(query: (kv: KvView) => T, index: number, keys?: readonly string[]): Promise<ReadOutcome<T>> {
    if (!this.reads.hasRoom()) {
      throw new PeerError('too-many-pending', `more than ${this.limits.pendingReadsMax} reads waiting`);
    }
    const ctx = `${this.id}:${++this.readSeq}`;
    const done = new Promise<ReadOutcome<T>>((resolve, reject) => {
      this.reads.add({
        ctx,
        index,
        requested: index >= 0 || this.core.readIndex(ctx),
        deadlineTick: this.ticks + this.limits.requestTimeoutTicks,
        serve: () => {
          try {
            resolve(this.answerFetched(query, keys));
          } catch (err) {
            reject(err);
          }
        },
        reject,
      });
    });
    this.kick();
    return done;
  }

  /** Ask the core again for reads it could not take yet (no commit in its term so far). */
  private requestParkedReads(): void {
    if (this.role !== 'leader') return;
    for (const waiter of this.reads.unrequested()) {
      if (!this.core.readIndex(waiter.ctx)) break;
      waiter.requested = true;
    }
  }

  private changeMembership(cc: ConfChange): Promise<Membership> {
    this.assertServing();
    this.wake();
    if (this.role !== 'leader') throw this.notLeaderError();
    const current = this.core.membership();
    const problem = confChangeProblem(current, cc);
    if (problem !== null) {
      const missing = cc.type !== 'addVoter' && cc.type !== 'addLearner' && !isMember(current, cc.node);
      throw new PeerError(missing ? 'member-not-found' : 'member-conflict', `${cc.node}: ${problem}`);
    }
    if ((cc.type === 'addVoter' || cc.type === 'addLearner') && this.senders.wasRemoved(cc.node)) {
      // Members drop a removed id's messages for good (senders.ts): as in etcd, it is not reused.
      throw new PeerError(
        'member-conflict',
        `${cc.node} was removed from this cluster and is not added again; add the node under a new id`,
      );
    }
    this.assertProposalRoom();
    const proposed = this.core.proposeConfChange(cc);
    if (!proposed.ok) {
      this.counters.proposalsFailed++;
      throw this.refusalError(proposed.reason, proposed.leader);
    }
    this.log('info', 'peer.membership.proposed', { id: this.id, term: this.term, index: proposed.index, change: cc });
    return this.park(proposed.index, proposed.term).then(() => cloneMembership(this.appliedMembership));
  }

  private checkTransfer(): void {
    this.transfer.check(this.leader, this.role === 'leader', this.ticks);
    this.catchUp.check((id) => (this.role === 'leader' ? (this.core.matchIndex(id) ?? 0) : null), this.ticks);
  }

  // ---- answers and errors ---------------------------------------------------------------------

  private answer<T>(query: (kv: KvView) => T): ReadOutcome<T> {
    return { value: query(this.kv), revision: this.kv.revision, applied: this.applied };
  }

  /** answer, once the store has fetched the `keys` it does not hold (read()). */
  private answerFetched<T>(query: (kv: KvView) => T, keys: readonly string[] | undefined): ReadOutcome<T> | Promise<ReadOutcome<T>> {
    const fetching = keys === undefined ? null : this.kv.store.prefetch(keys);
    return fetching === null ? this.answer(query) : fetching.then(() => this.answer(query));
  }

  private assertServing(): void {
    if (this.closing) throw new PeerError('closed', 'peer is shutting down');
    if (this.failure !== null) throw new PeerError('failed', `peer stopped: ${this.failure.message}`);
    if (this.removal !== null) throw removedError(this.id, this.cluster);
  }

  private assertProposalRoom(): void {
    if (!this.proposals.hasRoom()) {
      throw new PeerError('too-many-pending', `more than ${this.limits.pendingProposalsMax} proposals waiting`);
    }
  }

  private notLeaderError(leader: NodeId = this.leader): PeerError {
    const address = leader === '' ? '' : (this.core.membership().addresses[leader] ?? '');
    return notLeaderError(this.id, leader, address);
  }

  private refusalError(reason: ProposeRefusal, leader: NodeId): PeerError {
    return reason === 'not-leader' ? this.notLeaderError(leader) : refusalError(reason);
  }

  private lostError(): PeerError {
    return lostError();
  }

  private timeoutError(what: 'write' | 'read'): PeerError {
    return timeoutError(what, this.limits.requestTimeoutTicks * this.tickMs);
  }

  private lastContactMs(): number | null {
    return this.leaderContact.msSince(this.clock.nowMs(), this.role === 'leader');
  }
}

function checkLimits(limits: PeerLimits): PeerLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`peer limit ${name} must be a positive integer, got ${value}`);
  }
  return limits;
}
