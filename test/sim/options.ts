// What a simulated run is made of. A run is a pure function of (seed, SimOptions): everything
// not fixed by the options (fault mix, cluster size when `nodes` is 0, peer limits, disk) is
// drawn from the seed, so `--seed S` plus the printed flags replays it exactly.

import { SeededRandom } from '../../worker/raft/random.ts';
import { stream } from './streams.ts';
import { PERSISTENCE_MODES, type PersistenceMode } from './storage.ts';

export { PERSISTENCE_MODES, type PersistenceMode } from './storage.ts';

/** The simulated tick in wall milliseconds: the peer's tickMs and the clock's step. */
export const SIM_TICK_MS = 100;

/**
 * The slow disk: a write lands 0..max ticks after save() (each write's delay drawn from the
 * node's own stream `disk:<id>`), in order; meanwhile the peer keeps stepping messages, ticking
 * and taking requests, as it does on a real host while it awaits its save. 0 = every write is
 * durable within save(). 'seeded' draws it per seed from its own stream `disk`: slow on about
 * half the seeds. The broken disk ack-before-durable needs writes that take time: at least 2.
 */
export type DiskOption = number | 'seeded';
export const DISK_DELAY_TICKS_MAX = 8;

/** The slow disk's max write delay of one run (0: instant writes). */
export function resolveDisk(seed: number, opts: SimOptions): number {
  let max: number;
  if (opts.diskDelayTicksMax !== 'seeded') max = opts.diskDelayTicksMax;
  else {
    const r = stream(seed, 'disk');
    max = r.nextInt(2) === 0 ? [1, 2, 4][r.nextInt(3)]! : 0;
  }
  return opts.persistence === 'ack-before-durable' ? Math.max(2, max) : max;
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
  /** A node's process pauses (no ticks, messages or requests) for a few ticks. */
  pausePerMille: number;
  /** Ticks the disk may hold derived-state batches (ports.ts onlyDerivedState) for the next write; 0: never. */
  deferDerivedTicks: number;
  /** Records per slice of the peer's snapshot job (small: the job spans several ticks). */
  snapshotSliceRecords: number;
  /** The space quota (bytes of keys and values): small on some seeds, so puts meet no-space. */
  stateBytesMax: number;
  /** 1: the transport holds commit-only appends for company (ports.ts mayWaitForCompany). */
  transportWaits: number;
  /** The peer's pendingProposalsMax and pendingReadsMax: small on some seeds (too-many-pending). */
  pendingMax: number;
  /** Quiet stretches (faults.ts): how often one starts, and during one how often some clients
   *  start an operation anyway (a random wake). Not drawn: the same on every seed. */
  quietPerMille: number;
  quietPokePerMille: number;
  /** A tiered engine's hot-record cache budget in bytes (0 to 4096: a few records at most, so
   *  nearly every read goes to the disk), or -1 for the state all in memory. */
  tierCacheBytes: number;
}

/** No quota to speak of (the peer's default). */
export const STATE_BYTES_UNLIMITED = 64 * 1024 * 1024;

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
  pausePerMille: 0,
  deferDerivedTicks: 0,
  snapshotSliceRecords: 1024,
  stateBytesMax: STATE_BYTES_UNLIMITED,
  transportWaits: 0,
  pendingMax: 4096,
  quietPerMille: 3,
  quietPokePerMille: 25,
  tierCacheBytes: -1,
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
    pausePerMille: on() ? pick([5, 15]) : 0,
    deferDerivedTicks: on() ? pick([1, 3, 10]) : 0,
    snapshotSliceRecords: pick([1, 2, 1024]),
    // Keys k0..k2 with values like "c1.12" hold about 20 bytes: 16 and 24 make puts meet the quota.
    stateBytesMax: random.nextInt(4) === 0 ? pick([16, 24]) : STATE_BYTES_UNLIMITED,
    transportWaits: on() ? 1 : 0,
    // 4 clients with one operation each: 1 and 2 fill the waiting rooms now and then.
    pendingMax: random.nextInt(4) === 0 ? pick([1, 2]) : 4096,
    quietPerMille: 3,
    quietPokePerMille: 25,
    tierCacheBytes: on() ? pick([0, 600, 4096]) : -1,
  };
}

export function resolveOptions(partial: Partial<SimOptions> = {}): SimOptions {
  const opts = { ...DEFAULT_OPTIONS, ...partial };
  if (![0, 3, 5].includes(opts.nodes)) throw new RangeError(`nodes must be 0, 3 or 5, got ${opts.nodes}`);
  if (!(opts.chaosTicks >= 0 && opts.chaosTicks <= 1_000_000)) throw new RangeError('chaosTicks out of range');
  if (!(opts.clients >= 0 && opts.clients <= 64)) throw new RangeError('clients must be in [0, 64]');
  if (!(opts.keys >= 1 && opts.keys <= 64)) throw new RangeError('keys must be in [1, 64]');
  if (!PERSISTENCE_MODES.includes(opts.persistence))
    throw new RangeError(`persistence must be one of ${PERSISTENCE_MODES.join(', ')}, got ${opts.persistence}`);
  const disk = opts.diskDelayTicksMax;
  if (disk !== 'seeded' && !(Number.isInteger(disk) && disk >= 0 && disk <= DISK_DELAY_TICKS_MAX)) {
    throw new RangeError(`diskDelayTicksMax must be 'seeded' or an integer in [0, ${DISK_DELAY_TICKS_MAX}], got ${disk}`);
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
  // Only a slow disk is named: a seed that drew an instant one replays the same without it.
  const disk = resolveDisk(seed, opts);
  if (disk > 0) flags.push(`--disk-delay ${disk}`);
  if (opts.wire !== d.wire) flags.push(opts.wire ? '--wire' : '--no-wire');
  if (Object.keys(opts.mix).length > 0) flags.push(`--mix '${JSON.stringify(opts.mix)}'`);
  return `npm run sim -- ${flags.join(' ')}`;
}
