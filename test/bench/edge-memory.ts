// How close a full peer comes to a Durable Object's 128 MB, measured under local workerd:
//   npx node test/bench/edge-memory.ts
// A one-peer cluster (CLUSTER_SIZE=1) runs under `wrangler dev`, as `npm start` runs it, and is
// filled with 1 MiB values until its space quota (the QUOTA_BYTES var: by default 132 MiB, more
// than the object's 128 MB of memory) refuses a put (507); then wrangler dev is restarted on the
// same state, so the peer is loaded cold from its storage, as a woken object.
//
// Two measures, and what each is worth:
//   - the isolate's V8 heap, through the inspector wrangler dev opens (Chrome DevTools Protocol:
//     HeapProfiler.collectGarbage, then Runtime.getHeapUsage). This is the memory the platform's
//     128 MB bounds, for the one isolate that holds the Worker and the peer object. It leaves out
//     memory outside the V8 heap (SQLite's page cache, which the platform does not count there).
//   - the workerd process's resident set (VmRSS, and VmHWM: its peak) from /proc: everything the
//     process holds (the runtime, SQLite, the allocator's slack), an upper bound.
// Linux only (/proc); ports 18820-18839 on loopback (test/edge/dashboard.test.ts and
// wrangler-dev.test.ts hold 18780-18819: suites run side by side, and a port probed free by two
// of them at once is bound by one).

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cleanup, installCleanupHandlers, trackChild, trackDir } from './cleanup.ts';
import { workerdPids } from './edge.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const PORT_RANGE = [18820, 18839] as const;
/** How long the inspector may take to connect, or to answer one call (a GC of a full heap). */
const INSPECTOR_WAIT_MS = 60_000;

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export async function freePorts(): Promise<[number, number]> {
  const free: number[] = [];
  for (let port = PORT_RANGE[0]; port <= PORT_RANGE[1] && free.length < 2; port++) if (await isFree(port)) free.push(port);
  if (free.length < 2) throw new Error(`no two free ports in ${PORT_RANGE.join('-')}`);
  return free as [number, number];
}

/** VmRSS and VmHWM of `pids`, summed, in bytes. */
export function resident(pids: readonly number[]): { rss: number; peak: number } {
  let rss = 0;
  let peak = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
      peak += Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return { rss, peak };
}

/** `promise`, or an error naming `what` once INSPECTOR_WAIT_MS pass: a stalled inspector is a
 *  failure that says so, not a test waiting out its timeout. */
function withDeadline<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${INSPECTOR_WAIT_MS} ms waiting for ${what}`)), INSPECTOR_WAIT_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** `wrangler dev` on this repository with its own state dir and inspector port. */
export class Dev {
  private child: ChildProcess | null = null;
  private output = '';
  readonly base: string;

  private readonly port: number;
  private readonly inspectorPort: number;
  private readonly stateDir: string;

  private readonly vars: string[];
  private readonly clusterSize: number;

  constructor(port: number, inspectorPort: number, stateDir: string, vars: string[], clusterSize = 1) {
    this.vars = vars;
    this.clusterSize = clusterSize;
    this.port = port;
    this.inspectorPort = inspectorPort;
    this.stateDir = stateDir;
    this.base = `http://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    const wrangler = join(ROOT, 'node_modules/wrangler/bin/wrangler.js');
    const args = ['dev', '--ip', '127.0.0.1', '--port', String(this.port), '--inspector-port', String(this.inspectorPort)];
    args.push('--persist-to', this.stateDir, '--show-interactive-dev-session=false');
    for (const v of ['METCD_AUTH:open', `CLUSTER_SIZE:${this.clusterSize}`, 'CLUSTER_NAME:memory', ...this.vars]) args.push('--var', v);
    const child = spawn(process.execPath, [wrangler, ...args], {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child);
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${this.output}`);
      try {
        const res = await fetch(`${this.base}/health`);
        await res.body?.cancel();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`wrangler dev did not answer:\n${this.output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(-child.pid, 'SIGTERM');
    await exited;
  }

  /** The Worker isolate's V8 heap after a full garbage collection, over the inspector. */
  async heapUsed(): Promise<{ used: number; buffers: number }> {
    const targets = (await (await fetch(`http://127.0.0.1:${this.inspectorPort}/json`)).json()) as Array<{ webSocketDebuggerUrl?: string }>;
    const url = targets.find((t) => t.webSocketDebuggerUrl !== undefined)?.webSocketDebuggerUrl;
    if (url === undefined) throw new Error('the inspector lists no target');
    // The inspector proxy wants an Origin it trusts (a local one); Node's WebSocket takes headers.
    const ws = new WebSocket(url, { headers: { Origin: 'http://127.0.0.1' } } as unknown as string[]);
    let id = 0;
    const call = (method: string): Promise<Record<string, number>> =>
      withDeadline(
        method,
        new Promise((resolve, reject) => {
          const mine = ++id;
          const onMessage = (ev: MessageEvent): void => {
            const msg = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, number>; error?: { message: string } };
            if (msg.id !== mine) return;
            ws.removeEventListener('message', onMessage);
            if (msg.error !== undefined) reject(new Error(`${method}: ${msg.error.message}`));
            else resolve(msg.result ?? {});
          };
          ws.addEventListener('message', onMessage);
          ws.send(JSON.stringify({ id: mine, method }));
        }),
      );
    try {
      await withDeadline(
        'the inspector to connect',
        new Promise((resolve, reject) => {
          ws.addEventListener('open', resolve, { once: true });
          ws.addEventListener('error', reject, { once: true });
        }),
      );
      await call('HeapProfiler.collectGarbage');
      const usage = await call('Runtime.getHeapUsage');
      // usedSize: the JS heap; backingStorageSize: ArrayBuffer contents (log entries, snapshot
      // bytes), held outside it but the isolate's memory all the same.
      return { used: usage['usedSize'] ?? NaN, buffers: usage['backingStorageSize'] ?? NaN };
    } finally {
      ws.close();
    }
  }
}

/** Memory at one moment: the isolate (after a full GC) and the workerd processes. */
export interface MemoryReading {
  heap: { used: number; buffers: number };
  proc: { rss: number; peak: number };
}

/** The fill's quota by default: a state larger than the object's memory. */
export const EDGE_MEMORY_QUOTA_BYTES = 132 * MiB;

export interface EdgeMemoryResult {
  snapshotEveryEntries: number | undefined;
  /** 1 MiB values written before the quota refused one. */
  written: number;
  full: { stateBytes: number; stateBytesMax: number; snapshotIndex: number; lastIndex: number; keys: number };
  empty: MemoryReading;
  filled: MemoryReading;
  /** After wrangler dev restarted on the same state (the peer loaded cold from storage). */
  cold: MemoryReading;
  /** The last value written read back whole after the restart. */
  coldRead: boolean;
}

/** Fills a one-peer cluster to its quota under wrangler dev and reads its memory (see the header).
 *  `snapshotEveryEntries`: the SNAPSHOT_EVERY_ENTRIES var (snapshots while filling). */
export async function measureEdgeMemory(snapshotEveryEntries?: number, quotaBytes = EDGE_MEMORY_QUOTA_BYTES): Promise<EdgeMemoryResult> {
  const [port, inspectorPort] = await freePorts();
  const vars = [`QUOTA_BYTES:${quotaBytes}`];
  if (snapshotEveryEntries !== undefined) vars.push(`SNAPSHOT_EVERY_ENTRIES:${snapshotEveryEntries}`);
  const stateDir = trackDir(mkdtempSync(join(tmpdir(), 'metcd-edge-memory-')));
  const dev = new Dev(port, inspectorPort, stateDir, vars);
  try {
    return await fill(dev, snapshotEveryEntries);
  } finally {
    await dev.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

async function fill(dev: Dev, snapshotEveryEntries: number | undefined): Promise<EdgeMemoryResult> {
  const put = async (key: string, value: string): Promise<number> => {
    const res = await fetch(`${dev.base}/${key}`, { method: 'PUT', body: value });
    await res.arrayBuffer();
    return res.status;
  };
  const status = async () =>
    (await (await fetch(`${dev.base}/status`)).json()) as {
      stateBytes: number;
      stateBytesMax: number;
      snapshotIndex: number;
      lastIndex: number;
      keys: number;
    };

  await dev.start();
  for (let tries = 0; (await put('warm', 'w')) !== 204; tries++) {
    if (tries > 100) throw new Error('the peer did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
  const pids = workerdPids();
  const empty: MemoryReading = { heap: await dev.heapUsed(), proc: resident(pids) };

  // 1 MiB values of one repeated ASCII character each, distinct keys (no key history): the
  // state is the values.
  let written = 0;
  for (let i = 0; ; i++) {
    const code = await put(`fill/${String(i).padStart(3, '0')}`, String.fromCharCode(97 + (i % 26)).repeat(MiB));
    if (code === 507) break;
    if (code !== 204) throw new Error(`put ${i}: HTTP ${code}`);
    written++;
  }
  const full = await status();
  const filled = { heap: await dev.heapUsed(), proc: resident(pids) };

  await dev.stop();
  await dev.start();
  const before = await status(); // opens the peer: it loads everything from storage
  if (before.keys !== full.keys) throw new Error(`restarted with ${before.keys} keys, not ${full.keys}`);
  const coldPids = workerdPids();
  const cold = { heap: await dev.heapUsed(), proc: resident(coldPids) };
  // The last value written, read back from storage (after the measure: it warms the cache).
  const last = written - 1;
  const res = await fetch(`${dev.base}/fill/${String(last).padStart(3, '0')}`);
  const body = await res.text();
  const coldRead = res.status === 200 && body === String.fromCharCode(97 + (last % 26)).repeat(MiB);
  return { snapshotEveryEntries, written, full, empty, filled, cold, coldRead };
}

/** The measurement as the README quotes it. */
export function edgeMemoryLines(r: EdgeMemoryResult): string[] {
  const { written, full, empty, filled, cold } = r;
  const every = r.snapshotEveryEntries;

  const line = (what: string, m: typeof empty) =>
    `  ${what.padEnd(16)} JS heap ${mib(m.heap.used)} + ArrayBuffers ${mib(m.heap.buffers)} = ${mib(m.heap.used + m.heap.buffers)}` +
    ` (${((m.heap.used + m.heap.buffers) / 1e6).toFixed(1)} MB)   workerd RSS ${mib(m.proc.rss)}, peak ${mib(m.proc.peak)}`;
  const lines = [
    `edge memory, one peer under wrangler dev${every === undefined ? '' : ` (SNAPSHOT_EVERY_ENTRIES=${every})`}: the isolate after a full GC (inspector: Runtime.getHeapUsage), workerd's resident set (/proc)`,
    `  filled: ${written} values of 1 MiB until the quota refused (507): stateBytes ${mib(full.stateBytes)} of ${mib(full.stateBytesMax)}; ` +
      `log ${full.lastIndex - full.snapshotIndex} entries above the snapshot at ${full.snapshotIndex}`,
    line('empty peer', empty),
    line('full peer', filled),
    line('full, restarted', cold),
  ];
  return lines;
}

async function main(): Promise<void> {
  installCleanupHandlers((signal) => process.stderr.write(`\nedge-memory: ${signal}: stopping\n`));
  // `--snapshot-every-entries N` (the SNAPSHOT_EVERY_ENTRIES var): snapshots while filling.
  const flag = process.argv.indexOf('--snapshot-every-entries');
  const every = flag < 0 ? undefined : Number(process.argv[flag + 1]);
  if (every !== undefined && !(Number.isInteger(every) && every >= 1)) throw new Error('--snapshot-every-entries takes a positive integer');
  process.stdout.write(edgeMemoryLines(await measureEdgeMemory(every)).join('\n') + '\n');
}

// Run as a script (npx node test/bench/edge-memory.ts), not when a test imports it.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    () => cleanup().then(() => process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`edge-memory: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      void cleanup().finally(() => process.exit(1));
    },
  );
}
