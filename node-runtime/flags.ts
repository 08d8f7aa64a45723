// The CLI's flags: parsed and checked into a NodeConfig, or a FlagError with one clear line.
// Pure (argv and env in, config out; TLS files are only checked to be readable) so every rule
// is testable without starting anything.

import { parseArgs } from 'node:util';
import { ENGINE_NAMES, isEngineName, isTieredEngine, type EngineName } from './storage/engine.ts';
import { DEFAULT_CACHE_BYTES } from '../worker/peer/record-tier.ts';
import { LOG_LEVELS, type LogLevel } from './log.ts';
import { DEFAULT_TICK_MS } from '../worker/peer/options.ts';
import { DEFAULT_KV_LIMITS } from '../worker/kv/types.ts';
import { checkAdvertiseScheme, parseTlsFlags, TLS_FLAGS, type TlsFlags } from './tls-flags.ts';
import { OFF_LOOP_READS, type OffLoopReads } from './storage/loop-read-cost.ts';

export type StartMode =
  | { kind: 'bootstrap' }
  | { kind: 'join'; target: string }
  | { kind: 'initial-cluster'; members: Record<string, string> }
  /** No start flag: only valid when the data dir already holds this node's state. */
  | { kind: 'restart' };

export interface NodeConfig {
  id: string;
  listenHost: string;
  listenPort: number;
  advertise: string;
  dataDir: string;
  engine: EngineName;
  start: StartMode;
  /** A backup file (GET /snapshot) a new cluster starts from (--restore; '' none). */
  restore: string;
  clusterId: string;
  clusterToken: string;
  /** token: clients need `Authorization: Bearer` (the root token, or one made at /auth/tokens);
   *  open: anyone reaching the port may do anything but change membership (development). */
  auth: 'token' | 'open';
  /** Where the root token is read from at start (token mode). */
  rootToken: { from: 'file'; path: string } | { from: 'env'; value: string } | null;
  mode: 'redirect' | 'proxy';
  logLevel: LogLevel;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotEntries: number;
  /** Bytes of one InstallSnapshot chunk (a snapshot is sent, and staged, a chunk at a time). */
  snapshotChunkBytes: number;
  /** Writes that would grow the keys + values past this many bytes are refused (507). */
  quotaBytes: number;
  /** The hot-record cache's budget when the engine's table holds the key space (sqlite, leveldb). */
  cacheBytes: number;
  /** When a client's misses are read off the event loop (sqlite, leveldb: loop-read-cost.ts). */
  offLoopReads: OffLoopReads;
  /** Revisions of key history kept (older ones are compacted automatically). */
  historyRetention: number;
  joinTimeoutMs: number;
  /** Testing only: accept POST /_metcd/faults to drop Raft traffic (see faults.ts). */
  faultInjection: boolean;
  /** An idle cluster stops ticking (worker/peer/quiescence.ts); --no-quiesce keeps it ticking. */
  quiesce: boolean;
  /** Give back the heap a burst left reserved once the node is quiet (heap-trim.ts); --no-heap-trim keeps it. */
  heapTrim: boolean;
  /** HTTPS and client certificates (tls-flags.ts). */
  tls: TlsFlags;
}

export class FlagError extends Error {
  override name = 'FlagError';
}

interface FlagSpec {
  type: 'string' | 'boolean';
  default: string;
  help: string;
}

/** A snapshot chunk: Raft's default, and bounds that keep one within a peer message (the
 *  transport's body limit) and above per-chunk overheads worth paying. */
const SNAPSHOT_CHUNK_BYTES_DEFAULT = 512 * 1024;
const SNAPSHOT_CHUNK_BYTES_MIN = 1024;
const SNAPSHOT_CHUNK_BYTES_MAX = 4 * 1024 * 1024;

export const FLAGS: Record<string, FlagSpec> = {
  id: { type: 'string', default: '(required)', help: "this node's id, e.g. n1 (letters, digits, - _ .)" },
  http: { type: 'string', default: '127.0.0.1:3379', help: 'host:port to listen on for clients and peers' },
  advertise: { type: 'string', default: 'http(s)://<--http>', help: 'URL other nodes and redirected clients use to reach this node' },
  'data-dir': { type: 'string', default: './data/<id>', help: 'where this node keeps its state' },
  engine: { type: 'string', default: 'sqlite', help: `storage engine: ${ENGINE_NAMES.join(' | ')}` },
  bootstrap: { type: 'boolean', default: 'false', help: 'start a new cluster with this node as its only member (it leads)' },
  join: { type: 'string', default: '', help: 'URL of a member: ask it to add this node (retried until it succeeds)' },
  'initial-cluster': { type: 'string', default: '', help: 'static membership for a new cluster: n1=http://…,n2=http://…,n3=http://…' },
  restore: {
    type: 'string',
    default: '',
    help: 'backup file (GET /snapshot) a NEW cluster starts from, with --bootstrap or --initial-cluster (the same file on every member)',
  },
  'cluster-id': { type: 'string', default: 'metcd', help: 'name of the cluster; a data dir or peer of another cluster is refused' },
  'cluster-token': { type: 'string', default: '$METCD_CLUSTER_TOKEN', help: 'shared secret for peer traffic and membership changes' },
  'root-token-file': {
    type: 'string',
    default: '$METCD_ROOT_TOKEN',
    help: 'file holding the root token (may do everything; others are made at /auth/tokens)',
  },
  auth: {
    type: 'string',
    default: 'token, or open on loopback without a root token',
    help: 'token | open (no client access control: development only)',
  },
  ...TLS_FLAGS,
  mode: { type: 'string', default: 'redirect', help: 'follower writes: redirect (307 to the leader) | proxy (forward to it)' },
  'log-level': { type: 'string', default: 'info', help: `${LOG_LEVELS.join(' | ')}` },
  'tick-ms': {
    type: 'string',
    default: String(DEFAULT_TICK_MS),
    help: 'Raft tick; election timeout = election-ticks..2×election-ticks ticks',
  },
  'election-ticks': { type: 'string', default: '10', help: 'ticks without a leader before an election' },
  'heartbeat-ticks': { type: 'string', default: '1', help: 'ticks between leader heartbeats' },
  'snapshot-entries': {
    type: 'string',
    default: '100000',
    help: 'applied entries between snapshots (log compaction; sooner once they carry 64 MiB, 8 MiB on sqlite), as etcd --snapshot-count',
  },
  'snapshot-chunk-bytes': {
    type: 'string',
    default: String(SNAPSHOT_CHUNK_BYTES_DEFAULT),
    help: `bytes of one chunk of a snapshot sent to a lagging follower, ${SNAPSHOT_CHUNK_BYTES_MIN} to ${SNAPSHOT_CHUNK_BYTES_MAX}`,
  },
  'quota-bytes': {
    type: 'string',
    default: "2147483648 on sqlite (etcd's), 536870912 on memory and leveldb",
    help: 'space quota: puts that would take keys + values + history past this many bytes get 507',
  },
  'cache-bytes': {
    type: 'string',
    default: String(DEFAULT_CACHE_BYTES),
    help: 'memory for hot records when the engine holds the key space on disk (sqlite, leveldb); 0 caches none; the memory engine holds everything in memory',
  },
  'off-loop-reads': {
    type: 'string',
    default: 'auto',
    help: `${OFF_LOOP_READS.join(' | ')}: when a read that misses the cache (sqlite, leveldb) is read on another thread: auto while reads on the event loop are slow (a disk, not the page cache), always (a network disk), never`,
  },
  'history-retention': {
    type: 'string',
    default: String(DEFAULT_KV_LIMITS.historyRetention),
    help: 'revisions of key history kept for reads at a revision and watches; older ones are compacted (the same on every node)',
  },
  'no-quiesce': {
    type: 'boolean',
    default: 'false',
    help: 'keep ticking and heartbeating while the cluster is idle (quiescence off; give it to every node alike)',
  },
  'no-heap-trim': {
    type: 'boolean',
    default: 'false',
    help: 'keep the JS heap a burst of work grew reserved instead of giving it back once the node is quiet (heap-trim.ts)',
  },
  'join-timeout-ms': { type: 'string', default: '30000', help: 'give up joining (exit 1) after this long' },
  'enable-fault-injection': { type: 'boolean', default: 'false', help: 'TESTING ONLY: accept POST /_metcd/faults to drop Raft traffic' },
  help: { type: 'boolean', default: 'false', help: 'print this help and exit' },
};

export function helpText(): string {
  const lines = [
    'metcd — a Raft-replicated key-value store (Node runtime)',
    '',
    'usage: metcd --id n1 [--bootstrap | --join URL | --initial-cluster n1=URL,…] [flags]',
    '       (or: npm run node -- …)',
    '',
    'flags:',
  ];
  for (const [name, spec] of Object.entries(FLAGS)) {
    const arg = spec.type === 'string' ? ` <value>` : '';
    lines.push(`  --${name}${arg}`.padEnd(34) + `${spec.help} (default: ${spec.default})`);
  }
  lines.push(
    '',
    'examples:',
    '  metcd --id n1 --http 127.0.0.1:3379 --data-dir ./data/n1 --engine sqlite --bootstrap',
    '  metcd --id n2 --http 127.0.0.1:3380 --data-dir ./data/n2 --engine sqlite --join http://127.0.0.1:3379',
  );
  return lines.join('\n');
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function httpUrl(value: string, flag: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new FlagError(`--${flag}: ${JSON.stringify(value)} is not a URL (expected http://host:port)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new FlagError(`--${flag}: ${JSON.stringify(value)} must be an http:// or https:// URL`);
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '')
    throw new FlagError(`--${flag}: ${JSON.stringify(value)} must not have a path or query`);
  return u.origin;
}

/** The space quota an engine gets by default: etcd's 2 GiB where the disk holds the key space,
 *  512 MiB where memory does. */
export function defaultQuotaBytes(engine: EngineName): number {
  return isTieredEngine(engine) ? 2 * 1024 ** 3 : 512 * 1024 ** 2;
}

/** `value` if it is one of `allowed`, else a FlagError naming them. */
function oneOf<T extends string>(value: string, flag: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new FlagError(`--${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return found;
}

function count(value: string, flag: string, max: number): number {
  return value === '0' ? 0 : positiveInt(value, flag, max);
}

function positiveInt(value: string, flag: string, max: number): number {
  return boundedInt(value, flag, 1, max);
}

function boundedInt(value: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new FlagError(`--${flag}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function hostPort(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  if (!m) throw new FlagError(`--http: expected host:port, got ${JSON.stringify(value)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new FlagError(`--http: port ${port} is above 65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Addresses only this machine can reach. 0.0.0.0 and :: (every interface) are not. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** --auth and the root token's source. Without --auth: token mode when a root token is given
 *  (on loopback without one, open: the caller checks that rule, it depends on --http). */
function authFlags(authFlag: string, file: string, envToken: string): { auth: 'token' | 'open'; rootToken: NodeConfig['rootToken'] } {
  if (authFlag !== '' && authFlag !== 'token' && authFlag !== 'open') {
    throw new FlagError(`--auth: expected token or open, got ${JSON.stringify(authFlag)}`);
  }
  const rootToken: NodeConfig['rootToken'] =
    file !== '' ? { from: 'file', path: file } : envToken !== '' ? { from: 'env', value: envToken } : null;
  if (authFlag === 'open' && rootToken !== null) {
    throw new FlagError('--auth open turns access control off, yet a root token is given: drop one of them');
  }
  return { auth: authFlag === 'open' ? 'open' : 'token', rootToken };
}

export type ParsedFlags = { help: true } | { help: false; config: NodeConfig };

export function parseFlags(argv: string[], env: Record<string, string | undefined>): ParsedFlags {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([k, s]) => [k, { type: s.type }])) as Record<
    string,
    { type: 'string' | 'boolean' }
  >;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    throw new FlagError(`${msg.replace(/^Unknown option/, 'unknown flag').replace(/\.?$/, '')} (see --help)`);
  }
  if (values['help'] === true) return { help: true };
  const str = (k: string, dflt: string): string => (typeof values[k] === 'string' ? (values[k] as string) : dflt);

  const id = str('id', '');
  if (id === '') throw new FlagError('--id is required (e.g. --id n1)');
  if (!ID_RE.test(id))
    throw new FlagError(`--id: ${JSON.stringify(id)} must be 1-64 of letters, digits, - _ . (starting with a letter or digit)`);

  const { host, port } = hostPort(str('http', '127.0.0.1:3379'));
  const engine = str('engine', 'sqlite');
  if (!isEngineName(engine)) throw new FlagError(`--engine: ${JSON.stringify(engine)} is not one of ${ENGINE_NAMES.join(', ')}`);
  const mode = str('mode', 'redirect');
  if (mode !== 'redirect' && mode !== 'proxy') throw new FlagError(`--mode: expected redirect or proxy, got ${JSON.stringify(mode)}`);
  const offLoopReads = oneOf(str('off-loop-reads', 'auto'), 'off-loop-reads', OFF_LOOP_READS);
  const logLevel = oneOf(str('log-level', 'info'), 'log-level', LOG_LEVELS);

  const starts = [values['bootstrap'] === true, values['join'] !== undefined, values['initial-cluster'] !== undefined].filter(
    Boolean,
  ).length;
  if (starts > 1) throw new FlagError('use only one of --bootstrap, --join, --initial-cluster');
  let start: StartMode = { kind: 'restart' };
  const fail = (message: string): never => {
    throw new FlagError(message);
  };
  const tls = parseTlsFlags(values, fail);
  let advertiseDefault = `${tls.certFile === '' ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (values['bootstrap'] === true) start = { kind: 'bootstrap' };
  if (values['join'] !== undefined) start = { kind: 'join', target: httpUrl(str('join', ''), 'join') };
  if (values['initial-cluster'] !== undefined) {
    const members: Record<string, string> = {};
    for (const part of str('initial-cluster', '').split(',')) {
      const eq = part.indexOf('=');
      const mid = part.slice(0, eq).trim();
      if (eq <= 0 || !ID_RE.test(mid)) throw new FlagError(`--initial-cluster: ${JSON.stringify(part)} is not id=http://host:port`);
      if (members[mid] !== undefined) throw new FlagError(`--initial-cluster: ${mid} is listed twice`);
      members[mid] = httpUrl(part.slice(eq + 1).trim(), 'initial-cluster');
    }
    if (members[id] === undefined) throw new FlagError(`--initial-cluster must include this node (${id})`);
    advertiseDefault = members[id]!;
    start = { kind: 'initial-cluster', members };
  }
  const restore = str('restore', '');
  if (values['restore'] !== undefined && (restore === '' || (start.kind !== 'bootstrap' && start.kind !== 'initial-cluster'))) {
    throw new FlagError(
      '--restore FILE seeds a new cluster: give it with --bootstrap or --initial-cluster (the same file on every member)',
    );
  }
  const advertise = values['advertise'] !== undefined ? httpUrl(str('advertise', ''), 'advertise') : advertiseDefault;
  if (start.kind === 'initial-cluster' && start.members[id] !== advertise) {
    throw new FlagError(`--advertise ${advertise} differs from ${start.members[id]} given for ${id} in --initial-cluster`);
  }
  checkAdvertiseScheme(advertise, tls, fail);

  const clusterToken = str('cluster-token', env['METCD_CLUSTER_TOKEN'] ?? '');
  const { auth, rootToken } = authFlags(str('auth', ''), str('root-token-file', ''), env['METCD_ROOT_TOKEN'] ?? '');
  if (auth === 'token' && rootToken === null) {
    if (values['auth'] !== undefined) throw new FlagError('--auth token needs a root token: --root-token-file or METCD_ROOT_TOKEN');
    if (!isLoopback(host)) {
      throw new FlagError(
        `--http ${host} is reachable from other machines, and no root token is set: give one (--root-token-file or ` +
          'METCD_ROOT_TOKEN), or say --auth open to let anyone who reaches it read, write and delete everything',
      );
    }
  }
  if (!isLoopback(host) && clusterToken === '' && auth === 'token') {
    throw new FlagError(`--http ${host} is reachable from other machines: peers need a --cluster-token (or METCD_CLUSTER_TOKEN)`);
  }

  const electionTicks = positiveInt(str('election-ticks', '10'), 'election-ticks', 1000);
  const heartbeatTicks = positiveInt(str('heartbeat-ticks', '1'), 'heartbeat-ticks', 1000);
  if (heartbeatTicks >= electionTicks) throw new FlagError('--heartbeat-ticks must be below --election-ticks');
  if (electionTicks < 3) throw new FlagError('--election-ticks must be at least 3 (the lease needs a drift margin)');
  return {
    help: false,
    config: {
      id,
      listenHost: host,
      listenPort: port,
      advertise,
      dataDir: str('data-dir', `./data/${id}`),
      engine,
      start,
      restore,
      clusterId: str('cluster-id', 'metcd'),
      clusterToken,
      auth: auth === 'token' && rootToken === null ? 'open' : auth,
      rootToken,
      mode,
      logLevel,
      tickMs: positiveInt(str('tick-ms', String(DEFAULT_TICK_MS)), 'tick-ms', 60_000),
      electionTicks,
      heartbeatTicks,
      snapshotEntries: positiveInt(str('snapshot-entries', '100000'), 'snapshot-entries', 100_000_000),
      snapshotChunkBytes: boundedInt(
        str('snapshot-chunk-bytes', String(SNAPSHOT_CHUNK_BYTES_DEFAULT)),
        'snapshot-chunk-bytes',
        SNAPSHOT_CHUNK_BYTES_MIN,
        SNAPSHOT_CHUNK_BYTES_MAX,
      ),
      quotaBytes: positiveInt(str('quota-bytes', String(defaultQuotaBytes(engine))), 'quota-bytes', 64 * 1024 ** 3),
      cacheBytes: count(str('cache-bytes', String(DEFAULT_CACHE_BYTES)), 'cache-bytes', 64 * 1024 ** 3),
      offLoopReads,
      historyRetention: positiveInt(str('history-retention', String(DEFAULT_KV_LIMITS.historyRetention)), 'history-retention', 100_000_000),
      joinTimeoutMs: positiveInt(str('join-timeout-ms', '30000'), 'join-timeout-ms', 86_400_000),
      faultInjection: values['enable-fault-injection'] === true,
      quiesce: values['no-quiesce'] !== true,
      heapTrim: values['no-heap-trim'] !== true,
      tls,
    },
  };
}
