// Edge cost phase: what a 3-peer cluster on workerd costs at rest and per write, from the
// counters every peer object keeps (worker/edge/costs.ts, read over the inspect RPC, which
// itself is not counted). After a burst of writes the cluster idles (60 s by default), and the
// phase reports, per peer and per idle minute: RPC calls (sent and received), SQLite rows
// written and read, alarms, time awake, and whether its tick timer ran; then the latency of the
// first write after the idle period against a warm write; and calls, rows and workerd CPU per
// client write at steady state. Targets: 0 calls and 0 rows per idle minute, every object
// asleep; first write ≤ 2× a warm write + one election timeout.
//
// A peer object that hibernated or was evicted while idle comes back as a new instance with
// fresh counters (costs.ts): its idle counts are then what the new instance counted inside the
// idle window (it was woken during it) or none at all (it slept to the end: woken only by this
// phase's reading), and the report says so rather than inventing a difference.

import { createTestHarness } from 'wrangler';
import type { EdgeCosts } from '../../worker/edge/costs.ts';
import { defaultRaftConfig } from '../../worker/raft/config.ts';
import { totalCpuSeconds } from './cpu.ts';
import { trackCloser } from './cleanup.ts';
import { firstWrite, workerdPids } from './edge.ts';
import { median } from './failover.ts';
import { benchValue } from './wrk.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const PEERS = ['p1', 'p2', 'p3'] as const;
/** The edge's production tick (wrangler.toml leaves TICK_MS at the default). */
const TICK_MS = 100;
const ELECTION_TIMEOUT_MS = defaultRaftConfig('_', { nextInt: () => 0 }).electionTicks * TICK_MS;

export const COST_TARGETS = {
  idleCallsPerMinute: 0,
  idleRowsPerMinute: 0,
  /** First write after idle ≤ this × a warm write + one election timeout. */
  firstWriteWarmFactor: 2,
};

export interface EdgeCostOptions {
  /** Writes of the burst before the idle period, and of the steady-state measurement. */
  burstWrites: number;
  steadyWrites: number;
  /** Seconds the cluster idles. */
  idleS: number;
  valueBytes: number;
  onNote?: (text: string) => void;
}

/** One peer over the idle period, per idle minute. */
export interface IdlePeer {
  peer: string;
  role: string;
  /** The object's instance changed: it hibernated or was evicted during (or at the end of) the window. */
  restarted: boolean;
  /** A new instance started inside the window: something woke it while the cluster was idle. */
  wokenDuringIdle: boolean;
  /** Per idle minute (null: not countable, the instance that idled is gone with its counters). */
  callsSent: number | null;
  callsReceived: number | null;
  rowsWritten: number | null;
  rowsRead: number | null;
  alarmsSet: number | null;
  alarmsFired: number | null;
  /** Milliseconds in memory per idle minute (60000: awake throughout). */
  awakeMs: number | null;
  /** Its tick timer ran at the end of the window (inspect's `ticking`). */
  ticking: boolean;
}

export interface EdgeCostResult {
  idleS: number;
  idle: IdlePeer[];
  /** Summed over the peers, per idle minute (null when a peer could not be counted). */
  idleCallsPerMinute: number | null;
  idleRowsWrittenPerMinute: number | null;
  warmWriteMs: number;
  firstWriteAfterIdleMs: number;
  electionTimeoutMs: number;
  /** Steady state, one write at a time, summed over the three peers, per client write. */
  perWrite: PerWrite;
}

/** Steady state, one write at a time, summed over the three peers, per client write. */
export interface PerWrite {
  /** Billed requests: client requests, RPC calls received and alarms fired. */
  calls: number;
  rowsWritten: number;
  rowsRead: number;
  cpuMs: number | null;
  writes: number;
  /** How long the writes took, in all. */
  windowMs: number;
  /** The same, less what the idle cluster spends in as long (its heartbeats and alarms go on
   *  while it writes): what a write adds. Null when the idle rate could not be counted. */
  netCalls: number | null;
  netRowsWritten: number | null;
}

interface Reading {
  cost: EdgeCosts;
  role: string;
  ticking: boolean;
  atMs: number;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * A peer's idle costs per minute from its readings at the start and end of the window. Pure,
 * so the instance cases are checked on their own (edge-cost.test.ts).
 */
export function idlePeer(peer: string, start: Reading, end: Reading, windowStartMs: number, windowEndMs: number): IdlePeer {
  const perMinute = (n: number) => round2((n * 60_000) / (windowEndMs - windowStartMs));
  const same = start.cost.instance === end.cost.instance;
  const wokenDuringIdle = !same && end.cost.startedAtMs < windowEndMs;
  const diff = (f: (c: EdgeCosts) => number): number | null => {
    if (same) return perMinute(f(end.cost) - f(start.cost));
    // A new instance: what it counted from its start (inside the window) is a lower bound;
    // one that started only when read at the end counted nothing of the window.
    return wokenDuringIdle ? perMinute(f(end.cost)) : null;
  };
  return {
    peer,
    role: start.role,
    restarted: !same,
    wokenDuringIdle,
    callsSent: diff((c) => c.rpcCallsSent),
    callsReceived: diff((c) => c.rpcCallsReceived),
    rowsWritten: diff((c) => c.sqliteRowsWritten),
    rowsRead: diff((c) => c.sqliteRowsRead),
    alarmsSet: diff((c) => c.alarmsSet),
    alarmsFired: diff((c) => c.alarmsFired),
    awakeMs: same ? perMinute(Math.min(end.cost.awakeMs - start.cost.awakeMs, windowEndMs - windowStartMs)) : null,
    ticking: end.ticking,
  };
}

function sumOrNull(xs: Array<number | null>): number | null {
  return xs.some((x) => x === null) ? null : round2(xs.reduce<number>((a, b) => a + b!, 0));
}

export async function runEdgeCost(opts: EdgeCostOptions): Promise<EdgeCostResult> {
  const server = createTestHarness({
    root: ROOT,
    workers: [{ configPath: './wrangler.toml', vars: { CLUSTER_NAME: 'bench-cost', METCD_AUTH: 'open' } }],
  });
  const close = trackCloser(() => server.close());
  try {
    await server.listen();
    type Dispatch = Parameters<typeof server.fetch>[1];
    type Env = { PEERS: { idFromName(name: string): unknown; get(id: unknown): { inspect(): Promise<string> } } };
    const env = (await server.getWorker().getEnv()) as Env;
    const value = benchValue(opts.valueBytes);
    const metcd = server.getWorker();

    const put = async (key: string): Promise<void> => {
      let path = `/${key}`;
      for (let hops = 0; hops < 5; hops++) {
        const res = await metcd.fetch(path, { method: 'PUT', body: value, redirect: 'manual' } as Dispatch);
        await res.arrayBuffer();
        if (res.status === 204) return;
        const location = res.headers.get('Location');
        if (res.status !== 307 || location === null) throw new Error(`PUT ${key}: HTTP ${res.status}`);
        const u = new URL(location);
        path = u.pathname + u.search;
      }
      throw new Error(`PUT ${key}: too many redirects`);
    };
    const read = async (id: string): Promise<Reading> => {
      const v = JSON.parse(await env.PEERS.get(env.PEERS.idFromName(`bench-cost/${id}`)).inspect()) as {
        cost: EdgeCosts;
        status: { role: string; applied: number; commit: number } | null;
        ticking: boolean;
      };
      return { cost: v.cost, role: v.status?.role ?? 'closed', ticking: v.ticking, atMs: Date.now() };
    };
    const readAll = async (): Promise<Map<string, Reading>> =>
      new Map(await Promise.all(PEERS.map(async (p) => [p, await read(p)] as const)));
    const timed = async (key: string): Promise<number> => {
      const t0 = performance.now();
      await put(key);
      return performance.now() - t0;
    };

    // Bootstrap (the first write waits for the election), then the burst.
    await firstWrite(() => put('cost-warm'));
    let seq = 0;
    for (let i = 0; i < opts.burstWrites; i++) await put(`b${++seq}`);

    // Steady state: one write at a time, counters and workerd CPU around it.
    const warm: number[] = [];
    const pids = workerdPids();
    const before = await readAll();
    const cpu0 = totalCpuSeconds(pids);
    const steadyStart = performance.now();
    for (let i = 0; i < opts.steadyWrites; i++) warm.push(await timed(`s${++seq}`));
    const windowMs = performance.now() - steadyStart;
    const cpuMs = (totalCpuSeconds(pids) - cpu0) * 1000;
    const after = await readAll();
    const total = (f: (c: EdgeCosts) => number): number =>
      PEERS.reduce((n, p) => n + f(after.get(p)!.cost) - f(before.get(p)!.cost), 0) / opts.steadyWrites;
    if (PEERS.some((p) => after.get(p)!.cost.instance !== before.get(p)!.cost.instance)) {
      throw new Error('a peer object restarted during the steady-state writes: the counts would be wrong');
    }
    const calls = total((c) => c.rpcCallsReceived + c.clientRequests + c.alarmsFired);
    const rowsWritten = total((c) => c.sqliteRowsWritten);
    opts.onNote?.(`steady state: ${round2(calls)} billed requests, ${round2(rowsWritten)} rows written per write; idling ${opts.idleS} s`);

    // Idle: let the last writes settle (commit-only appends, derived-state flushes), then wait.
    await new Promise((r) => setTimeout(r, 1000));
    const windowStart = Date.now();
    const start = await readAll();
    await new Promise((r) => setTimeout(r, opts.idleS * 1000));
    const end = await readAll();
    const windowEnd = Math.max(...[...end.values()].map((r) => r.atMs));
    const idle = PEERS.map((p) => idlePeer(p, start.get(p)!, end.get(p)!, windowStart, windowEnd));

    const firstWriteAfterIdleMs = await timed(`after-idle-${++seq}`);
    // What the idle cluster spends per minute, taken off what the writes' window cost.
    const idleBilled = sumOrNull(
      idle.map((p) => (p.callsReceived === null || p.alarmsFired === null ? null : p.callsReceived + p.alarmsFired)),
    );
    const idleRows = sumOrNull(idle.map((p) => p.rowsWritten));
    const idleShare = (perMinute: number | null): number | null =>
      perMinute === null ? null : (perMinute * windowMs) / 60_000 / opts.steadyWrites;
    const net = (raw: number, perMinute: number | null): number | null => {
      const share = idleShare(perMinute);
      return share === null ? null : round2(Math.max(0, raw - share));
    };
    const perWrite: PerWrite = {
      calls: round2(calls),
      rowsWritten: round2(rowsWritten),
      rowsRead: round2(total((c) => c.sqliteRowsRead)),
      cpuMs: pids.length === 0 ? null : round2(cpuMs / opts.steadyWrites),
      writes: opts.steadyWrites,
      windowMs: Math.round(windowMs),
      netCalls: net(calls, idleBilled),
      netRowsWritten: net(rowsWritten, idleRows),
    };
    return {
      idleS: opts.idleS,
      idle,
      idleCallsPerMinute: sumOrNull(idle.map((p) => p.callsReceived)),
      idleRowsWrittenPerMinute: sumOrNull(idle.map((p) => p.rowsWritten)),
      warmWriteMs: round2(median(warm)),
      firstWriteAfterIdleMs: round2(firstWriteAfterIdleMs),
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      perWrite,
    };
  } finally {
    await close();
  }
}

/** The phase's lines for the bench's report. */
export function edgeCostLines(r: EdgeCostResult): string[] {
  const n = (x: number | null) => (x === null ? 'lost' : String(x));
  const out = [
    '',
    `edge cost (workerd, 3 peers): per peer per idle minute, after ${r.idleS} s idle ("lost": the instance that idled is gone with its counters)`,
    '  peer  role       calls out  calls in  rows written  rows read  alarms set  alarms fired  awake s  ticking  slept',
  ];
  for (const p of r.idle) {
    out.push(
      `  ${p.peer.padEnd(5)} ${p.role.padEnd(10)} ${n(p.callsSent).padStart(9)} ${n(p.callsReceived).padStart(9)} ${n(p.rowsWritten).padStart(13)} ${n(
        p.rowsRead,
      ).padStart(
        10,
      )} ${n(p.alarmsSet).padStart(11)} ${n(p.alarmsFired).padStart(13)} ${(p.awakeMs === null ? 'lost' : String(round2(p.awakeMs / 1000))).padStart(8)} ${String(p.ticking).padStart(8)}  ${p.restarted ? (p.wokenDuringIdle ? 'woken during idle' : 'yes') : 'no'}`,
    );
  }
  out.push(
    `  cluster, per idle minute: ${n(r.idleCallsPerMinute)} RPC calls + ${n(sumOrNull(r.idle.map((p) => p.alarmsFired)))} alarm invocations (each a billed request), ` +
      `${n(r.idleRowsWrittenPerMinute)} rows written, ${n(sumOrNull(r.idle.map((p) => p.alarmsSet)))} alarms set`,
    `  first write after idle ${r.firstWriteAfterIdleMs} ms; warm write (median) ${r.warmWriteMs} ms; election timeout ${r.electionTimeoutMs} ms`,
    `  per client write (steady state, one at a time, ${r.perWrite.writes} writes in ${r.perWrite.windowMs} ms, all 3 peers): ` +
      `${r.perWrite.calls} billed requests (client, RPC, alarms), ${r.perWrite.rowsWritten} rows written, ${r.perWrite.rowsRead} rows read, ` +
      `${r.perWrite.cpuMs ?? 'n/a'} ms workerd CPU`,
    `  the same less the idle cluster's traffic in as long (what a write adds): ${n(r.perWrite.netCalls)} billed requests, ${n(r.perWrite.netRowsWritten)} rows written`,
  );
  return out;
}

export function edgeCostVerdicts(r: EdgeCostResult): Array<{ target: string; reached: boolean; detail: string }> {
  const bound = COST_TARGETS.firstWriteWarmFactor * r.warmWriteMs + r.electionTimeoutMs;
  const lost = r.idle.filter((p) => p.callsReceived === null).map((p) => p.peer);
  return [
    {
      target: `edge idle: ${COST_TARGETS.idleCallsPerMinute} calls per idle minute, every object asleep`,
      reached: r.idleCallsPerMinute === 0 && r.idle.every((p) => !p.ticking),
      detail:
        r.idleCallsPerMinute === null
          ? `${lost.join(', ')} slept and lost their counts; the others ${sumOrNull(r.idle.filter((p) => p.callsReceived !== null).map((p) => p.callsReceived))}`
          : `${r.idleCallsPerMinute} calls per idle minute; ticking: ${
              r.idle
                .filter((p) => p.ticking)
                .map((p) => p.peer)
                .join(', ') || 'none'
            }`,
    },
    {
      target: `edge idle: ${COST_TARGETS.idleRowsPerMinute} rows written per idle minute`,
      reached: r.idleRowsWrittenPerMinute === 0,
      detail: `${r.idleRowsWrittenPerMinute ?? 'lost'} rows per idle minute`,
    },
    {
      target: `edge: first write after idle ≤ ${COST_TARGETS.firstWriteWarmFactor}× warm + one election timeout`,
      reached: r.firstWriteAfterIdleMs <= bound,
      detail: `${r.firstWriteAfterIdleMs} ms vs ${round2(bound)} ms (warm ${r.warmWriteMs} ms, election ${r.electionTimeoutMs} ms)`,
    },
  ];
}
