// Failover: SIGKILL the leader under write load, N times, and time from the kill to the first
// successful write that was SENT after the kill (an answer already on its way from the old
// leader does not count). Writers follow 307s and, when a node does not answer, try the next
// one, the way a client library would. After each kill the dead node is restarted from its data
// dir and the cluster is let settle (it has caught up) before the next kill.

import type { MetcdCluster } from './metcd.ts';
import { benchValue } from './wrk.ts';
import { sleep, waitFor } from '../support/wait.ts';

export interface FailoverOptions {
  kills: number;
  writers: number;
  valueBytes: number;
  onNote?: (text: string) => void;
}

export interface FailoverResult {
  system: string;
  kills: number;
  /** Kill → first successful write sent after the kill, per kill. */
  recoveryMs: number[];
  medianMs: number;
  maxMs: number;
  writesOk: number;
  writesFailed: number;
}

const REQUEST_TIMEOUT_MS = 2000;
const RETRY_PAUSE_MS = 10;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

class Writers {
  private target: string;
  private readonly urls: string[];
  private readonly value: string;
  private seq = 0;
  private stopped = false;
  private loops: Promise<void>[] = [];
  ok = 0;
  failed = 0;
  /** Send time of the request behind the latest success, and when that success arrived. */
  private successes: Array<{ sentAt: number; at: number }> = [];

  constructor(urls: string[], leaderUrl: string, valueBytes: number) {
    this.urls = urls;
    this.target = leaderUrl;
    this.value = benchValue(valueBytes);
  }

  start(count: number): void {
    this.loops = Array.from({ length: count }, (_, w) => this.loop(w));
  }

  /** First success whose request was sent at or after `sinceMs`, waiting for it if needed. */
  async firstSuccessSentAfter(sinceMs: number, timeoutMs: number): Promise<number> {
    return waitFor('a successful write after the kill', timeoutMs, async () => {
      const hit = this.successes.find((s) => s.sentAt >= sinceMs);
      return hit?.at;
    });
  }

  clearHistory(): void {
    this.successes = [];
  }

  lastSuccessAt(): number {
    return this.successes.length === 0 ? 0 : this.successes[this.successes.length - 1]!.at;
  }

  private async loop(w: number): Promise<void> {
    while (!this.stopped) {
      const url = this.target;
      const key = `fo-${w}-${++this.seq}`;
      const sentAt = Date.now();
      try {
        const res = await fetch(`${url}/${key}`, {
          method: 'PUT',
          body: this.value,
          redirect: 'manual',
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        await res.arrayBuffer();
        if (res.status === 204) {
          this.ok++;
          this.successes.push({ sentAt, at: Date.now() });
          if (this.successes.length > 10_000) this.successes.splice(0, 5_000);
          continue;
        }
        this.failed++;
        const location = res.headers.get('location');
        if (res.status === 307 && location !== null) {
          this.target = new URL(location).origin;
          continue;
        }
      } catch {
        this.failed++;
      }
      // No answer or no leader known there: try the next node.
      if (this.target === url) this.target = this.urls[(this.urls.indexOf(url) + 1) % this.urls.length]!;
      await sleep(RETRY_PAUSE_MS);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

export async function runFailover(cluster: MetcdCluster, opts: FailoverOptions): Promise<FailoverResult> {
  const first = await cluster.leader();
  const writers = new Writers(
    cluster.nodes.map((n) => n.url),
    first.url,
    opts.valueBytes,
  );
  writers.start(opts.writers);
  const recoveryMs: number[] = [];
  try {
    for (let k = 0; k < opts.kills; k++) {
      // Steady state first: every node up and caught up, writes flowing.
      await settle(cluster);
      await waitFor('writes flowing', 20_000, async () => (Date.now() - writers.lastSuccessAt() < 200 ? true : undefined));
      const leader = await cluster.leader();
      const victim = cluster.node(leader.id);
      writers.clearHistory();
      const killedAt = Date.now();
      victim.proc!.kill('SIGKILL');
      const recoveredAt = await writers.firstSuccessSentAfter(killedAt, 30_000);
      recoveryMs.push(recoveredAt - killedAt);
      opts.onNote?.(
        `kill ${k + 1}/${opts.kills}: leader ${leader.id}@${leader.term} killed, writes again after ${recoveredAt - killedAt} ms`,
      );
      await victim.exit;
      victim.start();
    }
    await settle(cluster);
  } finally {
    await writers.stop();
  }
  return {
    system: cluster.label,
    kills: recoveryMs.length,
    recoveryMs,
    medianMs: median(recoveryMs),
    maxMs: Math.max(...recoveryMs),
    writesOk: writers.ok,
    writesFailed: writers.failed,
  };
}

/** All three nodes alive, agreeing on a leader, each having applied what the leader had
 *  committed when we asked. */
async function settle(cluster: MetcdCluster): Promise<void> {
  const leader = await cluster.leader(30_000);
  const commit = (await cluster.node(leader.id).status()).commit;
  await waitFor('every node caught up', 30_000, async () => {
    const statuses = await Promise.all(cluster.nodes.map((n) => n.status().catch(() => undefined)));
    return statuses.every((s) => s !== undefined && s.leader === leader.id && s.applied >= commit) ? true : undefined;
  });
}
