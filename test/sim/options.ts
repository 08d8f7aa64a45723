// What a simulated run is made of. A run is a pure function of (seed, SimOptions): everything
// not fixed by the options (fault mix, cluster size when `nodes` is 0, compaction cadence) is
// drawn from the seed, so `--seed S` plus the printed flags replays it exactly.

import { SeededRandom } from '../../worker/raft/random.ts';
import { stream } from './streams.ts';

/**
 * Deliberately broken host behaviours, used only to prove the checkers catch real faults.
 *   forget-vote        the host does not persist `vote` (as if the fsync after voting was skipped)
 *   send-before-fsync  the host sends a Ready's messages before its write is durable, so a crash
 *                      right after sending loses the log entries and hard state they promised
 *   ack-before-fsync   an overlap host that also lets a follower's append acknowledgements leave
 *                      with the leader's early appends, before the entries they acknowledge are
 *                      durable: the leader counts an ack that a crash can take back
 * The first two are strict hosts, the last an overlap host (see HostMode).
 */
export type PersistenceMode = 'correct' | 'forget-vote' | 'send-before-fsync' | 'ack-before-fsync';
export const PERSISTENCE_MODES: PersistenceMode[] = ['correct', 'forget-vote', 'send-before-fsync', 'ack-before-fsync'];

/**
 * How a node's host orders a Ready.
 *   strict   persist, send everything, apply (the Ready contract's plain order)
 *   overlap  as worker/peer/peer.ts since 71cad32: send RawNode.splitMessages' `beforePersist`
 *            (a leader's appends and heartbeats), apply the committed entries if they are all
 *            <= persistedIndex() and answer their clients, release read states, then persist
 *            (with those entries' KV effects in the same write), send `afterPersist`, apply the
 *            rest (thesis 10.2.1)
 *   seeded   a coin flip per seed picks one of the two (its own stream, so forcing the drawn
 *            mode with --host replays the same run)
 */
export type HostMode = 'strict' | 'overlap';
export type HostOption = HostMode | 'seeded';
export const HOST_OPTIONS: HostOption[] = ['seeded', 'strict', 'overlap'];

/** The host mode of one run: forced by a broken persistence mode, by --host, or drawn from the seed. */
export function resolveHost(seed: number, opts: SimOptions): HostMode {
  const forced = hostOfPersistence(opts.persistence);
  if (forced !== null) return forced;
  if (opts.host !== 'seeded') return opts.host;
  return stream(seed, 'host').nextInt(2) === 0 ? 'strict' : 'overlap';
}

/** The broken modes are defined against one host order. */
function hostOfPersistence(mode: PersistenceMode): HostMode | null {
  if (mode === 'forget-vote' || mode === 'send-before-fsync') return 'strict';
  if (mode === 'ack-before-fsync') return 'overlap';
  return null;
}

/**
 * The slow disk: a node's write of a Ready completes 0..max ticks after ready() (each write's
 * delay drawn from the node's own stream); meanwhile the node keeps stepping messages, ticking
 * and taking client requests into the core, as worker/peer/peer.ts does while it awaits its
 * save, and calls ready() again only after that write's advance(). 0 = an instant write (the
 * model before the slow disk existed). 'seeded' draws it per seed from its own stream `disk`:
 * slow on about half the overlap seeds and a quarter of the strict ones.
 */
export type DiskOption = number | 'seeded';
export const DISK_DELAY_TICKS_MAX = 8;

/** The slow disk's max write delay of one run (0: instant writes). */
export function resolveDisk(seed: number, opts: SimOptions, host: HostMode): number {
  if (opts.diskDelayTicksMax !== 'seeded') return opts.diskDelayTicksMax;
  const r = stream(seed, 'disk');
  const slow = r.nextInt(4) < (host === 'overlap' ? 2 : 1);
  return slow ? [1, 2, 4][r.nextInt(3)]! : 0;
}

export interface SimOptions {
  /** 3 or 5 voters at start; 0 = pick from the seed. */
  nodes: 0 | 3 | 5;
  /** Ticks of the chaos phase (faults and new client operations). */
  chaosTicks: number;
  /** Concurrent clients (each has at most one operation outstanding). */
  clients: number;
  /** Distinct keys the clients contend on. */
  keys: number;
  /** 'seeded' = draw the fault mix from the seed; 'none' = a clean network and no faults. */
  faults: 'seeded' | 'none';
  persistence: PersistenceMode;
  host: HostOption;
  /** Max ticks a Ready's write takes (see DiskOption). */
  diskDelayTicksMax: DiskOption;
  /** Push every message through the wire codec (catches aliasing and codec bugs). */
  wire: boolean;
  /** Record a human-readable event trace (for --seed replays and the determinism test). */
  trace: boolean;
  /** Overrides for the seeded fault mix (e.g. a crash-heavy mix for a targeted test). */
  mix: Partial<FaultMix>;
}

export const DEFAULT_OPTIONS: SimOptions = {
  nodes: 0,
  chaosTicks: 300,
  clients: 4,
  keys: 3,
  faults: 'seeded',
  persistence: 'correct',
  host: 'seeded',
  diskDelayTicksMax: 'seeded',
  wire: true,
  trace: false,
  mix: {},
};

/** Raft timing used by every simulated node. */
export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 2;
export const LEASE_DRIFT_TICKS = 2;

/** The fault mix of one run, drawn from its seed. Rates are per tick unless named otherwise. */
export interface FaultMix {
  dropPercent: number;
  duplicatePercent: number;
  /** Message latency is uniform in [1, delayTicksMax]; jitter reorders messages. */
  delayTicksMax: number;
  crashPerMille: number;
  /** A crashed node stays down for [0, downTicksMax] ticks (0: restarts in the same tick). */
  downTicksMax: number;
  partitionPerMille: number;
  healPerMille: number;
  membershipPerMille: number;
  transferPerMille: number;
  /** A host snapshots (compacts) once this many entries were applied since its last snapshot. */
  compactEveryEntries: number;
  /** Client answers that never arrive (the command may still have applied). */
  answerLossPercent: number;
  /**
   * Share of nodes whose clock runs slow or fast (see clock.ts): within the lease's documented
   * drift bound, so lease reads must stay linearizable.
   */
  clockSkewPercent: number;
  /** Raft tuning per run (not faults, but drawn the same way): batching and pipelining limits. */
  appendBytesMax: number;
  inflightAppendsMax: number;
  /** Client operation start probability per idle client per tick. */
  clientPercent: number;
}

export const CALM_MIX: FaultMix = {
  dropPercent: 0,
  duplicatePercent: 0,
  delayTicksMax: 1,
  crashPerMille: 0,
  downTicksMax: 0,
  partitionPerMille: 0,
  healPerMille: 0,
  membershipPerMille: 0,
  transferPerMille: 0,
  compactEveryEntries: 1_000_000,
  answerLossPercent: 0,
  clockSkewPercent: 0,
  appendBytesMax: 512,
  inflightAppendsMax: 4,
  clientPercent: 30,
};

/** Each fault kind is switched on for roughly half the seeds so mixes vary widely. */
export function drawFaultMix(random: SeededRandom): FaultMix {
  const on = (): boolean => random.nextInt(2) === 0;
  const pick = (values: number[]): number => values[random.nextInt(values.length)]!;
  return {
    dropPercent: on() ? pick([1, 5, 10, 25]) : 0,
    duplicatePercent: on() ? pick([1, 5, 20]) : 0,
    delayTicksMax: pick([1, 2, 3, 5, 8]),
    crashPerMille: on() ? pick([5, 10, 30]) : 0,
    downTicksMax: pick([0, 5, 20, 60]),
    partitionPerMille: on() ? pick([5, 15, 40]) : 0,
    healPerMille: pick([20, 50, 100]),
    membershipPerMille: on() ? pick([10, 30]) : 0,
    transferPerMille: on() ? pick([5, 20]) : 0,
    compactEveryEntries: pick([4, 10, 30, 100]),
    answerLossPercent: on() ? pick([5, 20]) : 0,
    clockSkewPercent: on() ? pick([30, 60, 100]) : 0,
    // 64 bytes: one entry per append; 4096: whole batches.
    appendBytesMax: pick([64, 512, 4096]),
    inflightAppendsMax: pick([1, 4, 16]),
    clientPercent: pick([10, 30, 60]),
  };
}

export function resolveOptions(partial: Partial<SimOptions> = {}): SimOptions {
  const opts = { ...DEFAULT_OPTIONS, ...partial };
  if (![0, 3, 5].includes(opts.nodes)) throw new RangeError(`nodes must be 0, 3 or 5, got ${opts.nodes}`);
  if (!(opts.chaosTicks >= 0 && opts.chaosTicks <= 1_000_000)) throw new RangeError('chaosTicks out of range');
  if (!(opts.clients >= 0 && opts.clients <= 64)) throw new RangeError('clients must be in [0, 64]');
  if (!(opts.keys >= 1 && opts.keys <= 64)) throw new RangeError('keys must be in [1, 64]');
  if (!HOST_OPTIONS.includes(opts.host)) throw new RangeError(`host must be one of ${HOST_OPTIONS.join(', ')}, got ${opts.host}`);
  const disk = opts.diskDelayTicksMax;
  if (disk !== 'seeded' && !(Number.isInteger(disk) && disk >= 0 && disk <= DISK_DELAY_TICKS_MAX)) {
    throw new RangeError(`diskDelayTicksMax must be 'seeded' or an integer in [0, ${DISK_DELAY_TICKS_MAX}], got ${disk}`);
  }
  const forced = hostOfPersistence(opts.persistence);
  if (forced !== null && opts.host !== 'seeded' && opts.host !== forced) {
    throw new RangeError(`persistence ${opts.persistence} needs host ${forced}, got ${opts.host}`);
  }
  for (const [k, v] of Object.entries(opts.mix)) {
    if (!(k in CALM_MIX)) throw new RangeError(`unknown fault mix field ${k}`);
    if (typeof v !== 'number' || !(v >= 0)) throw new RangeError(`fault mix field ${k} must be a non-negative number`);
  }
  return opts;
}

/**
 * The exact command that replays one run: only flags that differ from the defaults, plus the
 * host mode the run used (drawn or forced), so a reader sees it without replaying.
 */
export function replayCommand(seed: number, opts: SimOptions): string {
  const flags = [`--seed ${seed}`];
  const d = DEFAULT_OPTIONS;
  if (opts.nodes !== d.nodes) flags.push(`--nodes ${opts.nodes}`);
  if (opts.chaosTicks !== d.chaosTicks) flags.push(`--ticks ${opts.chaosTicks}`);
  if (opts.clients !== d.clients) flags.push(`--clients ${opts.clients}`);
  if (opts.keys !== d.keys) flags.push(`--keys ${opts.keys}`);
  if (opts.faults !== d.faults) flags.push(`--faults ${opts.faults}`);
  if (opts.persistence !== d.persistence) flags.push(`--persistence ${opts.persistence}`);
  const host = resolveHost(seed, opts);
  if (hostOfPersistence(opts.persistence) === null) flags.push(`--host ${host}`);
  // Only a slow disk is named: a seed that drew an instant one replays the same without it.
  const disk = resolveDisk(seed, opts, host);
  if (disk > 0) flags.push(`--disk-delay ${disk}`);
  if (opts.wire !== d.wire) flags.push(opts.wire ? '--wire' : '--no-wire');
  if (Object.keys(opts.mix).length > 0) flags.push(`--mix '${JSON.stringify(opts.mix)}'`);
  return `npm run sim -- ${flags.join(' ')}`;
}
