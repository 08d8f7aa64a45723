// One Raft peer hosted in one SQLite-backed Durable Object, named `<cluster>/<peer-id>`.
//
// Surfaces, and who can reach them:
//   fetch(request)   the public HTTP API (the shared router). The Worker forwards client
//                    requests here; it is the only thing the Worker ever calls.
//   deliver(batch)   Raft messages from sibling peers (RpcTransport); answers with this peer's
//                    replies to the sender (transport.ts). An RPC method: callable only by code
//                    holding the PEERS binding, never routed from the internet.
//   inspect(), abort(), isolate()  operator, drill and test tools, RPC only as well.
//   importPrepare/Chunk/Commit/Release()  loading a backup into a new cluster (import.ts),
//                    called by the peer that took PUT /snapshot; RPC only.
//
// Life cycle: the peer is loaded once, inside blockConcurrencyWhile, when the object starts
// (or on the first message of a peer that is joining). While the peer is active a timer ticks
// it every TICK_MS (config.tickMs), and the Durable Object alarm, one election timeout ahead, is
// the wake-up that brings an evicted or crashed peer back (it restarts from storage and
// rejoins) so elections and heartbeats go on. While its group is quiescent
// (worker/peer/quiescence.ts) the peer rests: no interval, no timeout, and no alarm but a
// leader's lease expiry, so the object can hibernate and be evicted; a request, a message or
// that alarm wakes it (worker/edge/README.md, "Quiescence").

import { DurableObject } from 'cloudflare:workers';
import { Peer } from '../peer/peer.ts';
import type { PeerLog } from '../peer/options.ts';
import type { PeerTransport } from '../peer/ports.ts';
import { createApiRouter, createAuthorizer, needsLeader } from '../api/router.ts';
import { errorResponse } from '../api/http.ts';
import type { UiAssetName } from '../api/ui-route.ts';
import { decodeMessages, encodeMessages } from '../raft/codec.ts';
import { SeededRandom } from '../raft/random.ts';
import { defaultRaftConfig } from '../raft/config.ts';
import type { Membership, Message, NodeId } from '../raft/types.ts';
import type { BackupHeader } from '../backup/format.ts';
import { DEFAULT_KV_LIMITS } from '../kv/types.ts';
import { emptyMembership } from '../raft/membership.ts';
import type { EdgeConfig } from './config.ts';
import { LOCKED_HINT, initialMembership, parsePeerObjectName, peerObjectName, readConfig } from './config.ts';
import type { Env } from './env.ts';
import { peerStub } from './env.ts';
import { CostMeter, countingSql, countingStorage, countingTarget } from './costs.ts';
import type { EdgeCosts } from './costs.ts';
import { EDGE_MEMORY_LIMITS } from './memory.ts';
import { delayedTarget, oneWayMs } from './latency.ts';
import { PersistCheck } from './persist-check.ts';
import type { PersistCheckReport } from './persist-check.ts';
import { DurableObjectPeerStorage } from './storage.ts';
import type { DerivedStats } from './storage.ts';
import { RpcTransport } from './transport.ts';
import type { TransportStats } from './transport.ts';
import {
  IMPORT_CHUNK_BYTES,
  IMPORT_HOLD_MS,
  RESTORE_BYTES_MAX,
  checkedStage,
  clearStage,
  coordinateImport,
  message,
  stageChunk,
  stagedInitialState,
  whyNotNew,
  wipeKeepingStage,
  type ImportPeer,
} from './import.ts';

/** Largest message batch accepted from a sibling: a full transport batch plus one oversized
 *  message (an append carries up to appendBytesMax), well under the 32 MiB RPC cap. */
export const DELIVER_BYTES_MAX = 16 * 1024 * 1024;

/** The core's election timeout in ticks: the alarm period and the cold-start wait derive from it. */
const ELECTION_TICKS = defaultRaftConfig('_', { nextInt: () => 0 }).electionTicks;

interface Hosted {
  peer: Peer;
  api: { fetch(request: Request): Promise<Response> };
  transport: RpcTransport;
  storage: DurableObjectPeerStorage;
  check: PersistCheck | null;
}

/** What inspect() returns (as JSON text, which crosses every RPC boundary unchanged). */
export interface PeerInspection {
  name: string;
  opened: boolean;
  status: ReturnType<Peer['status']> | null;
  transport: TransportStats | null;
  /** Derived-state writes deferred by the storage (storage.ts). */
  derived: DerivedStats | null;
  persistCheck: PersistCheckReport | null;
  badBatches: number;
  misaddressed: number;
  isolated: boolean;
  /** Messages dropped in or out while isolated. */
  isolatedDrops: number;
  /** When the Durable Object alarm will next wake this peer (ms since the epoch), or null. */
  alarmAt: number | null;
  /** Whether the tick timer runs (stopped for good once the peer is removed, and while resting). */
  ticking: boolean;
  /** The peer asked to rest (its group is quiescent and no watcher here needs ticks). */
  resting: boolean;
  /** Client requests this instance received from the Worker. */
  requests: number;
  /** What this instance has cost so far (costs.ts); the same object /status shows as `cost`. */
  cost: EdgeCosts;
}

export class PeerObject extends DurableObject<Env> {
  private readonly config: EdgeConfig;
  private hosted: Hosted | null = null;
  private opening: Promise<Hosted> | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private alarmArmed = false;
  /** The peer asked to rest (TickPort.rest) and has not resumed. */
  private resting = false;
  /** Alarm changes, in the order they were asked for. */
  private alarmOps: Promise<void> = Promise.resolve();
  private badBatches = 0;
  private misaddressed = 0;
  private isolated = false;
  private isolatedDrops = 0;
  private requests = 0;
  /** What this instance costs (costs.ts); every SQL statement of the object goes through `sql`. */
  private readonly costs = new CostMeter();
  private readonly sql = countingSql(this.ctx.storage.sql, this.costs);
  /** What first reached this instance: the alarm (it woke the peer by itself) or a call. */
  private wokenBy: 'alarm' | 'call' | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = readConfig(env as unknown as Record<string, unknown>);
    void ctx.blockConcurrencyWhile(async () => {
      if (this.mayOpen()) await this.open();
    });
  }

  // ---- public API (forwarded by the Worker) --------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    this.wokenBy ??= 'call';
    this.requests++;
    this.costs.clientRequest();
    const name = this.identity();
    if (name === null) return errorResponse(500, 'internal', 'this peer object has no valid <cluster>/<peer-id> name');
    if (!this.mayOpen()) {
      return errorResponse(404, 'not_found', `peer ${name.id} is not a member of cluster ${name.cluster} (add it with POST /join)`);
    }
    if (this.importing !== null) {
      return errorResponse(503, 'unavailable', `peer ${name.id} is loading a backup (PUT /snapshot)`, { 'Retry-After': '5' });
    }
    let hosted: Hosted;
    try {
      hosted = await this.open();
    } catch (err) {
      return errorResponse(503, 'unavailable', `peer ${name.id} could not start: ${message(err)}`, { 'Retry-After': '5' });
    }
    // A request that needs the leader wakes the group first (it may be asleep, or this object
    // was just restarted from storage and knows no leader): the wait below is then one round
    // trip, not an election timeout.
    if (needsLeader(request)) hosted.peer.wake();
    await this.awaitLeader(hosted, request);
    const response = await hosted.api.fetch(request);
    // A read shows applied state: writing what is still waiting now makes its answer wait
    // (output gate) for that state to be durable, so a peer never shows a client state that a
    // crash could take back (storage.ts, derived state).
    if (request.method === 'GET' || request.method === 'HEAD') hosted.storage.flush();
    // The router stamped X-Metcd-Leader (withPeerHeaders): the Worker sends the next request
    // straight to the leader.
    return response;
  }

  // ---- internal RPC (sibling peers, operators, tests) -----------------------------------------

  /** The ids in the membership this peer knows: the front door asks before it addresses a peer
   *  by ?peer= (worker/index.ts), over RPC, so no client credential is involved or needed. */
  async memberIds(): Promise<string[]> {
    this.wokenBy ??= 'call';
    this.costs.callReceived();
    if (this.identity() === null || !this.mayOpen()) return [];
    const m = (await this.open()).peer.membership();
    return [...m.voters, ...m.learners];
  }

  /**
   * Raft messages from a sibling peer (encodeMessages). Bad batches are counted and dropped.
   * Answers with what this peer sends back to the sender while handling them (encoded; null
   * when nothing): the sender's transport hands that to its peer (transport.ts, replies).
   */
  async deliver(batch: Uint8Array): Promise<Uint8Array | null> {
    this.wokenBy ??= 'call';
    this.costs.callReceived();
    if (!(batch instanceof Uint8Array) || batch.byteLength > DELIVER_BYTES_MAX) {
      this.badBatches++;
      return null;
    }
    // A message from the cluster opens even a peer with no state: it is being added by /join.
    const hosted = await this.open();
    const mine = this.accept(hosted, batch);
    if (mine === null || mine.length === 0) return null;
    const from = mine[0]!.from;
    const holding = mine.every((m) => m.from === from) && hosted.transport.holdReplies(from);
    hosted.peer.receive(mine);
    if (!holding) return null;
    // The peer handles a batch without waiting on anything but its (synchronous) storage, so
    // one turn of the event loop later its answers to the batch have been sent, i.e. held.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const replies = hosted.transport.takeReplies(from);
    if (replies.length === 0) return null;
    try {
      return encodeMessages(replies);
    } catch {
      return null; // lost, as on a failed call; Raft resends
    }
  }

  /** The messages of a batch from a sibling that are for this peer, or null when it is dropped. */
  private accept(hosted: Hosted, batch: Uint8Array): Message[] | null {
    if (this.isolated) {
      this.isolatedDrops++;
      return null;
    }
    let msgs: Message[];
    try {
      msgs = decodeMessages(batch);
    } catch {
      this.badBatches++;
      return null;
    }
    const mine = msgs.filter((m) => m.to === hosted.peer.id);
    this.misaddressed += msgs.length - mine.length;
    return mine;
  }

  /** This peer's state for operators and tests, as JSON text (see PeerInspection). */
  async inspect(): Promise<string> {
    this.wokenBy ??= 'call';
    const alarmAt = await this.ctx.storage.getAlarm();
    const h = this.hosted;
    const inspection: PeerInspection = {
      name: this.identity() === null ? '' : peerObjectName(this.identity()!.cluster, this.identity()!.id),
      opened: h !== null,
      status: h === null ? null : h.peer.status(),
      transport: h === null ? null : h.transport.stats(),
      derived: h === null ? null : h.storage.derivedCounts(),
      persistCheck: h?.check?.snapshot() ?? null,
      badBatches: this.badBatches,
      misaddressed: this.misaddressed,
      isolated: this.isolated,
      isolatedDrops: this.isolatedDrops,
      alarmAt,
      ticking: this.ticker !== null,
      resting: this.resting,
      requests: this.requests,
      cost: this.costs.snapshot(),
    };
    return JSON.stringify(inspection);
  }

  /** Crash this peer: its memory is lost, its storage is kept. The alarm (or the next message
   *  or request) brings it back from storage. Deferred by a turn so the caller gets an answer:
   *  how many derived-state batches (storage.ts) the crash loses, unwritten. */
  abort(reason = 'aborted by operator'): number {
    this.wokenBy ??= 'call';
    this.costs.callReceived();
    setTimeout(() => this.ctx.abort(reason), 0);
    // Lost now rather than at the abort: nothing may write them in between.
    return this.hosted?.storage.discard() ?? 0;
  }

  /** The cluster's starting membership as recorded by its first bootstrap peer (see genesisFor). */
  async genesis(): Promise<string> {
    this.wokenBy ??= 'call';
    this.costs.callReceived();
    const name = this.identity();
    if (name === null || name.id !== this.config.bootstrapPeers[0] || !this.mayOpen()) {
      throw new Error('only the first bootstrap peer records the genesis membership');
    }
    await this.open();
    const row = this.sql.exec(`SELECT value FROM meta WHERE key = 'genesis'`).toArray()[0];
    return typeof row?.value === 'string' ? row.value : JSON.stringify(initialMembership(this.config, name.id));
  }

  /** Fault drill: no ticks for `ms` (at most a minute), as when the isolate is starved or
   *  paused; the peer must notice the late tick (worker/peer/lease-guard.ts). Memory only. A
   *  resting peer is woken first (quiescence), so there are ticks to hold. */
  holdTicks(ms: number): void {
    this.wokenBy ??= 'call';
    this.costs.callReceived();
    if (this.resting) this.hosted?.peer.wake(); // a resting peer has no ticks to hold: wake it first
    if (this.ticker === null || !Number.isSafeInteger(ms) || ms < 1 || ms > 60_000) return;
    clearInterval(this.ticker);
    this.ticker = null;
    setTimeout(() => {
      if (this.hosted === null || this.hosted.peer.removed() !== null || this.resting) return;
      this.ticker ??= setInterval(() => this.onTick(), this.config.tickMs);
    }, ms);
  }

  /** Fault drill: while isolated, this peer neither receives nor sends Raft messages, as if
   *  partitioned from the others (it keeps serving its own view). Memory only: abort ends it. */
  isolate(on: boolean): void {
    this.wokenBy ??= 'call';
    this.costs.callReceived();
    this.isolated = on;
  }

  // ---- importing a backup (PUT /snapshot; import.ts) -----------------------------------------

  /** The import this peer is frozen for (memory only: a restart ends it), or null. */
  private importing: { token: string; release: ReturnType<typeof setTimeout> } | null = null;

  /** PUT /snapshot, on the peer that took it: seeds every bootstrap peer, this one included. */
  private importBackup(backup: Uint8Array, header: BackupHeader): Promise<Record<string, unknown>> {
    const self = this.identity()!.id;
    const peers = this.config.bootstrapPeers.map((id) => ({
      id,
      rpc: id === self ? (this as ImportPeer) : (peerStub(this.env, this.config, id) as unknown as ImportPeer),
    }));
    return coordinateImport(this.config.cluster, peers, backup, header);
  }

  /** Import phase 1: stop serving clients and Raft (released after IMPORT_HOLD_MS unless the
   *  import goes on) and say whether this peer's cluster is new (JSON {reason}, '' when it is). */
  async importPrepare(token: string): Promise<string> {
    this.wokenBy ??= 'call';
    const name = this.identity();
    if (name === null || !this.config.bootstrapPeers.includes(name.id) || !this.mayOpen()) {
      throw new Error('only a bootstrap peer of this cluster takes an import');
    }
    const hosted = await this.open();
    if (this.importing !== null && this.importing.token !== token) return JSON.stringify({ reason: 'another import is under way' });
    if (this.importing !== null) clearTimeout(this.importing.release);
    this.importing = { token, release: setTimeout(() => void this.importRelease(token), IMPORT_HOLD_MS) };
    this.isolated = true;
    return JSON.stringify({ reason: whyNotNew(hosted.peer, this.config.bootstrapPeers) });
  }

  /** Import phase 2: keep piece `seq` of the file. */
  async importChunk(token: string, seq: number, bytes: Uint8Array): Promise<void> {
    this.assertImporting(token);
    if (!(bytes instanceof Uint8Array) || bytes.byteLength > IMPORT_CHUNK_BYTES || !Number.isSafeInteger(seq) || seq < 0) {
      throw new Error('import: a bad piece');
    }
    stageChunk(this.ctx.storage.sql, seq, bytes);
  }

  /** Import phase 3: check the pieces, replace this peer's state by the backup and open again. */
  async importCommit(token: string, chunks: number, sha256Hex: string): Promise<void> {
    this.assertImporting(token);
    checkedStage(this.ctx.storage.sql, chunks, sha256Hex);
    const hosted = this.hosted;
    if (hosted !== null) {
      hosted.storage.discard(); // derived state about to be dropped anyway
      await hosted.peer.close();
    }
    this.hosted = null;
    wipeKeepingStage(this.ctx.storage);
    clearTimeout(this.importing!.release);
    this.importing = null;
    this.isolated = false;
    await this.open();
  }

  /** Ends an import this peer was frozen for (abandoned, or refused): it serves again. */
  async importRelease(token: string): Promise<void> {
    if (this.importing?.token !== token) return;
    clearTimeout(this.importing.release);
    this.importing = null;
    this.isolated = false;
    clearStage(this.ctx.storage.sql);
  }

  private assertImporting(token: string): void {
    if (this.importing?.token !== token) throw new Error('import: this peer was not prepared for it (or the hold ran out)');
  }

  // ---- timers ---------------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    this.costs.alarmFired();
    this.alarmArmed = false;
    if (!this.mayOpen()) return;
    const hosted = await this.open();
    if (this.resting) {
      // The lease timer of a resting leader (TickPort.rest): wake it; it resumes ticking
      // (and re-arms the watchdog alarm) through resume().
      this.logger(hosted.peer.id)('info', 'peer.wake', { by: 'lease alarm', term: hosted.peer.status().term });
      hosted.peer.wake();
      if (this.resting && this.isMember(hosted)) await this.queueAlarm(Date.now() + ELECTION_TICKS * this.config.tickMs);
      return;
    }
    if (this.wokenBy === null) {
      this.wokenBy = 'alarm';
      this.logger(hosted.peer.id)('info', 'peer.wake', { by: 'alarm', term: hosted.peer.status().term });
    }
    const failure = hosted.peer.status().failure;
    if (failure !== null) {
      // Better restarted from storage than serving nothing: come back on the next alarm.
      await this.armAlarm();
      this.ctx.abort(`peer stopped: ${failure}`);
      return;
    }
    // A removed peer (or one still waiting for /join) goes dormant; messages wake it.
    if (this.isMember(hosted)) await this.armAlarm();
  }

  private onTick(): void {
    const hosted = this.hosted;
    if (hosted === null) return;
    hosted.peer.tick();
    if (hosted.peer.removed() !== null) return void this.goDormant(hosted);
    if (this.resting) return; // that tick put it to rest (rest() stopped the timer)
    if (!this.alarmArmed && this.isMember(hosted)) void this.armAlarm();
  }

  /** A removed peer neither ticks nor wakes: it stays asleep, answering 410 when called. */
  private async goDormant(hosted: Hosted): Promise<void> {
    if (this.ticker !== null) {
      clearInterval(this.ticker);
      this.ticker = null;
      this.logger(hosted.peer.id)('info', 'peer.dormant', { reason: hosted.peer.removed() });
    }
    this.alarmArmed = false;
    await this.queueAlarm(null);
  }

  private async armAlarm(): Promise<void> {
    this.alarmArmed = true;
    // One election timeout: an evicted peer is back before its absence costs an election.
    const wakeMs = ELECTION_TICKS * this.config.tickMs;
    await this.queueAlarm(Date.now() + wakeMs);
  }

  /** Set (a time) or delete (null) the alarm, after the changes asked for before. */
  private queueAlarm(atMs: number | null): Promise<void> {
    const storage = this.ctx.storage;
    if (atMs !== null) this.costs.alarmSet();
    this.alarmOps = this.alarmOps.then(() => (atMs === null ? storage.deleteAlarm() : storage.setAlarm(atMs))).catch(() => undefined);
    return this.alarmOps;
  }

  // ---- quiescence (the peer's TickPort) -------------------------------------------------------

  /** The group sleeps: stop the interval and keep no alarm but a resting leader's lease expiry,
   *  so nothing holds the object awake (a watcher's stream does, and keeps the peer ticking). */
  private rest(hosted: Hosted | null, wakeAtMs: number | null): void {
    this.resting = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.alarmArmed = false;
    void this.queueAlarm(wakeAtMs);
    if (hosted !== null) this.logger(hosted.peer.id)('info', 'peer.rest', { leaseAlarmAt: wakeAtMs });
  }

  /** Awake again (a request, a message, the lease alarm): tick from now, and the watchdog alarm. */
  private resume(): void {
    if (!this.resting) return;
    this.resting = false;
    const hosted = this.hosted;
    if (hosted === null || hosted.peer.removed() !== null) return;
    this.ticker ??= setInterval(() => this.onTick(), this.config.tickMs);
    void this.armAlarm();
  }

  // ---- opening the peer -----------------------------------------------------------------------

  /** Cluster and peer id, from the object's name (or as recorded on its first start). */
  private identity(): { cluster: string; id: NodeId } | null {
    const name = this.ctx.id.name ?? this.storedName();
    return name === undefined ? null : parsePeerObjectName(name);
  }

  /** A bootstrap peer, or one with state, is a peer; any other name is just a stray request. */
  private mayOpen(): boolean {
    if (this.hosted !== null) return true;
    const name = this.identity();
    if (name === null || name.cluster !== this.config.cluster) return false;
    return this.config.bootstrapPeers.includes(name.id) || this.hasState();
  }

  /** Whether this peer ever started Raft (its first start persists a snapshot or a hard state). */
  private hasRaftState(): boolean {
    if (!this.hasState()) return false;
    const sql = this.sql;
    return sql.exec('SELECT 1 FROM snapshot').toArray().length > 0 || sql.exec('SELECT 1 FROM hard_state').toArray().length > 0;
  }

  /**
   * The membership a brand-new peer starts with. The first bootstrap peer (p1) defines the
   * cluster's genesis from the vars and records it; the other bootstrap peers take it from p1
   * rather than from their own vars, so raising CLUSTER_SIZE on a running cluster cannot start
   * peers with a configuration the cluster never had (they wait for /join instead). Every other
   * id starts empty and waits to be added.
   */
  private async genesisFor(id: NodeId): Promise<Membership> {
    const first = this.config.bootstrapPeers[0]!;
    if (!this.config.bootstrapPeers.includes(id)) return emptyMembership();
    if (id === first) return initialMembership(this.config, id);
    this.costs.callSent();
    const genesis = JSON.parse(await peerStub(this.env, this.config, first).genesis()) as Membership;
    return genesis.voters.includes(id) ? genesis : emptyMembership();
  }

  private hasState(): boolean {
    return this.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).toArray().length > 0;
  }

  private storedName(): string | undefined {
    if (!this.hasState()) return undefined;
    const row = this.sql.exec(`SELECT value FROM meta WHERE key = 'name'`).toArray()[0];
    return typeof row?.value === 'string' ? row.value : undefined;
  }

  private open(): Promise<Hosted> {
    if (this.hosted !== null) return Promise.resolve(this.hosted);
    this.opening ??= this.openOnce().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private async openOnce(): Promise<Hosted> {
    const name = this.identity();
    if (name === null) throw new Error('this peer object has no valid <cluster>/<peer-id> name');
    const objectName = peerObjectName(name.cluster, name.id);
    const fresh = !this.hasRaftState();
    const storage = new DurableObjectPeerStorage(
      countingStorage(this.ctx.storage, this.costs),
      DEFAULT_KV_LIMITS,
      this.config.derivedFlushMs,
    );
    const stored = this.storedName();
    if (stored !== undefined && stored !== objectName) {
      throw new Error(`storage belongs to ${stored}, not ${objectName}`);
    }
    // Only a brand-new peer needs a starting membership; Peer.open ignores it otherwise.
    const membership = fresh ? await this.genesisFor(name.id) : emptyMembership();
    const meta: Record<string, string> = {};
    if (stored === undefined)
      Object.assign(meta, { name: objectName, cluster: name.cluster, id: name.id, engine: 'durable-object-sqlite' });
    if (fresh && name.id === this.config.bootstrapPeers[0]) meta['genesis'] = JSON.stringify(membership);
    if (Object.keys(meta).length > 0) await storage.save({ meta });

    const check = this.env.CHECK_PERSIST === '1' ? new PersistCheck(this.ctx.storage.sql) : null;
    // Replies returned from our calls (deliver's answers) are handled like delivered batches.
    const onReply = (bytes: Uint8Array): void => {
      const h = this.hosted;
      if (h === null || bytes.byteLength > DELIVER_BYTES_MAX) return;
      const mine = this.accept(h, bytes);
      if (mine !== null && mine.length > 0) h.peer.receive(mine);
    };
    const rpc = new RpcTransport(
      (to) =>
        delayedTarget(
          countingTarget(peerStub(this.env, this.config, to), this.costs),
          oneWayMs(this.config.regionRttMs, this.config.locationHints, name.id, to),
        ),
      {},
      onReply,
    );
    const transport: PeerTransport = {
      send: (messages) => {
        check?.check(messages);
        if (this.isolated) {
          this.isolatedDrops += messages.length;
          return;
        }
        rpc.send(messages);
      },
    };
    const log = this.logger(name.id);
    // A peer deployed before the tiers: its records moved from the old `kv` table at this open.
    if (storage.migratedRecords !== null) log('info', 'edge.storage.migrated', { records: storage.migratedRecords });
    const peer = await Peer.open({
      id: name.id,
      cluster: name.cluster,
      storage,
      transport,
      clock: { nowMs: () => Date.now() },
      // The stall guard and the request timeout count in this object's ticks, not the default's.
      tickMs: this.config.tickMs,
      quiesce: this.config.quiesce,
      ticks: { rest: (wakeAtMs) => this.rest(this.hosted, wakeAtMs), resume: () => this.resume() },
      random: new SeededRandom(crypto.getRandomValues(new Uint32Array(1))[0]!),
      initialMembership: membership,
      // A backup staged by an import (import.ts) seeds a peer with no Raft state.
      ...(fresh ? { initialState: stagedInitialState(this.ctx.storage.sql) } : {}),
      limits: { ...EDGE_MEMORY_LIMITS, stateBytesMax: this.config.quotaBytes, snapshotEveryEntries: this.config.snapshotEveryEntries },
      cacheBytes: this.config.cacheBytes,
      kvLimits: { ...DEFAULT_KV_LIMITS, historyRetention: this.config.historyRetention },
      log,
    });
    clearStage(this.ctx.storage.sql); // seeded (or never needed): the peer's own storage holds it now
    const api = createApiRouter({
      peer,
      mode: this.config.mode,
      leaderUrl: (request, leader) => withPeerParam(request.url, leader),
      forward: (request, leader) => {
        this.costs.callSent();
        return peerStub(this.env, this.config, leader).fetch(new Request(withPeerParam(request.url, leader), request));
      },
      costs: () => this.costs.snapshot(),
      diskBytes: () => this.ctx.storage.sql.databaseSize,
      memberAddress: (id) => peerObjectName(this.config.cluster, id),
      authorize: createAuthorizer({ ...this.config.auth, lockedHint: LOCKED_HINT, now: () => Date.now() }, () => peer.tokens),
      restore: { bytesMax: RESTORE_BYTES_MAX, run: (backup, header) => this.importBackup(backup, header) },
      uiAsset: (asset) => uiAsset(this.env, asset),
      log,
    });
    const hosted: Hosted = { peer, api, transport: rpc, storage, check };
    this.hosted = hosted;
    if (peer.removed() !== null) {
      await this.goDormant(hosted);
      return hosted;
    }
    if (!this.resting) {
      this.ticker ??= setInterval(() => this.onTick(), this.config.tickMs);
      await this.armAlarm();
    }
    return hosted;
  }

  /**
   * A peer that knows no leader (cold start, just woken, election under way) holds a client
   * request for up to about two election timeouts before the router answers it: the leader is
   * usually known within a tick or two. Which requests need a leader is the router's call
   * (needsLeader): introspection and stale reads are not held.
   */
  private async awaitLeader(hosted: Hosted, request: Request): Promise<void> {
    if (!needsLeader(request)) return;
    const waitMs = (2 * ELECTION_TICKS + 2) * this.config.tickMs;
    const deadline = Date.now() + waitMs;
    const waiting = (): boolean => hosted.peer.leaderId === '' && hosted.peer.status().failure === null && hosted.peer.removed() === null;
    while (waiting() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, this.config.tickMs));
    }
  }

  private isMember(hosted: Hosted): boolean {
    if (hosted.peer.removed() !== null) return false;
    const m = hosted.peer.membership();
    return m.voters.includes(hosted.peer.id) || m.learners.includes(hosted.peer.id);
  }

  private logger(id: NodeId): PeerLog {
    return (level, event, fields) => {
      if (level === 'debug') return;
      const line = JSON.stringify({ level, event, peer: id, ...fields });
      if (level === 'error') console.error(line);
      else if (level === 'warn') console.warn(line);
      else console.log(line);
    };
  }
}

/** A dashboard file from the assets binding, by its allowlisted name (the host part of the URL
 *  is ignored by the binding); null when the deployment has no assets or not this file. */
async function uiAsset(env: Env, name: UiAssetName): Promise<Uint8Array | null> {
  if (env.ASSETS === undefined) return null;
  const res = await env.ASSETS.fetch(`https://assets.invalid/${name}`);
  if (res.status !== 200) {
    await res.body?.cancel();
    return null;
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** The same URL naming another peer: how the edge points a client (or a forward) at the leader. */
export function withPeerParam(url: string, peer: NodeId): string {
  const u = new URL(url);
  u.searchParams.set('peer', peer);
  return u.toString();
}
