// The edge deployment's settings, read from the Worker's `[vars]` (wrangler.toml). Parsed once
// per isolate; a bad value is a ConfigError naming the variable, answered as a clear 500 by the
// front door rather than a cluster that half works.

import type { Membership, NodeId } from '../raft/types.ts';
import { ROOT_TOKEN_CHARS_MIN, digestOf, rootTokenText } from '../api/authorize.ts';
import { DEFAULT_KV_LIMITS } from '../kv/types.ts';
import { DEFAULT_PEER_LIMITS, DEFAULT_TICK_MS } from '../peer/options.ts';
import { DERIVED_FLUSH_MS } from './storage.ts';
import { parseRegionRtts, type RegionRtts } from './latency.ts';
import { EDGE_CACHE_BYTES, EDGE_CACHE_BYTES_MAX, EDGE_QUOTA_BYTES_DEFAULT, EDGE_QUOTA_BYTES_MAX } from './memory.ts';

export type ForwardMode = 'redirect' | 'proxy';

export interface EdgeConfig {
  /** Prefix of every peer's Durable Object name: `<cluster>/<peer-id>`. */
  cluster: string;
  /** The peers of the default cluster, p1..pN: they bootstrap it on their first start. */
  bootstrapPeers: NodeId[];
  /** Followers answer writes with 307 to the leader (redirect) or forward them (proxy). */
  mode: ForwardMode;
  /** Placement hint per peer, applied when its object is first created. */
  locationHints: Record<NodeId, LocationHint>;
  /** How often a peer ticks while awake. */
  tickMs: number;
  /** Applied entries between snapshots (log compaction). */
  snapshotEveryEntries: number;
  /** How long derived state (commit index, apply results) may wait for the next write (storage.ts). */
  derivedFlushMs: number;
  /** Revisions of key history kept (kv/types.ts historyRetention). */
  historyRetention: number;
  /** Space quota per peer (QUOTA_BYTES): puts that would take keys, values and history past it
   *  are refused (507). A disk quota: the object's SQLite holds the state (memory.ts). */
  quotaBytes: number;
  /** Each peer's hot-record cache (CACHE_BYTES; memory.ts EDGE_CACHE_BYTES by default). */
  cacheBytes: number;
  /** An idle cluster stops ticking and lets its objects hibernate (worker/peer/quiescence.ts);
   *  QUIESCE = "false" keeps every peer ticking (and its alarm set) around the clock. */
  quiesce: boolean;
  /** Access control: the root token's digest (the secret itself is not kept), open mode
   *  (METCD_AUTH=open: development only), or locked (neither: nothing but /health is served). */
  auth: EdgeAuth;
  /** Tests only (TEST_REGION_RTT_MS, open mode only): simulated round trips between the peers'
   *  regions (latency.ts). Empty: none. */
  regionRttMs: RegionRtts;
}

export type EdgeAuth = { mode: 'open' } | { mode: 'tokens'; rootDigest: Uint8Array } | { mode: 'locked' };

/** What a locked deployment answers every caller. */
export const LOCKED_HINT =
  'this metcd deployment has no root token, so it serves nothing but /health: set one with ' +
  '"wrangler secret put METCD_ROOT_TOKEN" (locally: a METCD_ROOT_TOKEN=... line in .dev.vars), ' +
  'or start local development in open mode with "npm start"';

/** Cloudflare's Durable Object location hints. */
export const LOCATION_HINTS = ['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me'] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

export const CLUSTER_SIZE_MAX = 9;
/** Ticks faster than this would let timers, not Raft, dominate a peer's CPU. */
export const TICK_MS_MIN = 10;
export const TICK_MS_MAX = 10_000;
export const SNAPSHOT_EVERY_ENTRIES_MAX = 10_000_000;
export const DERIVED_FLUSH_MS_MAX = 600_000;
export const HISTORY_RETENTION_MAX = 100_000_000;
/** A quota below a largest key and value would refuse every put. */
export const QUOTA_BYTES_MIN = 4 * 1024 * 1024;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** The API's member id rule (worker/api/params.ts memberId): what /join accepts. */
const PEER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Peer ids on the edge are also URL parameters and object names: keep them plain. */
export function isPeerId(id: string): boolean {
  return PEER_ID_PATTERN.test(id);
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function readConfig(env: Record<string, unknown>): EdgeConfig {
  const cluster = text(env, 'CLUSTER_NAME') ?? 'metcd';
  if (!NAME_PATTERN.test(cluster)) {
    throw new ConfigError(`CLUSTER_NAME ${JSON.stringify(cluster)}: use 1-64 letters, digits, '-' or '_'`);
  }
  const size = integer(env, 'CLUSTER_SIZE', 3, 1, CLUSTER_SIZE_MAX);
  const bootstrapPeers = Array.from({ length: size }, (_, i) => `p${i + 1}`);
  const mode = text(env, 'FORWARD_MODE') ?? 'redirect';
  if (mode !== 'redirect' && mode !== 'proxy') {
    throw new ConfigError(`FORWARD_MODE ${JSON.stringify(mode)}: expected redirect or proxy`);
  }
  const auth = readAuth(env);
  return {
    cluster,
    bootstrapPeers,
    mode,
    locationHints: parseLocationHints(text(env, 'LOCATION_HINTS') ?? ''),
    tickMs: integer(env, 'TICK_MS', DEFAULT_TICK_MS, TICK_MS_MIN, TICK_MS_MAX),
    snapshotEveryEntries: integer(env, 'SNAPSHOT_EVERY_ENTRIES', DEFAULT_PEER_LIMITS.snapshotEveryEntries, 1, SNAPSHOT_EVERY_ENTRIES_MAX),
    derivedFlushMs: integer(env, 'DERIVED_FLUSH_MS', DERIVED_FLUSH_MS, 0, DERIVED_FLUSH_MS_MAX),
    historyRetention: integer(env, 'HISTORY_RETENTION', DEFAULT_KV_LIMITS.historyRetention, 1, HISTORY_RETENTION_MAX),
    quotaBytes: integer(env, 'QUOTA_BYTES', EDGE_QUOTA_BYTES_DEFAULT, QUOTA_BYTES_MIN, EDGE_QUOTA_BYTES_MAX),
    cacheBytes: integer(env, 'CACHE_BYTES', EDGE_CACHE_BYTES, 0, EDGE_CACHE_BYTES_MAX),
    auth,
    regionRttMs: readRegionRtts(env, auth),
    quiesce: flag(env, 'QUIESCE', true),
  };
}

/** TEST_REGION_RTT_MS: a test's simulated distances (latency.ts); refused outside open mode, so
 *  no deployment slows its peers down by accident. */
function readRegionRtts(env: Record<string, unknown>, auth: EdgeAuth): RegionRtts {
  const spec = text(env, 'TEST_REGION_RTT_MS');
  if (spec === undefined) return {};
  if (auth.mode !== 'open') throw new ConfigError('TEST_REGION_RTT_MS is for tests: it is refused unless METCD_AUTH=open');
  try {
    return parseRegionRtts(spec, (name) => (LOCATION_HINTS as readonly string[]).includes(name));
  } catch (err) {
    throw new ConfigError(`TEST_REGION_RTT_MS ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** METCD_AUTH ("open" or unset) and the METCD_ROOT_TOKEN secret. Errors name the variable,
 *  never the secret's value. */
function readAuth(env: Record<string, unknown>): EdgeAuth {
  const mode = text(env, 'METCD_AUTH');
  if (mode !== undefined && mode !== 'open' && mode !== 'token') {
    throw new ConfigError(`METCD_AUTH ${JSON.stringify(mode)}: expected "open" (development only) or "token" (the default)`);
  }
  if (mode === 'open') return { mode: 'open' };
  const root = env['METCD_ROOT_TOKEN'];
  if (root === undefined || root === null || root === '') return { mode: 'locked' };
  const token = typeof root === 'string' ? rootTokenText(root) : null;
  if (token === null) throw new ConfigError(`METCD_ROOT_TOKEN: expected at least ${ROOT_TOKEN_CHARS_MIN} characters without spaces`);
  return { mode: 'tokens', rootDigest: digestOf(token) };
}

/** `p1=wnam,p2=weur` → { p1: 'wnam', p2: 'weur' }. */
export function parseLocationHints(spec: string): Record<NodeId, LocationHint> {
  const hints: Record<NodeId, LocationHint> = {};
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const [id, hint, extra] = item.split('=').map((s) => s.trim());
    if (id === undefined || hint === undefined || extra !== undefined || !isPeerId(id)) {
      throw new ConfigError(`LOCATION_HINTS item ${JSON.stringify(item)}: expected <peer-id>=<hint>`);
    }
    if (!(LOCATION_HINTS as readonly string[]).includes(hint)) {
      throw new ConfigError(`LOCATION_HINTS ${id}=${hint}: unknown hint; expected one of ${LOCATION_HINTS.join(', ')}`);
    }
    hints[id] = hint as LocationHint;
  }
  return hints;
}

/** The Durable Object name of a peer, which is also its membership address on the edge. */
export function peerObjectName(cluster: string, id: NodeId): string {
  return `${cluster}/${id}`;
}

/** `<cluster>/<peer-id>` → its parts, or null when it is not a well-formed peer name. */
export function parsePeerObjectName(name: string): { cluster: string; id: NodeId } | null {
  const slash = name.indexOf('/');
  if (slash < 0) return null;
  const cluster = name.slice(0, slash);
  const id = name.slice(slash + 1);
  return NAME_PATTERN.test(cluster) && isPeerId(id) ? { cluster, id } : null;
}

/**
 * The default cluster from the vars: p1..pN as voters, addressed by their object names. The
 * first bootstrap peer starts with it and records it as the cluster's genesis; the others take
 * the genesis from p1 (peer-object.ts), so no setup call is needed and every peer of one cluster
 * starts from the same configuration. Other ids get nothing (they wait to be added by /join).
 */
export function initialMembership(config: EdgeConfig, id: NodeId): Membership {
  if (!config.bootstrapPeers.includes(id)) return { voters: [], learners: [], addresses: {} };
  const addresses: Record<NodeId, string> = {};
  for (const p of config.bootstrapPeers) addresses[p] = peerObjectName(config.cluster, p);
  return { voters: [...config.bootstrapPeers], learners: [], addresses };
}

function text(env: Record<string, unknown>, name: string): string | undefined {
  const v = env[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number') return String(v);
  throw new ConfigError(`${name}: expected a string`);
}

function flag(env: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (raw !== 'true' && raw !== 'false') throw new ConfigError(`${name} ${JSON.stringify(raw)}: expected "true" or "false"`);
  return raw === 'true';
}

function integer(env: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} ${JSON.stringify(raw)}: expected an integer in [${min}, ${max}]`);
  }
  return n;
}
