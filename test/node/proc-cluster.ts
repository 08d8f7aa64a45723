// Real metcd processes on loopback for the Node runtime's tests: start, SIGKILL, SIGSTOP,
// restart and replace nodes; find the leader; talk HTTP. Every process started here is killed
// by stopAll() (call it from afterAll/afterEach), whatever happened in the test.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EngineName } from '../../node-runtime/storage/engine.ts';
import { waitFor } from '../support/wait.ts';
import { NodeProcess } from '../support/node-process.ts';

export { CLI } from '../support/node-process.ts';

// This suite's ports: 13300–13999, split per vitest worker so parallel files never collide.
const PORT_BASE = 13300 + 100 * ((Number(process.env['VITEST_POOL_ID'] ?? '1') - 1) % 7);
const usedPorts = new Set<number>();

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = PORT_BASE + Math.floor(Math.random() * 100);
    if (usedPorts.has(port)) continue;
    if (await portFree(port)) {
      usedPorts.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${PORT_BASE}..${PORT_BASE + 99}`);
}

export interface NodeStatus {
  id: string;
  role: string;
  term: number;
  leader: string;
  commit: number;
  applied: number;
  snapshotIndex: number;
  members: Array<{ id: string; address: string; voter: boolean }>;
}

export class ProcNode extends NodeProcess {
  readonly dataDir: string;
  /** What every request of the test's own checks carries (the root token, when the cluster has one). */
  readonly headers: Record<string, string>;

  constructor(id: string, port: number, dataDir: string, args: string[], headers: Record<string, string> = {}) {
    super(id, port, args);
    this.dataDir = dataDir;
    this.headers = headers;
  }

  /** Makes this node lose Raft messages from / to the given peers (a partition). */
  async setFaults(faults: { dropFrom?: string[]; dropTo?: string[] }, token = 'test-token'): Promise<void> {
    const res = await fetch(`${this.url}/_metcd/faults`, {
      method: 'POST',
      body: JSON.stringify(faults),
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2000),
    });
    if (res.status !== 200) throw new Error(`${this.id} faults: HTTP ${res.status} ${await res.text()}`);
  }

  async status(): Promise<NodeStatus> {
    const res = await fetch(`${this.url}/status`, { headers: this.headers, signal: AbortSignal.timeout(1000) });
    if (res.status !== 200) throw new Error(`${this.id} /status: HTTP ${res.status}`);
    const status = (await res.json()) as NodeStatus;
    // Ports are picked free-at-check-time: another process on the machine (another test suite)
    // can take one first. Say so instead of reading some other node's state as this one's.
    if (status.id !== this.id) throw new Error(`${this.url} is ${status.id}, not ${this.id}: its port was taken by another process`);
    return status;
  }
}

export interface ClusterOptions {
  engine: EngineName;
  size?: number;
  token?: string;
  clusterId?: string;
  /** Default 50 ms (elections after 0.5-1 s): at 20 ms a loaded 2-core machine starved the
   *  processes long enough for spurious elections mid-test. */
  tickMs?: number;
  snapshotEntries?: number;
  /** `--cache-bytes`: the hot-record cache of a tiered engine (sqlite). Default 4096, a few
   *  records, so the process tests run with nearly every read going to the disk. */
  cacheBytes?: number;
  /** More CLI flags for every node. */
  extraArgs?: string[];
  /** Start every node with this root token (token mode; '' = none: open on loopback). */
  rootToken?: string;
}

export class ProcCluster {
  readonly opts: Required<ClusterOptions>;
  readonly nodes = new Map<string, ProcNode>();
  private rootDir: string | undefined;

  constructor(opts: ClusterOptions) {
    this.opts = {
      size: 3,
      token: 'test-token',
      clusterId: 'test',
      tickMs: 50,
      snapshotEntries: 10_000,
      cacheBytes: 4096,
      extraArgs: [],
      rootToken: '',
      ...opts,
    };
  }

  /**
   * After a failed test: every node's recent output into test/artifacts/ (git-ignored), so a
   * failure seen only in CI can be read afterwards. Returns the file written.
   */
  dumpOutputs(label: string): string {
    const dir = new URL('../artifacts/', import.meta.url).pathname;
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `proc-cluster-${label.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 120)}.log`);
    let text = '';
    for (const [id, node] of this.nodes) text += `===== ${id}\n${node.logTail(200_000)}\n`;
    writeFileSync(file, text);
    return file;
  }

  /** Created on first use: a cluster whose tests are all filtered out leaves nothing behind. */
  get root(): string {
    this.rootDir ??= mkdtempSync(path.join(tmpdir(), `metcd-proc-${this.opts.engine}-`));
    return this.rootDir;
  }

  commonArgs(id: string, port: number): string[] {
    return [
      '--id',
      id,
      '--http',
      `127.0.0.1:${port}`,
      '--data-dir',
      path.join(this.root, id),
      '--engine',
      this.opts.engine,
      '--cluster-token',
      this.opts.token,
      '--cluster-id',
      this.opts.clusterId,
      '--tick-ms',
      String(this.opts.tickMs),
      '--snapshot-entries',
      String(this.opts.snapshotEntries),
      '--cache-bytes',
      String(this.opts.cacheBytes),
      '--log-level',
      'debug',
      '--enable-fault-injection',
      ...this.rootTokenArgs(),
      ...this.opts.extraArgs,
    ];
  }

  private rootTokenArgs(): string[] {
    if (this.opts.rootToken === '') return [];
    const file = path.join(this.root, 'root-token');
    writeFileSync(file, `${this.opts.rootToken}\n`, { mode: 0o600 });
    return ['--root-token-file', file];
  }

  /** The headers the test's own requests carry. */
  get headers(): Record<string, string> {
    return this.opts.rootToken === '' ? {} : { authorization: `Bearer ${this.opts.rootToken}` };
  }

  async start(): Promise<void> {
    const ids = Array.from({ length: this.opts.size }, (_, k) => `n${k + 1}`);
    const ports = await Promise.all(ids.map(() => freePort()));
    const initial = ids.map((id, k) => `${id}=http://127.0.0.1:${ports[k]}`).join(',');
    ids.forEach((id, k) => {
      const args = [...this.commonArgs(id, ports[k]!), '--initial-cluster', initial];
      const node = new ProcNode(id, ports[k]!, path.join(this.root, id), args, this.headers);
      this.nodes.set(id, node);
      node.start();
    });
    await this.leader();
  }

  /** Adds a node that joins through `via` (a fresh data dir). */
  async join(id: string, via: ProcNode, extra: string[] = []): Promise<ProcNode> {
    const port = await freePort();
    const node = new ProcNode(
      id,
      port,
      path.join(this.root, id),
      [...this.commonArgs(id, port), '--join', via.url, ...extra],
      this.headers,
    );
    this.nodes.set(id, node);
    node.start();
    return node;
  }

  node(id: string): ProcNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  live(): ProcNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** The leader that a majority of live nodes agree on (optionally not `not`; with `all`, every
   *  live node: a check that talks to the followers needs them to know it). */
  async leader(opts: { not?: string; timeoutMs?: number; all?: boolean } = {}): Promise<ProcNode> {
    return waitFor(`a leader${opts.not ? ` other than ${opts.not}` : ''}`, opts.timeoutMs ?? 20_000, async () => {
      const statuses = await Promise.all(this.live().map((n) => n.status().catch(() => undefined)));
      const leaders = statuses.filter((s) => s?.role === 'leader');
      for (const l of leaders) {
        if (l!.id === opts.not) continue;
        const agree = statuses.filter((s) => s?.leader === l!.id && s.term === l!.term).length;
        const needed = opts.all === true ? statuses.length : Math.floor(this.opts.size / 2) + 1;
        if (agree >= needed) return this.node(l!.id);
      }
      return undefined;
    });
  }

  /**
   * Runs a check that names the current leader, once every live node knows it (a follower that
   * has not heard from a new leader yet answers 503 no_leader). If it fails and leadership moved
   * meanwhile (a spurious election on a loaded machine), it runs again with the new leader; a
   * failure under a stable leader is a real one and is thrown.
   */
  async withStableLeader(check: (leader: ProcNode) => Promise<void>, attempts = 3): Promise<void> {
    for (let n = 1; ; n++) {
      const leader = await this.leader({ all: true });
      const term = (await leader.status()).term;
      try {
        await check(leader);
        return;
      } catch (err) {
        const now = await leader.status().catch(() => undefined);
        if (n >= attempts || (now?.role === 'leader' && now.term === term)) throw err;
      }
    }
  }

  /** Waits until `node` has applied everything `reference` has committed. */
  async caughtUp(node: ProcNode, reference: ProcNode, timeoutMs = 20_000): Promise<void> {
    const target = (await reference.status()).commit;
    await waitFor(`${node.id} to apply ${target}`, timeoutMs, async () => ((await node.status()).applied >= target ? true : undefined));
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        if (n.proc?.signalCode === 'SIGSTOP' || n.alive) n.proc!.kill('SIGCONT');
        await n.kill('SIGKILL');
      }),
    );
    if (this.rootDir !== undefined) rmSync(this.rootDir, { recursive: true, force: true });
  }
}

/** PUT /<key> through any node, following redirects; retries across nodes until `timeoutMs`. */
export async function putKey(cluster: ProcCluster, key: string, value: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(`PUT ${key}`, timeoutMs, async () => {
    const nodes = cluster.live();
    const node = nodes[Math.floor(Math.random() * nodes.length)]!;
    const res = await fetch(`${node.url}/${encodeURIComponent(key)}`, {
      method: 'PUT',
      body: value,
      headers: node.headers,
      signal: AbortSignal.timeout(3000),
    });
    await res.arrayBuffer();
    return res.status === 204 ? true : undefined;
  });
}

/** All pairs under `prefix` as `node` has them (stale read: this node's own state). */
export async function readPrefix(node: ProcNode, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let start = '';
  for (;;) {
    const q = new URLSearchParams({ prefix, level: 'stale', limit: '1000', ...(start ? { start } : {}) });
    const res = await fetch(`${node.url}/key?${q}`, { headers: node.headers, signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) throw new Error(`${node.id} range read: HTTP ${res.status} ${await res.text()}`);
    const page = (await res.json()) as Record<string, string>;
    const keys = Object.keys(page);
    for (const k of keys) out.set(k, page[k]!);
    const next = res.headers.get('X-Metcd-Next-Start');
    if (res.headers.get('X-Metcd-More') !== 'true' || next === null) return out;
    start = decodeURIComponent(next);
  }
}

/** A request to `node` that follows the leader's 307s with the same headers, as
 *  `curl --location-trusted` does (fetch and plain `curl -L` drop credentials on another port). */
export async function followLeader(node: ProcNode, path: string, init: RequestInit = {}): Promise<Response> {
  let url = `${node.url}${path}`;
  for (let hop = 0; ; hop++) {
    const res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(5000) });
    if (res.status !== 307 || hop === 3) return res;
    await res.arrayBuffer();
    url = res.headers.get('location')!;
  }
}
