// A 3-node metcd cluster of real processes on loopback (the Node runtime's CLI, one engine),
// started with a static --initial-cluster. Logs go to files in the cluster's temp dir (a pipe
// nobody reads would block the node). Nodes can be SIGKILLed and restarted for failover runs.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { trackChild, trackDir, removeDir } from './cleanup.ts';
import { assertPortsFree, fetchJson, forEachParallel } from './http.ts';
import type { JoiningMember } from './scale-common.ts';
import type { ClusterUnderTest, LeaderView } from './target.ts';
import { benchValue, readKey } from './wrk.ts';
import { waitFor } from '../support/wait.ts';
import { NodeProcess } from '../support/node-process.ts';

export const ENGINES = ['memory', 'sqlite', 'leveldb'] as const;
/** The peers' credential, which membership changes (POST /join, DELETE /members) also need. */
const CLUSTER_TOKEN = 'bench-token';
const asCluster = { authorization: `Bearer ${CLUSTER_TOKEN}` };
export type Engine = (typeof ENGINES)[number];

export interface MetcdOptions {
  engine: Engine;
  /** First of three consecutive ports. */
  basePort: number;
  tickMs: number;
  electionTicks: number;
  /** --snapshot-entries; undefined = the node's default. */
  snapshotEntries?: number;
  /** Extra node arguments (e.g. --quota-bytes). */
  extraArgs?: readonly string[];
  /** The nodes' environment on top of this process's (e.g. --cpu-prof through NODE_OPTIONS). */
  env?: NodeJS.ProcessEnv;
}

interface Status {
  id: string;
  role: string;
  term: number;
  leader: string;
  revision: number;
  applied: number;
  commit: number;
  snapshotIndex: number;
}

class MetcdNode extends NodeProcess {
  status(): Promise<Status> {
    return fetchJson<Status>(`${this.url}/status`, {}, 1000);
  }
}

export class MetcdCluster implements ClusterUnderTest {
  readonly system = 'metcd' as const;
  readonly label: string;
  readonly root: string;
  readonly nodes: MetcdNode[];

  private readonly opts: MetcdOptions;
  private readonly initialCluster: string;

  private constructor(opts: MetcdOptions) {
    this.opts = opts;
    this.label = `metcd/${opts.engine}`;
    this.root = trackDir(mkdtempSync(path.join(tmpdir(), `metcd-bench-${opts.engine}-`)));
    const ids = ['n1', 'n2', 'n3'];
    this.initialCluster = ids.map((id, k) => `${id}=http://127.0.0.1:${opts.basePort + k}`).join(',');
    this.nodes = ids.map((id, k) => this.makeNode(id, opts.basePort + k, ['--initial-cluster', this.initialCluster]));
  }

  /** A node process (not started) with the cluster's flags and `start` (how it enters the cluster). */
  private makeNode(id: string, port: number, start: readonly string[]): MetcdNode {
    const opts = this.opts;
    const args = [
      '--id',
      id,
      '--http',
      `127.0.0.1:${port}`,
      '--data-dir',
      path.join(this.root, id),
      '--engine',
      opts.engine,
      ...start,
      '--cluster-token',
      CLUSTER_TOKEN,
      '--cluster-id',
      'bench',
      '--tick-ms',
      String(opts.tickMs),
      '--election-ticks',
      String(opts.electionTicks),
      '--log-level',
      'warn',
      ...(opts.snapshotEntries === undefined ? [] : ['--snapshot-entries', String(opts.snapshotEntries)]),
      ...(opts.extraArgs ?? []),
    ];
    return new MetcdNode(id, port, args, {
      logFile: path.join(this.root, `${id}.log`),
      env: { ...process.env, ...opts.env },
      onSpawn: trackChild,
    });
  }

  static async start(opts: MetcdOptions): Promise<MetcdCluster> {
    const cluster = new MetcdCluster(opts);
    for (const node of cluster.nodes) node.start();
    try {
      const leader = await cluster.leader(30_000);
      await cluster.probeWrite(leader);
    } catch (err) {
      const logs = cluster.nodes.map((n) => `--- ${n.id} ---\n${n.logTail()}`).join('\n');
      await cluster.stop();
      throw new Error(`${cluster.label} did not come up: ${err instanceof Error ? err.message : String(err)}\n${logs}`);
    }
    return cluster;
  }

  node(id: string): MetcdNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  async leader(timeoutMs = 20_000, not?: string): Promise<LeaderView> {
    return waitFor(`a ${this.label} leader`, timeoutMs, async () => {
      const live = this.nodes.filter((n) => n.alive);
      const statuses = await Promise.all(live.map((n) => n.status().catch(() => undefined)));
      for (const s of statuses) {
        if (s?.role !== 'leader' || s.id === not) continue;
        const agree = statuses.filter((x) => x?.leader === s.id && x.term === s.term).length;
        if (agree >= 2) return { url: this.node(s.id).url, id: s.id, term: s.term };
      }
      return undefined;
    });
  }

  /** One write through the leader: the cluster serves, not just elects. */
  async probeWrite(leader: LeaderView): Promise<void> {
    await waitFor(`a first write on ${this.label}`, 20_000, async () => {
      const res = await fetch(`${leader.url}/bench-probe`, { method: 'PUT', body: 'x', signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.status === 204 ? true : undefined;
    });
  }

  async revision(leader: LeaderView): Promise<number> {
    return (await fetchJson<Status>(`${leader.url}/status`)).revision;
  }

  async preload(leader: LeaderView, count: number, valueBytes: number): Promise<void> {
    const value = benchValue(valueBytes);
    await forEachParallel(count, 32, async (i) => {
      const res = await fetch(`${leader.url}/${readKey(i)}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      if (res.status !== 204) throw new Error(`${this.label} preload ${readKey(i)}: HTTP ${res.status}`);
    });
  }

  clientUrls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  pids(): number[] {
    return this.nodes.filter((n) => n.alive).map((n) => n.proc!.pid!);
  }

  /** Pid of one node (for per-node CPU). */
  pidOf(id: string): number | undefined {
    const n = this.node(id);
    return n.alive ? n.proc!.pid : undefined;
  }

  /** Each node's data directory. */
  dataDirs(): string[] {
    return this.nodes.map((n) => path.join(this.root, n.id));
  }

  /** SIGKILLs every node and waits for them to exit; the data directories stay. */
  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
  }

  /** Starts every node again on its data directory (after killAll). */
  restartAll(): void {
    for (const n of this.nodes) {
      if (n.alive) throw new Error(`${this.label} ${n.id} is still running`);
      n.start();
    }
  }

  /**
   * Adds `id` as a learner (POST /join on the leader, answered once committed) on the port after
   * the three, then starts it on an empty data dir with --join (which finds itself a member
   * already). It is not one of `nodes`: the phase's restarts and sizes stay the three's.
   */
  async addLearner(id = 'n4'): Promise<JoiningMember> {
    const leader = await this.leader(30_000);
    const port = this.opts.basePort + this.nodes.length;
    await assertPortsFree([port], `${this.label} ${id}`);
    const address = `http://127.0.0.1:${port}`;
    const body = JSON.stringify({ id, learner: true, address });
    await fetchJson(`${leader.url}/join`, { method: 'POST', headers: asCluster, body }, 30_000);
    const s = await fetchJson<Status>(`${leader.url}/status`, {}, 5000);
    const node = this.makeNode(id, port, ['--join', leader.url]);
    node.start();
    const spawnedAtMs = performance.now();
    return {
      id,
      pid: node.proc!.pid!,
      dataDir: path.join(this.root, id),
      targetIndex: s.commit,
      leaderSnapshotIndex: s.snapshotIndex,
      spawnedAtMs,
      applied: () =>
        node.status().then(
          (x) => x.applied,
          () => null,
        ),
      remove: async () => {
        try {
          await fetchJson(`${(await this.leader(30_000)).url}/members/${id}`, { method: 'DELETE', headers: asCluster }, 30_000);
        } finally {
          await node.kill('SIGKILL');
          removeDir(path.join(this.root, id));
        }
      },
      logTail: () => node.logTail(),
    };
  }

  async stop(): Promise<void> {
    await this.killAll();
    removeDir(this.root);
  }

  /** Stops every node with SIGTERM (so --cpu-prof writes its profile) and keeps the data dir. */
  async stopGracefully(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGTERM')));
  }
}
