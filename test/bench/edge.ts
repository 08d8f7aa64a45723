// Edge: on workerd (wrangler's test harness over Miniflare, as test/edge does), a write
// replicated through metcd's 3-peer Durable Object cluster vs a plain storage.put in one
// Durable Object (edge/plain-object.ts). Both go client → Worker → object, so the ratio is
// what replication costs on the platform. Latency is measured one write at a time, the two
// sides interleaved write by write (plain, replicated, replicated, plain, ...) so load from
// anything else on the machine hits both alike; throughput with several writes in flight,
// one side at a time, with the CPU the workerd processes used per write (on a shared machine
// a steadier signal than latency: locally all three peers share workerd's CPU, so the latency
// ratio is close to the CPU ratio when the machine is otherwise idle).

import { readFileSync, readdirSync } from 'node:fs';
import { createTestHarness } from 'wrangler';
import { totalCpuSeconds } from './cpu.ts';
import { trackCloser } from './cleanup.ts';
import { median } from './failover.ts';
import { benchValue } from './wrk.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const COMPATIBILITY_DATE = '2026-11-01';
const PLAIN_WORKER = 'metcd-bench-plain';

export interface EdgeOptions {
  /** Sequential writes measured per side (after a warm-up). */
  writes: number;
  /** Writes in flight for the throughput measurement, and its seconds per side. */
  concurrency: number;
  throughputS: number;
  valueBytes: number;
  onNote?: (text: string) => void;
}

export interface EdgeSide {
  medianMs: number;
  p99Ms: number;
  writesPerS: number;
  /** CPU of the workerd processes per write during the throughput phase (null without /proc). */
  cpuMsPerWrite: number | null;
}

export interface EdgeResult {
  replicated: EdgeSide;
  plain: EdgeSide;
  /** replicated median latency / plain median latency (target ≤ 3). */
  latencyRatio: number;
  /** plain throughput / replicated throughput. */
  throughputRatio: number;
  /** replicated CPU per write / plain CPU per write (null without /proc). */
  cpuRatio: number | null;
  redirectsFollowed: number;
}

type Put = (key: string) => Promise<void>;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Processes under this one whose name says workerd (wrangler's harness starts them), from /proc. */
export function workerdPids(): number[] {
  try {
    const parent = new Map<number, number>();
    const name = new Map<number, string>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const pid = Number(entry);
        name.set(pid, stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
        parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        // gone meanwhile
      }
    }
    const mine = (pid: number): boolean => {
      for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 16; p = parent.get(p), hops++) {
        if (p === process.pid) return true;
      }
      return false;
    };
    return [...name].filter(([pid, comm]) => comm.includes('workerd') && mine(pid)).map(([pid]) => pid);
  } catch {
    return [];
  }
}

/** The first write bootstraps a cluster (its peers elect a leader): tried until it lands, for a minute. */
export async function firstWrite(write: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await write();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function runEdge(opts: EdgeOptions): Promise<EdgeResult> {
  const server = createTestHarness({
    root: ROOT,
    workers: [
      // Open mode, as npm start: the comparison is of writes, not of access control.
      { configPath: './wrangler.toml', vars: { CLUSTER_NAME: 'bench', METCD_AUTH: 'open' } },
      {
        config: {
          name: PLAIN_WORKER,
          main: 'test/bench/edge/plain-object.ts',
          compatibility_date: COMPATIBILITY_DATE,
          durable_objects: { bindings: [{ name: 'PLAIN', class_name: 'PlainObject' }] },
          migrations: [{ tag: 'v1', new_sqlite_classes: ['PlainObject'] }],
        },
      },
    ],
  });
  const close = trackCloser(() => server.close());
  try {
    await server.listen();
    const value = benchValue(opts.valueBytes);
    type Dispatch = Parameters<typeof server.fetch>[1];
    const metcd = server.getWorker();
    const plainWorker = server.getWorker(PLAIN_WORKER);
    let redirects = 0;

    const replicated: Put = async (key) => {
      let path = `/${key}`;
      for (let hops = 0; hops < 5; hops++) {
        const res = await metcd.fetch(path, { method: 'PUT', body: value, redirect: 'manual' } as Dispatch);
        await res.arrayBuffer();
        if (res.status === 204) return;
        const location = res.headers.get('Location');
        if (res.status !== 307 || location === null) throw new Error(`replicated PUT ${key}: HTTP ${res.status}`);
        redirects++;
        const u = new URL(location);
        path = u.pathname + u.search;
      }
      throw new Error(`replicated PUT ${key}: too many redirects`);
    };
    const plain: Put = async (key) => {
      const res = await plainWorker.fetch(`/${key}`, { method: 'PUT', body: value } as Dispatch);
      await res.arrayBuffer();
      if (res.status !== 204) throw new Error(`plain PUT ${key}: HTTP ${res.status}`);
    };

    await firstWrite(() => replicated('edge-warm'));
    let seq = 0;
    for (let i = 0; i < 20; i++) {
      await replicated(`w${++seq}`);
      await plain(`w${seq}`);
    }

    const lat = { replicated: [] as number[], plain: [] as number[] };
    const sides = [
      ['plain', plain],
      ['replicated', replicated],
    ] as const;
    for (let i = 0; i < opts.writes; i++) {
      // Alternate which side goes first, so neither always follows the other's work.
      for (const [side, put] of i % 2 === 0 ? sides : [...sides].reverse()) {
        const t0 = performance.now();
        await put(`s${++seq}`);
        lat[side].push(performance.now() - t0);
      }
    }

    const pids = workerdPids();
    const throughput = async (put: Put): Promise<{ rate: number; cpuMsPerWrite: number | null }> => {
      const until = Date.now() + opts.throughputS * 1000;
      let n = 0;
      const started = Date.now();
      const cpu0 = totalCpuSeconds(pids);
      await Promise.all(
        Array.from({ length: opts.concurrency }, async () => {
          while (Date.now() < until) {
            await put(`t${++seq}`);
            n++;
          }
        }),
      );
      const cpuMs = (totalCpuSeconds(pids) - cpu0) * 1000;
      return { rate: n / ((Date.now() - started) / 1000), cpuMsPerWrite: pids.length === 0 || n === 0 ? null : round2(cpuMs / n) };
    };
    opts.onNote?.(`sequential latency measured (${lat.replicated.length} writes per side); throughput with ${opts.concurrency} in flight`);
    const plainRun = await throughput(plain);
    const replicatedRun = await throughput(replicated);

    const side = (xs: number[], run: { rate: number; cpuMsPerWrite: number | null }): EdgeSide => ({
      medianMs: round2(median(xs)),
      p99Ms: round2(percentile(xs, 99)),
      writesPerS: Math.round(run.rate),
      cpuMsPerWrite: run.cpuMsPerWrite,
    });
    const cpu = { replicated: replicatedRun.cpuMsPerWrite, plain: plainRun.cpuMsPerWrite };
    const result: EdgeResult = {
      replicated: side(lat.replicated, replicatedRun),
      plain: side(lat.plain, plainRun),
      latencyRatio: round2(median(lat.replicated) / median(lat.plain)),
      throughputRatio: round2(plainRun.rate / replicatedRun.rate),
      cpuRatio: cpu.replicated === null || cpu.plain === null || cpu.plain === 0 ? null : round2(cpu.replicated / cpu.plain),
      redirectsFollowed: redirects,
    };
    return result;
  } finally {
    await close();
  }
}
