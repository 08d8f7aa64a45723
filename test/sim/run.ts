// One simulated run: a pure function of (seed, options).
//
//   chaos phase  `chaosTicks` ticks of seeded faults, membership changes, transfers and client
//                operations, with every safety invariant checked as each Ready is handled;
//   heal         cut links restored, loss and duplication off, every node restarted;
//   liveness     a leader within LEADER_BOUND_TICKS, every pending client operation done
//                within CLIENTS_BOUND_TICKS, all members converged within CONVERGE_BOUND_TICKS;
//   histories    linearizability of writes + consistent/default reads, stale-read sanity.

import type { NodeId } from '../../worker/raft/types.ts';
import { checkLinearizable, checkStaleRead } from '../lin/checker.ts';
import { SimClients } from './clients.ts';
import { SimCluster } from './cluster.ts';
import { ChaosSchedule } from './faults.ts';
import { Invariants } from './invariants.ts';
import { SimNetwork } from './network.ts';
import { emptyNodeCounters, NODE_COUNTER_KEYS, type NodeCounters } from './counters.ts';
import type { HostSettings, NodeAnswer, SimHost } from './host.ts';
import {
  CALM_MIX,
  drawFaultMix,
  ELECTION_TICKS,
  HEARTBEAT_TICKS,
  replayCommand,
  resolveDisk,
  resolveOptions,
  type FaultMix,
  type SimOptions,
} from './options.ts';
import { DEFAULT_KV_LIMITS, type KvLimits } from '../../worker/kv/types.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';

type SimNode = SimHost;

/** Let every promise the peers are waiting on settle (their saves, opens, client answers). Only
 *  simulated work is queued, so what runs, and in what order, is a function of the run alone. */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
import { digestString, stream } from './streams.ts';
import { SimViolation } from './violation.ts';
import { drawStranger, Stranger } from './stranger.ts';
import { drawTokenAdmin, TokenAdmin } from './token-admin.ts';
import { LEASE_TTL_TICKS_MAX, LeaseActor } from './lease-actor.ts';
import { SimLockers } from './lockers.ts';
import { convergedHistory, SimWatchers } from './watchers.ts';

/** After convergence, every watcher has caught up with the final revision within this many
 *  ticks: a reconnect (<= 8 ticks), a slow watcher's turn (<= 6) and a replay paced by its
 *  buffer, a few frames a tick. */
export const WATCH_CATCH_UP_TICKS = 120;

/** Revisions of history the simulated clusters keep unless a seed draws a smaller window. */
const SIM_HISTORY_RETENTION = 128;

/** On about a third of the seeds each (their own stream): a history retention small enough that
 *  compaction passes watchers (a replay from 1, a lagging or reconnecting one meets `compacted`),
 *  and watch buffers small enough that slow watchers overflow. */
function drawWatchSettings(random: SeededRandom): { historyRetention: number | null; watcherEventsMax: number | null } {
  const historyRetention = random.nextInt(3) === 0 ? [4, 16, 64][random.nextInt(3)]! : null;
  const watcherEventsMax = random.nextInt(3) === 0 ? [1, 2, 5][random.nextInt(3)]! : null;
  return { historyRetention, watcherEventsMax };
}

/** Message latency after healing (ticks). */
export const HEAL_DELAY_TICKS_MAX = 2;
/**
 * Why a leader must exist LEADER_BOUND_TICKS after healing. Every node is up and the network
 * delivers within HEAL_DELAY_TICKS_MAX. Followers refuse (pre)votes for ELECTION_TICKS after
 * last hearing a leader or after restarting (the core keeps a pre-crash promise); a stale
 * leader steps down by CheckQuorum within the same time, or is still a valid leader and we are
 * done. After that, each election timeout is drawn from
 * [E, 2E), so some node starts a (pre)vote within 2E ticks, and a round (preVote there and
 * back, vote there and back) settles within 4 delays. Most rounds elect; a round fails only on
 * a split vote or a candidate with a stale log (which the up-to-date nodes then out-wait), and
 * randomized timeouts make each repeat unlikely, so ELECTION_ROUNDS_MAX rounds bound it for
 * practical purposes (measured: see test/sim/README.md).
 */
export const ELECTION_ROUNDS_MAX = 8;
export const LEADER_BOUND_TICKS = ELECTION_TICKS + ELECTION_ROUNDS_MAX * (2 * ELECTION_TICKS + 4 * HEAL_DELAY_TICKS_MAX);
/** Client attempts time out after this long (a lost answer, a crashed node). */
export const ATTEMPT_TIMEOUT_TICKS = 3 * ELECTION_TICKS;
/** During chaos an operation is abandoned (unknown outcome) after this long. */
export const GIVE_UP_TICKS = 12 * ELECTION_TICKS;
/**
 * Pending operations: a leader (LEADER_BOUND_TICKS), then at worst one attempt timeout for an
 * attempt lost before healing, a few refused retries with backoff while the leader becomes
 * known, and a commit round trip.
 */
export const CLIENTS_BOUND_TICKS = LEADER_BOUND_TICKS + 2 * ATTEMPT_TIMEOUT_TICKS + 4 * ELECTION_TICKS;
/** Convergence: a lagging member catches up by appends or a chunked snapshot, a few heartbeats each. */
export const CONVERGE_BOUND_TICKS = CLIENTS_BOUND_TICKS + 20 * HEARTBEAT_TICKS * HEAL_DELAY_TICKS_MAX;

/** One run's evidence: the hosts' counters (NodeCounters) and the run's own. */
export interface SimStats extends NodeCounters {
  nodes: number;
  ticks: number;
  ticksToLeader: number;
  ticksToClientsDone: number;
  ticksToConverge: number;
  committed: number;
  operations: number;
  staleReads: number;
  duplicatesAbsorbed: number;
  unknownOutcome: number;
  linearizability: 'ok' | 'unknown';
  messages: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  transfers: number;
  pauses: number;
}

export interface SimFailure {
  invariant: string;
  message: string;
  tick: number;
}

export interface SimResult {
  seed: number;
  options: SimOptions;
  /** Max ticks a Ready's write took in this run (0: instant writes; drawn unless forced). */
  diskDelayTicksMax: number;
  mix: FaultMix;
  ok: boolean;
  failure?: SimFailure;
  /** The exact command that replays this run. */
  replay: string;
  stats: SimStats;
  /** Digest of everything observable (history, final state): equal runs give equal digests. */
  digest: number;
  trace: string[];
}

/**
 * The session table's limits on about a quarter of the seeds (their own stream): small enough
 * that sessions expire (idle entries) and are evicted (least recently used) within a run, so the
 * state machine's session window runs under the simulator. null: the defaults (nothing drops).
 */
function drawSessionLimits(random: SeededRandom): Pick<KvLimits, 'sessionsMax' | 'sessionIdleEntriesMax'> | null {
  if (random.nextInt(4) !== 0) return null;
  return { sessionsMax: [2, 3, 5][random.nextInt(3)]!, sessionIdleEntriesMax: [8, 16, 40][random.nextInt(3)]! };
}

export async function runSim(seed: number, partial: Partial<SimOptions> = {}): Promise<SimResult> {
  const options = resolveOptions(partial);
  const setup = stream(seed, 'setup');
  const voters = options.nodes !== 0 ? options.nodes : setup.nextInt(2) === 0 ? 3 : 5;
  const mix: FaultMix = { ...(options.faults === 'none' ? CALM_MIX : drawFaultMix(stream(seed, 'mix'))), ...options.mix };
  const diskDelayTicksMax = resolveDisk(seed, options);
  const trace: string[] = [];
  let tick = 0;
  let eventStamp = 0;
  const tracing = options.trace;
  const log = (line: string): void => {
    if (tracing) trace.push(`${tick} ${line}`);
  };
  if (tracing)
    log(`seed=${seed} voters=${voters}${diskDelayTicksMax > 0 ? ` disk<=${diskDelayTicksMax}t` : ''} mix=${JSON.stringify(mix)}`);

  const network = new SimNetwork(stream(seed, 'network'), mix, options.wire);
  const sessionLimits = options.faults === 'none' ? null : drawSessionLimits(stream(seed, 'sessions'));
  const strangerRandom = stream(seed, 'stranger');
  const strangerPerMille = options.faults === 'none' ? null : drawStranger(strangerRandom);
  const watchRandom = stream(seed, 'watch');
  const watchSettings = drawWatchSettings(watchRandom);
  const invariants = new Invariants();
  invariants.sessionsMayDrop = sessionLimits !== null;
  const counters = emptyNodeCounters();
  const answerLoss = stream(seed, 'answers');
  let answerLossPercent = mix.answerLossPercent;
  let clients: SimClients | null = null;
  let chaos: ChaosSchedule | null = null;
  const onAnswer = (reqId: number, from: NodeId, answer: NodeAnswer): void => {
    if (answerLossPercent > 0 && answer.kind !== 'refused' && answerLoss.nextInt(100) < answerLossPercent) return;
    if (leaseActor?.onAnswer(reqId, from, answer) === true) return;
    clients?.onAnswer(reqId, from, answer);
  };
  const settings: HostSettings = {
    persistence: options.persistence,
    diskDelayTicksMax,
    deferDerivedTicks: mix.deferDerivedTicks,
    tierCacheBytes: mix.tierCacheBytes,
    transportWaits: mix.transportWaits > 0,
    limits: {
      pendingProposalsMax: mix.pendingMax,
      pendingReadsMax: mix.pendingMax,
      requestTimeoutTicks: ATTEMPT_TIMEOUT_TICKS,
      snapshotEveryEntries: mix.compactEveryEntries,
      snapshotSliceRecords: mix.snapshotSliceRecords,
      stateBytesMax: mix.stateBytesMax,
    },
    kvLimits: {
      ...DEFAULT_KV_LIMITS,
      ...sessionLimits,
      // A window a run outgrows, as a long-lived cluster outgrows the default 10,000: history is
      // compacted on every seed, and snapshots (which carry it) stay in proportion to the keys, as
      // in production. Without it a run's whole history rode in every snapshot, and with 64-byte
      // chunks and a snapshot every 4 entries followers could not catch up before the liveness
      // bounds (seeds 1092, 2016, 4890 of a 5,000-seed campaign).
      historyRetention: watchSettings.historyRetention ?? SIM_HISTORY_RETENTION,
    },
    ...(watchSettings.watcherEventsMax === null ? {} : { watchLimits: { watcherEventsMax: watchSettings.watcherEventsMax } }),
    clockSkewPercent: mix.clockSkewPercent,
    tuning: { appendBytesMax: mix.appendBytesMax, inflightAppendsMax: mix.inflightAppendsMax },
    watchLeaderContact: strangerPerMille !== null,
  };
  let asyncFailure: unknown = null;
  const cluster = new SimCluster({
    seed,
    settings,
    network,
    invariants,
    counters,
    now: () => tick,
    answer: onAnswer,
    trace: log,
    tracing,
    onTimeoutNow: (from, to) => chaos?.onTimeoutNow(from, to, tick),
    fail: (err) => {
      asyncFailure ??= err;
    },
  });
  clients = new SimClients(
    stream(seed, 'clients'),
    options.clients,
    options.keys,
    { attemptTimeoutTicks: ATTEMPT_TIMEOUT_TICKS, giveUpTicks: GIVE_UP_TICKS },
    {
      targets: () => [...cluster.nodes.keys()],
      send: (target, req) => cluster.request(target, req),
      now: () => tick,
      stamp: () => ++eventStamp,
      trace: log,
      tracing,
    },
    sessionLimits !== null,
    mix.appendBytesMax >= 512,
  );
  chaos = new ChaosSchedule(stream(seed, 'faults'), mix, cluster, network, voters, log);
  const stranger = strangerPerMille === null ? null : new Stranger(strangerRandom, strangerPerMille, cluster, counters, log);
  const watchers = new SimWatchers(watchRandom, cluster, counters, options.keys, log);
  const tokenRandom = stream(seed, 'tokens');
  // A token command is a few hundred bytes: not on seeds whose entries are capped below that.
  const tokenAdmin =
    options.faults !== 'none' && mix.appendBytesMax >= 1024 && drawTokenAdmin(tokenRandom)
      ? new TokenAdmin(tokenRandom, cluster, counters, log)
      : null;

  const leaseActor = new LeaseActor(stream(seed, 'leases'), cluster, counters, log);
  // A lock's put (JSON, with its lease) is ~100 bytes: not on seeds whose entries are capped below that.
  const lockers = mix.appendBytesMax >= 512 ? new SimLockers(stream(seed, 'locks'), cluster, counters, log) : null;

  const stats: SimStats = {
    nodes: voters,
    ticks: 0,
    ticksToLeader: -1,
    ticksToClientsDone: -1,
    ticksToConverge: -1,
    committed: 0,
    operations: 0,
    staleReads: 0,
    ...emptyNodeCounters(),
    duplicatesAbsorbed: 0,
    unknownOutcome: 0,
    linearizability: 'ok',
    messages: 0,
    crashes: 0,
    partitions: 0,
    confChanges: 0,
    transfers: 0,
    pauses: 0,
  };
  let failure: SimFailure | undefined;
  let finalDigest = 0;

  /** Work the peers left queued settles between the parts of a tick, as on a real host. */
  const settle = async (): Promise<void> => {
    await drain();
    if (asyncFailure !== null) throw asyncFailure;
  };
  const step = async (chaosOn: boolean): Promise<void> => {
    tick++;
    if (chaosOn) chaos.tick(tick);
    const quiet = chaosOn && chaos.quiet(tick);
    if (chaosOn) stranger?.tick();
    if (chaosOn && !quiet) tokenAdmin?.tick();
    cluster.restartDue();
    cluster.deliver(network.take(tick));
    for (const node of cluster.nodes.values()) node.tick(tick);
    await settle();
    const clientPercent = !chaosOn ? 0 : quiet ? (chaos.poke ? mix.clientPercent : 0) : tick < chaos.burstUntil ? 100 : mix.clientPercent;
    clients!.tick(clientPercent, chaosOn);
    await settle();
    leaseActor.tick(tick, quiet);
    lockers?.tick(tick, chaosOn && !quiet);
    await settle();
    watchers.tick(tick, chaosOn, quiet);
    cluster.retireRemoved(!chaosOn);
  };

  try {
    const initial = { voters: [] as string[], learners: [] as string[], addresses: {} as Record<string, string> };
    for (let i = 1; i <= voters; i++) {
      initial.voters.push(`n${i}`);
      initial.addresses[`n${i}`] = `sim://n${i}`;
    }
    for (let i = 0; i < voters; i++) cluster.spawn(initial);
    await settle();

    while (tick < options.chaosTicks) await step(true);

    // Heal: from here on the network only delays (boundedly) and nothing crashes.
    const healTick = tick;
    log('heal');
    chaos.stop();
    leaseActor.heal();
    network.heal();
    network.setFaults({ dropPercent: 0, duplicatePercent: 0, delayTicksMax: Math.min(mix.delayTicksMax, HEAL_DELAY_TICKS_MAX) });
    answerLossPercent = 0;
    cluster.retireRemoved(true);
    cluster.restartAll();
    await settle();
    for (;;) {
      const since = tick - healTick;
      if (stats.ticksToLeader < 0 && stableLeader(cluster) !== null) stats.ticksToLeader = since;
      if (stats.ticksToClientsDone < 0 && clients.pendingCount() === 0) stats.ticksToClientsDone = since;
      if (stats.ticksToLeader >= 0 && stats.ticksToClientsDone >= 0 && converged(cluster)) {
        // Every lease was abandoned at healing: each expires within its ttl and an election
        // timeout of the stable leader (twice over, should leadership move once more).
        if (leaseActor.drained(members(cluster))) {
          stats.ticksToConverge = since;
          break;
        }
        if (since >= stats.ticksToLeader + 2 * (LEASE_TTL_TICKS_MAX + ELECTION_TICKS) + 4 * ELECTION_TICKS) {
          throw new SimViolation(
            'lease-expiry',
            `abandoned leases or their keys remain ${since} ticks after healing (${describeNodes(cluster)})`,
          );
        }
      }
      if (stats.ticksToLeader < 0 && since >= LEADER_BOUND_TICKS) {
        throw new SimViolation('liveness-leader', `no stable leader ${LEADER_BOUND_TICKS} ticks after healing (${describeNodes(cluster)})`);
      }
      if (stats.ticksToClientsDone < 0 && since >= CLIENTS_BOUND_TICKS) {
        throw new SimViolation(
          'liveness-clients',
          `${clients.pendingCount()} client operations still pending ${CLIENTS_BOUND_TICKS} ticks after healing: ${clients.describePending()} (${describeNodes(cluster)})`,
        );
      }
      if (since >= CONVERGE_BOUND_TICKS) {
        throw new SimViolation(
          'liveness-converge',
          `members not converged ${CONVERGE_BOUND_TICKS} ticks after healing (${describeNodes(cluster)})`,
        );
      }
      await step(false);
    }

    // The members as of convergence: awaiting their reads lets peers run, and a role may change.
    const convergedMembers = members(cluster);
    const digests = new Set(await Promise.all(convergedMembers.map((n) => n.stateDigest())));
    if (digests.size !== 1) throw new SimViolation('state-machine-safety', `converged members hold ${digests.size} different KV states`);
    finalDigest = [...digests][0]!;

    // Watchers: catch up with the converged state, then compare with its history.
    const final = await convergedHistory(convergedMembers[0]!.peer!);
    for (let t = 0; !watchers.caughtUp(final.revision); t++) {
      if (t >= WATCH_CATCH_UP_TICKS) {
        throw new SimViolation(
          'watch-liveness',
          `watchers not caught up with revision ${final.revision} ${WATCH_CATCH_UP_TICKS} ticks after convergence: ${watchers.describe()}`,
        );
      }
      await step(false);
    }
    watchers.check(final.events, final.compacted, final.revision);
    await lockers?.check(convergedMembers[0]!.peer!);
    counters.tokensAtEnd = await convergedMembers[0]!.tokenCount();

    const lin = checkLinearizable(clients.history);
    if (lin.result === 'illegal') throw new SimViolation('linearizability', `key ${lin.key}: ${lin.explanation}`);
    stats.linearizability = lin.result;
    const stale = checkStaleRead(clients.history, clients.staleReads);
    if (stale.result === 'illegal') throw new SimViolation('stale-read', `key ${stale.key}: ${stale.explanation}`);
  } catch (thrown) {
    const err = asyncFailure ?? thrown;
    if (err instanceof SimViolation) {
      failure = { invariant: err.invariant, message: err.message, tick };
    } else {
      const e = err as Error;
      failure = { invariant: 'exception', message: `${e.name}: ${e.message}\n${e.stack ?? ''}`, tick };
    }
    log(`FAILED ${failure.message}`);
  }

  stats.ticks = tick;
  stats.committed = invariants.committedIndex;
  stats.operations = clients.history.length;
  stats.staleReads = clients.staleReads.length;
  for (const n of cluster.everSpawned) {
    counters.saves += n.disk.counters.writes;
    counters.tierRecordReads += n.disk.counters.recordReads;
    counters.tierPrefetches += n.disk.counters.asyncReads;
    counters.slowWrites += n.disk.counters.slowWrites;
    counters.derivedDeferred += n.disk.counters.derivedDeferred;
    counters.derivedLost += n.disk.counters.derivedLost;
  }
  counters.smallSessionRuns = sessionLimits !== null ? 1 : 0;
  counters.tieredRuns = mix.tierCacheBytes >= 0 ? 1 : 0;
  counters.sessionsDropped = invariants.sessionsDropped;
  counters.registrations = clients.stats.registrations;
  counters.sessionExpired = clients.stats.sessionExpired;
  counters.registrationsReapplied = invariants.registrationsReapplied;
  counters.strangerRuns = stranger !== null ? 1 : 0;
  counters.watchSmallRetentionRuns = watchSettings.historyRetention !== null ? 1 : 0;
  counters.watchSmallBufferRuns = watchSettings.watcherEventsMax !== null ? 1 : 0;
  for (const k of NODE_COUNTER_KEYS) stats[k] = counters[k];
  stats.duplicatesAbsorbed = invariants.duplicatesAbsorbed;
  stats.unknownOutcome = clients.history.filter((o) => o.output.kind === 'unknown').length;
  stats.messages = network.stats.sent;
  stats.crashes = chaos.stats.crashes;
  stats.partitions = chaos.stats.partitions;
  stats.confChanges = chaos.stats.confChangesProposed;
  stats.transfers = chaos.stats.transfers;
  stats.pauses = chaos.stats.pauses;
  const digest = digestString(
    JSON.stringify([clients.history, clients.staleReads, finalDigest, stats, failure ?? null], (_k, v: unknown) =>
      v === Infinity ? 'inf' : v,
    ),
  );
  const result: SimResult = {
    seed,
    options,
    diskDelayTicksMax,
    mix,
    ok: failure === undefined,
    replay: replayCommand(seed, options),
    stats,
    digest,
    trace,
  };
  if (failure !== undefined) result.failure = failure;
  return result;
}

/** A leader that every live voter of its membership follows, in its term. */
function stableLeader(cluster: SimCluster): SimNode | null {
  const leader = cluster.leader();
  if (leader === null) return null;
  const m = leader.currentMembership();
  if (m === null || !m.voters.includes(leader.id)) return null;
  for (const id of m.voters) {
    const n = cluster.nodes.get(id);
    if (n === undefined || !n.up || n.term !== leader.term || (n !== leader && n.leader !== leader.id)) return null;
  }
  return leader;
}

/** The nodes of the stable leader's membership, voters and learners. */
function members(cluster: SimCluster): SimNode[] {
  const leader = stableLeader(cluster);
  if (leader === null) return [];
  const m = leader.currentMembership()!;
  return [...m.voters, ...m.learners].flatMap((id) => {
    const n = cluster.nodes.get(id);
    return n === undefined ? [] : [n];
  });
}

/** Every member (voter or learner of the leader's membership) applied all of the leader's log. */
function converged(cluster: SimCluster): boolean {
  const leader = stableLeader(cluster);
  if (leader === null) return false;
  const m = leader.currentMembership()!;
  const last = leader.lastIndex();
  if (leader.commitIndex() !== last) return false;
  const all = members(cluster);
  if (all.length !== m.voters.length + m.learners.length) return false;
  return all.every((n) => n.up && n.appliedIndex === last);
}

function describeNodes(cluster: SimCluster): string {
  return ['', ...[...cluster.nodes.values()].map((n) => n.describe())].join('\n    ');
}
