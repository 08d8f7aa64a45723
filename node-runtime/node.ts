// One metcd node on a plain server: the host ports (storage engine, HTTP transport, ticker,
// clock, randomness) around the shared Peer, and the shared router behind a node:http server.
// Nothing here decides anything about Raft or the API; it wires, starts and stops.

import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Peer, type PeerLog } from '../worker/peer/peer.ts';
import { createApiRouter } from '../worker/api/router.ts';
import { nodeAuthorizer } from './access.ts';
import { SeededRandom } from '../worker/raft/random.ts';
import type { Membership, NodeId } from '../worker/raft/types.ts';
import { DEFAULT_KV_LIMITS } from '../worker/kv/types.ts';
import type { NodeConfig } from './flags.ts';
import { createFront } from './front.ts';
import { startHttpServer, type RunningServer } from './http-server.ts';
import { joinCluster } from './join.ts';
import { createLogger, type LogFields, type Logger } from './log.ts';
import { NodeStorage } from './storage/open.ts';
import { dataDirBytes } from './storage/disk-usage.ts';
import { RestoreError, loadRestoreFile, restoreFields } from './restore.ts';
import { Ticker } from './ticker.ts';
import { HeapTrimmer, obtainGc } from './heap-trim.ts';
import { Faults } from './faults.ts';
import { HttpTransport } from './transport.ts';
import { loadTls } from './tls-files.ts';
import { PeerClient, toResponse } from './peer-client.ts';
import { uiAssetReader } from './ui-assets.ts';

export interface RunningNode {
  readonly peer: Peer;
  readonly port: number;
  readonly log: Logger;
  /** Leader: hand leadership to the most caught-up voter first. Then flush, close everything. */
  stop(opts?: { transferLeadership?: boolean }): Promise<void>;
}

const mb = (bytes: number): number => Math.round(bytes / 1e6);

/** The raft route may carry whole snapshot chunks and batched appends. */
const RAFT_BODY_BYTES_MAX = 64 * 1024 * 1024;
/** Above any body the router accepts (it enforces its own, finer limits first). */
const API_BODY_BYTES_MAX = 2 * DEFAULT_KV_LIMITS.commandBytesMax + 64 * 1024;
const TRANSFER_WAIT_MS = 3000;
/** Senders whose address we remember before a configuration names them (see raftAddress). */
const LEARNED_ADDRESSES_MAX = 1000;

function peerLogAdapter(log: Logger): PeerLog {
  return (level, event, fields) => {
    const flat: LogFields = {};
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'id') continue;
      flat[k] = v === null || typeof v === 'object' ? JSON.stringify(v) : (v as string | number | boolean | undefined);
    }
    log[level](event, flat);
  };
}

function initialMembership(cfg: NodeConfig): Membership {
  switch (cfg.start.kind) {
    case 'bootstrap':
      return { voters: [cfg.id], learners: [], addresses: { [cfg.id]: cfg.advertise } };
    case 'initial-cluster':
      return { voters: Object.keys(cfg.start.members), learners: [], addresses: { ...cfg.start.members } };
    default:
      return { voters: [], learners: [], addresses: {} };
  }
}

/**
 * Starts a node. Resolves once it listens and its peer is open; `onFatal` is called later if
 * the node must stop (storage failure, join impossible): the caller logs and exits non-zero.
 */
export async function startNode(cfg: NodeConfig, onFatal: (err: Error) => void, write?: (line: string) => void): Promise<RunningNode> {
  let peer: Peer | undefined;
  const log = createLogger({ level: cfg.logLevel, node: cfg.id, term: () => peer?.status().term, ...(write ? { write } : {}) });
  if (cfg.clusterToken === '') {
    log.warn(
      'no cluster token: anyone who can reach this port can send Raft messages and change membership (set --cluster-token or METCD_CLUSTER_TOKEN)',
    );
  }

  const faults = cfg.faultInjection ? new Faults() : undefined;
  if (faults) log.warn('fault injection enabled (testing only)');
  const tls = loadTls(cfg.tls); // an unusable file stops the start here, before anything listens
  const restore = cfg.restore === '' ? null : await loadRestoreFile(cfg.restore); // so does a bad backup (restore.ts)
  /** Join and proxy-mode forwarding: calls to members with the peer certificate. */
  const peerClient = new PeerClient(tls.peer);

  // Addresses named by senders whose messages the peer stepped: a joining node hears from the
  // leader before it has the membership that names the leader's address, a lagging follower
  // from a new leader its configuration does not name yet. See raftAddress.
  const learned = new Map<string, string>();
  const transport = new HttpTransport({
    selfId: cfg.id,
    advertise: cfg.advertise,
    clusterId: cfg.clusterId,
    token: cfg.clusterToken,
    addressOf: (id) => raftAddress(peer, learned, id),
    log,
    limits: { requestTimeoutMs: Math.max(1000, 2 * cfg.electionTicks * cfg.tickMs) },
    ...(faults ? { faults } : {}),
    tls: tls.peer,
  });
  const gc = cfg.heapTrim ? obtainGc() : null;
  if (cfg.heapTrim && gc === null) log.warn('heap trim: this Node does not allow gc(); the heap a burst grows stays reserved');
  const heapTrimmer =
    gc === null
      ? null
      : new HeapTrimmer(gc, (t) =>
          log.info('heap trimmed', {
            reservedMB: `${mb(t.heapTotalBeforeBytes)} -> ${mb(t.heapTotalAfterBytes)}`,
            inUseMB: mb(t.heapUsedAfterBytes),
            pauseMs: Math.round(t.pauseMs),
          }),
        );
  const ticker = new Ticker(cfg.tickMs, 4 * cfg.electionTicks, () => peer?.tick());
  // Wall-clock aligned but monotonic: the peer also times tick stalls with it.
  const nowMs = (): number => Math.floor(performance.timeOrigin + performance.now());
  const authorize = nodeAuthorizer(cfg, () => peer!.tokens, log);
  const router = createApiRouter({
    get peer() {
      return peer!;
    },
    authorize,
    mode: cfg.mode,
    leaderUrl: (request, _leader, address) => atAddress(address, new URL(request.url)).toString(),
    forward: async (request, _leader, address) => {
      const body = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer());
      const call = { method: request.method, headers: Object.fromEntries(request.headers), ...(body ? { body } : {}) };
      return toResponse(await peerClient.request(atAddress(address, new URL(request.url)), call));
    },
    log: (level, event, fields) => log[level](event, { detail: JSON.stringify(fields) }),
    uiAsset: uiAssetReader(),
    diskBytes: () => dataDirBytes(cfg.dataDir),
    processMemory: () => {
      const m = process.memoryUsage();
      const trims =
        heapTrimmer === null ? {} : { heapTrims: heapTrimmer.stats.trims, heapTrimReleasedBytes: heapTrimmer.stats.releasedBytes };
      return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, ...trims };
    },
  });
  const front = createFront({
    selfId: cfg.id,
    clusterId: cfg.clusterId,
    token: cfg.clusterToken,
    peer: () => peer,
    router,
    raftBodyBytesMax: RAFT_BODY_BYTES_MAX,
    log,
    ...(faults ? { faults } : {}),
    certAuth: tls.certAuth,
    learn: (from, address) => {
      if (learned.has(from) || learned.size < LEARNED_ADDRESSES_MAX) learned.set(from, address);
    },
  });

  // Listen first: a port in use must fail before the data dir is touched.
  const server: RunningServer = await startHttpServer({
    host: cfg.listenHost,
    port: cfg.listenPort,
    bodyBytesMax: API_BODY_BYTES_MAX,
    log,
    tls: tls.server,
    handler: (request) => {
      ticker.catchUp(); // time passed while we were stalled counts before anything is served
      return front(request);
    },
  });

  let storage: NodeStorage;
  try {
    storage = await NodeStorage.open({
      dataDir: cfg.dataDir,
      engine: cfg.engine,
      nodeId: cfg.id,
      clusterId: cfg.clusterId,
      log,
      offLoopReads: cfg.offLoopReads,
    });
  } catch (err) {
    await server.close();
    throw err;
  }
  if (storage.fresh && cfg.start.kind === 'restart') {
    await storage.close();
    await server.close();
    throw new Error(`data dir ${cfg.dataDir} is new: pass --bootstrap, --join <url> or --initial-cluster to start this node`);
  }
  if (!storage.fresh && restore !== null) {
    await storage.close();
    await server.close();
    throw new RestoreError(`--restore: data dir ${cfg.dataDir} already holds state; restore only into a new, empty data dir`);
  }
  if (restore !== null) log.info('restoring from a backup', { file: cfg.restore, ...restoreFields(restore.header) });
  if (!storage.fresh && cfg.start.kind !== 'restart') {
    log.info('data dir holds state: restarting from it and ignoring the start flag', { start: cfg.start.kind });
  }
  const fresh = storage.fresh;
  try {
    peer = await Peer.open({
      id: cfg.id,
      cluster: cfg.clusterId,
      storage,
      transport,
      clock: { nowMs, elapsedMs: () => performance.now() }, // whole ms, as the edge's Date.now(); fractional for durations
      tickMs: cfg.tickMs,
      quiesce: cfg.quiesce,
      cacheBytes: cfg.cacheBytes,
      // The ticker stops while the group sleeps and starts again, owing nothing, on a wake.
      ticks: {
        rest: (wakeAtMs) => ticker.rest(wakeAtMs === null ? null : Math.max(0, wakeAtMs - nowMs()), () => peer?.wake()),
        resume: () => ticker.resume(),
      },
      random: new SeededRandom(randomInt(0, 2 ** 32 - 1)),
      initialMembership: initialMembership(cfg),
      ...(restore === null ? {} : { initialState: restore.initialState }),
      raft: { electionTicks: cfg.electionTicks, heartbeatTicks: cfg.heartbeatTicks, snapshotChunkBytes: cfg.snapshotChunkBytes },
      limits: { snapshotEveryEntries: cfg.snapshotEntries, stateBytesMax: cfg.quotaBytes },
      kvLimits: { ...DEFAULT_KV_LIMITS, historyRetention: cfg.historyRetention },
      log: peerLogAdapter(log),
    });
  } catch (err) {
    await storage.close().catch(() => undefined);
    await server.close();
    throw err;
  }
  const openedPeer = peer;
  const removed = openedPeer.removed();
  if (removed !== null) {
    // Its storage says so (worker/peer/removal.ts): campaigning again would only disturb the
    // cluster, and a start flag (--join) cannot apply to a data dir that holds state.
    await openedPeer.close();
    await server.close();
    throw new Error(`${removed}; to add this machine again, start a new node with an empty --data-dir and --join`);
  }
  ticker.start();
  heapTrimmer?.start();
  log.info('node started', {
    engine: cfg.engine,
    http: `${cfg.listenHost}:${server.port}`,
    advertise: cfg.advertise,
    https: tls.server !== null,
    dataDir: cfg.dataDir,
    start: fresh ? cfg.start.kind : 'restart',
  });

  let stopping: Promise<void> | undefined;
  const failureCheck = setInterval(() => {
    if (stopping !== undefined) return;
    const failure = openedPeer.status().failure;
    if (failure !== null) onFatal(new Error(`peer stopped: ${failure}`));
    const removedNow = openedPeer.removed();
    if (removedNow !== null) onFatal(new Error(`${removedNow}; exiting`));
  }, 500);

  if (fresh && cfg.start.kind === 'join') {
    const target = cfg.start.target;
    const join = { target, id: cfg.id, address: cfg.advertise, token: cfg.clusterToken, timeoutMs: cfg.joinTimeoutMs, log };
    joinCluster({ ...join, client: peerClient }).catch((err: unknown) => {
      if (stopping === undefined) onFatal(err instanceof Error ? err : new Error(String(err)));
    });
  }

  async function transferAway(): Promise<void> {
    if (!openedPeer.isLeader()) return;
    const others = openedPeer.status().members.filter((m) => m.voter && m.id !== cfg.id);
    if (others.length === 0) return;
    others.sort((a, b) => (b.match ?? 0) - (a.match ?? 0));
    const to = others[0]!.id;
    log.info('transferring leadership before shutdown', { to });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        openedPeer.transferLeader(to),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), TRANSFER_WAIT_MS))),
      ]);
      log.info('leadership transferred', { to });
    } catch (err) {
      log.warn('leadership transfer failed; stopping anyway', { to, error: err instanceof Error ? err.message : String(err) });
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    peer: openedPeer,
    port: server.port,
    log,
    stop(opts = {}) {
      stopping ??= (async () => {
        clearInterval(failureCheck);
        if (opts.transferLeadership !== false) await transferAway();
        // Closing the peer answers every waiting request (503, retry) and flushes pending apply
        // results to storage; only then stop time and the sockets.
        await openedPeer.close();
        ticker.stop();
        heapTrimmer?.stop();
        await server.close();
        transport.close();
        peerClient.close();
        log.info('node stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Where Raft messages for `id` go, and the cluster token with them: its address in a committed
 * configuration (Peer.committedAddress). A learner only appended (a /join whose entry has not
 * committed) is not contacted yet: the core starts replicating to it at append, so the token
 * would otherwise reach whatever address a /join names. A learned address serves only an id no
 * configuration names (a leader that a joining or lagging node does not know yet), so a sender
 * cannot redirect a member's traffic to itself.
 */
function raftAddress(peer: Peer | undefined, learned: ReadonlyMap<NodeId, string>, id: NodeId): string | undefined {
  if (peer === undefined) return undefined;
  const committed = peer.committedAddress(id);
  if (committed !== undefined) return committed;
  const latest = peer.membership();
  if (latest.voters.includes(id) || latest.learners.includes(id)) return undefined;
  return learned.get(id);
}

/**
 * `url`'s path and query at `address` (the leader's advertised URL). The path is set, not
 * resolved against the address: a path such as `//evil.example/x` would otherwise name another
 * host, and a redirect there would send the client's request (and a curl -L body) to it.
 */
function atAddress(address: string, url: URL): URL {
  const to = new URL(address);
  to.pathname = url.pathname;
  to.search = url.search;
  return to;
}
