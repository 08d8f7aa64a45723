// Everything the benchmark starts (processes, temp dirs, servers) is registered here and torn
// down on every way out: normal end, an error, Ctrl-C, SIGTERM. Child processes are killed with
// SIGKILL (a benchmark cluster holds nothing worth a graceful stop) and temp dirs removed.

import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

type AsyncCloser = () => Promise<void>;

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const closers = new Set<AsyncCloser>();
let installed = false;

export function trackChild(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function trackDir(dir: string): string {
  dirs.add(dir);
  return dir;
}

/** An async resource (a miniflare server): closed by cleanup(); best effort on a signal. */
export function trackCloser(close: AsyncCloser): () => Promise<void> {
  closers.add(close);
  return async () => {
    closers.delete(close);
    await close();
  };
}

function killChild(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    child.kill('SIGCONT'); // a SIGSTOPped child would not die until continued on some kernels
    child.kill('SIGKILL');
  } catch {
    // already gone
  }
}

/** Synchronous part: safe from an 'exit' handler. */
function killAllSync(): void {
  for (const child of children) killChild(child);
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

export async function cleanup(): Promise<void> {
  for (const close of [...closers]) {
    closers.delete(close);
    await close().catch(() => undefined);
  }
  killAllSync();
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Install once: signals and the process exit clean up before leaving. */
export function installCleanupHandlers(onSignal: (signal: string) => void): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      onSignal(signal);
      const hardStop = setTimeout(() => {
        killAllSync();
        process.exit(130);
      }, 5000);
      hardStop.unref();
      void cleanup().finally(() => process.exit(130));
    });
  }
}
