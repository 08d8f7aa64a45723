// A 3-member etcd cluster on loopback, the comparison: default durability (fsync on every
// commit, as etcd always does unless --unsafe-no-fsync), default heartbeat/election settings,
// logs to a file. Clients use its JSON gateway (grpc-gateway, /v3/...), HTTP/1.1 keep-alive.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { removeDir, trackChild, trackDir } from './cleanup.ts';
import { assertPortsFree, fetchJson, forEachParallel } from './http.ts';
import type { JoiningMember } from './scale-common.ts';
import type { ClusterUnderTest, LeaderView } from './target.ts';
import { benchValue, readKey } from './wrk.ts';
import { waitFor } from '../support/wait.ts';

interface EtcdStatus {
  header: { member_id: string; revision: string; raft_term: string };
  leader: string;
  raftTerm: string;
  /** The commit index; the applied index (etcd 3.4 and later). */
  raftIndex: string;
  raftAppliedIndex: string;
}

interface Member {
  name: string;
  clientUrl: string;
  dataDir: string;
  /** What it was started with: a restart reuses them (etcd then ignores the --initial-* flags). */
  args: string[];
  proc: ChildProcess;
  logFile: string;
}

function spawnMember(etcdPath: string, args: readonly string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const proc = spawn(etcdPath, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return trackChild(proc);
}

/** SIGKILLs a member and waits for it to exit (nothing when it is not running). */
async function killMember(m: Member): Promise<void> {
  if (m.proc.exitCode !== null || m.proc.signalCode !== null) return;
  const exited = new Promise((resolve) => m.proc.once('exit', resolve));
  m.proc.kill('SIGKILL');
  await exited;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

export class EtcdCluster implements ClusterUnderTest {
  readonly system = 'etcd' as const;
  readonly label = 'etcd';
  private readonly root: string;
  private readonly members: Member[] = [];
  private readonly etcdPath: string;

  private readonly basePort: number;
  private readonly extraArgs: readonly string[];

  private constructor(root: string, etcdPath: string, basePort: number, extraArgs: readonly string[]) {
    this.root = root;
    this.etcdPath = etcdPath;
    this.basePort = basePort;
    this.extraArgs = extraArgs;
  }

  /** Clients on basePort..basePort+2, peers on basePort+10..basePort+12; `extraArgs` go to every member. */
  static async start(etcdPath: string, basePort: number, extraArgs: readonly string[] = []): Promise<EtcdCluster> {
    const clientPorts = [0, 1, 2].map((k) => basePort + k);
    const peerPorts = [0, 1, 2].map((k) => basePort + 10 + k);
    await assertPortsFree([...clientPorts, ...peerPorts], 'etcd');
    const cluster = new EtcdCluster(trackDir(mkdtempSync(path.join(tmpdir(), 'etcd-bench-'))), etcdPath, basePort, extraArgs);
    const initial = [0, 1, 2].map((k) => `e${k + 1}=http://127.0.0.1:${peerPorts[k]}`).join(',');
    for (let k = 0; k < 3; k++) cluster.members.push(cluster.spawnNew(k, initial, 'new'));
    try {
      const leader = await cluster.leader(30_000);
      await fetchJson(
        `${leader.url}/v3/kv/put`,
        { method: 'POST', body: JSON.stringify({ key: b64('bench-probe'), value: b64('x') }) },
        5000,
      );
    } catch (err) {
      const logs = cluster.members.map((m) => `--- ${m.name} ---\n${readFileSync(m.logFile, 'utf8').slice(-2000)}`).join('\n');
      await cluster.stop();
      throw new Error(`etcd did not come up: ${err instanceof Error ? err.message : String(err)}\n${logs}`);
    }
    return cluster;
  }

  /** Member k (e<k+1>, client port basePort+k, peer port basePort+10+k) started on a new data dir. */
  private spawnNew(k: number, initialCluster: string, state: 'new' | 'existing'): Member {
    const name = `e${k + 1}`;
    const clientUrl = `http://127.0.0.1:${this.basePort + k}`;
    const peerUrl = `http://127.0.0.1:${this.basePort + 10 + k}`;
    const logFile = path.join(this.root, `${name}.log`);
    const args = [
      '--name',
      name,
      '--data-dir',
      path.join(this.root, name),
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      state,
      '--initial-cluster-token',
      'bench',
      '--logger',
      'zap',
      '--log-level',
      'error',
      ...this.extraArgs,
    ];
    return { name, clientUrl, dataDir: path.join(this.root, name), args, logFile, proc: spawnMember(this.etcdPath, args, logFile) };
  }

  /**
   * Adds e4 as a learner (the gateway's /v3/cluster/member/add, isLearner) and starts it with
   * --initial-cluster-state existing on an empty data dir. Not one of `members`: the phase's
   * restarts and sizes stay the three's. etcd does not say where its leader's last snapshot is.
   */
  async addLearner(): Promise<JoiningMember> {
    const k = this.members.length;
    await assertPortsFree([this.basePort + k, this.basePort + 10 + k], 'etcd e4');
    const leader = await this.leader(30_000);
    const peerUrl = `http://127.0.0.1:${this.basePort + 10 + k}`;
    // etcd refuses a member while its peers have not all been connected for 5 s ("unhealthy cluster").
    const added = await waitFor('etcd to take a learner', 30_000, () =>
      fetchJson<{ member: { ID: string } }>(
        `${leader.url}/v3/cluster/member/add`,
        { method: 'POST', body: JSON.stringify({ peerURLs: [peerUrl], isLearner: true }) },
        10_000,
      ),
    );
    const s = await fetchJson<EtcdStatus>(`${leader.url}/v3/maintenance/status`, { method: 'POST', body: '{}' }, 5000);
    const initial = [...this.members.map((m, j) => `${m.name}=http://127.0.0.1:${this.basePort + 10 + j}`), `e${k + 1}=${peerUrl}`].join(
      ',',
    );
    const m = this.spawnNew(k, initial, 'existing');
    const spawnedAtMs = performance.now();
    return {
      id: m.name,
      pid: m.proc.pid!,
      dataDir: m.dataDir,
      targetIndex: Number(s.raftIndex),
      leaderSnapshotIndex: null,
      spawnedAtMs,
      applied: () =>
        this.status(m).then(
          (x) => Number(x.raftAppliedIndex),
          () => null,
        ),
      remove: async () => {
        try {
          const url = (await this.leader(30_000)).url;
          await fetchJson(`${url}/v3/cluster/member/remove`, { method: 'POST', body: JSON.stringify({ ID: added.member.ID }) }, 30_000);
        } finally {
          await killMember(m);
          removeDir(m.dataDir);
        }
      },
      logTail: () => readFileSync(m.logFile, 'utf8').slice(-2000),
    };
  }

  private status(m: Member): Promise<EtcdStatus> {
    return fetchJson<EtcdStatus>(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' }, 1000);
  }

  async leader(timeoutMs = 20_000): Promise<LeaderView> {
    return waitFor('an etcd leader', timeoutMs, async () => {
      const statuses = await Promise.all(this.members.map((m) => this.status(m).catch(() => undefined)));
      for (const [k, s] of statuses.entries()) {
        if (s === undefined || s.leader !== s.header.member_id) continue;
        const agree = statuses.filter((x) => x?.leader === s.leader && x.raftTerm === s.raftTerm).length;
        if (agree >= 2) return { url: this.members[k]!.clientUrl, id: this.members[k]!.name, term: Number(s.raftTerm) };
      }
      return undefined;
    });
  }

  async revision(leader: LeaderView): Promise<number> {
    const s = await fetchJson<EtcdStatus>(`${leader.url}/v3/maintenance/status`, { method: 'POST', body: '{}' });
    return Number(s.header.revision);
  }

  async preload(leader: LeaderView, count: number, valueBytes: number): Promise<void> {
    const value = b64(benchValue(valueBytes));
    await forEachParallel(count, 32, async (i) => {
      await fetchJson(`${leader.url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(readKey(i)), value }) }, 10_000);
    });
  }

  clientUrls(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  pids(): number[] {
    return this.members.filter((m) => m.proc.exitCode === null && m.proc.signalCode === null).map((m) => m.proc.pid!);
  }

  /** Each member's data directory. */
  dataDirs(): string[] {
    return this.members.map((m) => m.dataDir);
  }

  /** SIGKILLs every member and waits for them to exit; the data directories stay. */
  async killAll(): Promise<void> {
    await Promise.all(this.members.map(killMember));
  }

  /** Starts every member again on its data directory (after killAll). */
  restartAll(): void {
    for (const m of this.members) {
      if (m.proc.exitCode === null && m.proc.signalCode === null) throw new Error(`etcd ${m.name} is still running`);
      m.proc = spawnMember(this.etcdPath, m.args, m.logFile);
    }
  }

  async stop(): Promise<void> {
    await this.killAll();
    removeDir(this.root);
  }
}
