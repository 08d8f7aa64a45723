// Edge: on workerd (wrangler's test harness over Miniflare, as test/edge does), a write
// replicated through metcd's 3-peer Durable Object cluster vs a plain storage.put in one
// Durable Object (edge/plain-object.ts). Both go client → Worker → object, so the ratio is
// what replication costs on the platform. Latency is measured one write at a time, in
// alternating blocks so drift in machine load hits both sides alike; throughput with several
// writes in flight.

import { createTestHarness } from 'wrangler';
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
}

export interface EdgeResult {
  replicated: EdgeSide;
  plain: EdgeSide;
  /** replicated median latency / plain median latency (target ≤ 3). */
  latencyRatio: number;
  /** plain throughput / replicated throughput. */
  throughputRatio: number;
  redirectsFollowed: number;
}

type Put = (key: string) => Promise<void>;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export async function runEdge(opts: EdgeOptions): Promise<EdgeResult> {
  const server = createTestHarness({
    root: ROOT,
    workers: [
      { configPath: './wrangler.toml', vars: { CLUSTER_NAME: 'bench' } },
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

    // The first write bootstraps the cluster (peers elect a leader): retry until it lands.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await replicated('edge-warm');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    let seq = 0;
    for (let i = 0; i < 20; i++) {
      await replicated(`w${++seq}`);
      await plain(`w${seq}`);
    }

    const lat = { replicated: [] as number[], plain: [] as number[] };
    const block = Math.max(1, Math.floor(opts.writes / 4));
    for (let done = 0; done < opts.writes; done += block) {
      for (const [side, put] of [['plain', plain], ['replicated', replicated]] as const) {
        for (let i = 0; i < block; i++) {
          const t0 = performance.now();
          await put(`s${++seq}`);
          lat[side].push(performance.now() - t0);
        }
      }
    }

    const throughput = async (put: Put): Promise<number> => {
      const until = Date.now() + opts.throughputS * 1000;
      let n = 0;
      const started = Date.now();
      await Promise.all(Array.from({ length: opts.concurrency }, async () => {
        while (Date.now() < until) {
          await put(`t${++seq}`);
          n++;
        }
      }));
      return n / ((Date.now() - started) / 1000);
    };
    opts.onNote?.(`sequential latency measured (${lat.replicated.length} writes per side); throughput with ${opts.concurrency} in flight`);
    const plainRate = await throughput(plain);
    const replicatedRate = await throughput(replicated);

    const side = (xs: number[], rate: number): EdgeSide => ({ medianMs: round2(median(xs)), p99Ms: round2(percentile(xs, 99)), writesPerS: Math.round(rate) });
    const result: EdgeResult = {
      replicated: side(lat.replicated, replicatedRate),
      plain: side(lat.plain, plainRate),
      latencyRatio: round2(median(lat.replicated) / median(lat.plain)),
      throughputRatio: round2(plainRate / replicatedRate),
      redirectsFollowed: redirects,
    };
    return result;
  } finally {
    await close();
  }
}
