// metcd on a plain server: `metcd --id n1 --bootstrap …` (also `npm run node -- …`).
// Bad flags, a port in use, a data dir of another node/engine/cluster, an unreachable join
// target: one clear line on stderr and a non-zero exit. SIGTERM/SIGINT: a leader hands
// leadership over first, then everything is flushed and the process exits 0.

import { FlagError, helpText, parseFlags } from './flags.ts';
import { startNode, type RunningNode } from './node.ts';
import { DataDirError, StorageCorruptError } from './storage/errors.ts';
import { JoinError } from './join.ts';

const SHUTDOWN_MS_MAX = 15_000;

function die(message: string, code = 1): never {
  process.stderr.write(`metcd: ${message}\n`);
  process.exit(code);
}

function explain(err: unknown, http: string): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE') return `cannot listen on ${http}: the port is in use`;
  if (e.code === 'EACCES') return `cannot listen on ${http}: permission denied`;
  if (e.code === 'EADDRNOTAVAIL') return `cannot listen on ${http}: no such local address`;
  if (err instanceof DataDirError || err instanceof StorageCorruptError || err instanceof JoinError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseFlags(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof FlagError) die(err.message, 2);
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(helpText() + '\n');
    return;
  }
  const cfg = parsed.config;
  const http = `${cfg.listenHost}:${cfg.listenPort}`;
  let node: RunningNode | undefined;
  const fatal = (err: Error): void => {
    node?.log.error('fatal', { error: explain(err, http) });
    process.stderr.write(`metcd: ${explain(err, http)}\n`);
    void (node?.stop({ transferLeadership: false }) ?? Promise.resolve()).finally(() => process.exit(1));
    setTimeout(() => process.exit(1), 5000).unref();
  };
  // Signals are handled from the start: one that arrives while the node is still starting
  // stops it as soon as it is up.
  let state: 'starting' | 'stop-when-started' | 'running' | 'stopping' = 'starting';
  const shutdown = (signal: string): void => {
    // A repeated signal (Ctrl-C reaches a launcher and its child alike) changes nothing: the
    // shutdown under way is bounded by the timer below.
    if (state === 'starting') state = 'stop-when-started';
    if (state !== 'running' || node === undefined) return;
    state = 'stopping';
    node.log.info('shutting down', { signal });
    setTimeout(() => die(`shutdown did not finish within ${SHUTDOWN_MS_MAX} ms; exiting`), SHUTDOWN_MS_MAX).unref();
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => die(`shutdown failed: ${explain(err, http)}`),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    node = await startNode(cfg, fatal);
  } catch (err) {
    die(explain(err, http));
  }
  const stopNow = (state as string) === 'stop-when-started'; // set by a signal handler meanwhile
  state = 'running';
  if (stopNow) shutdown('a signal received while starting');
}

main().catch((err: unknown) => die(err instanceof Error ? (err.stack ?? err.message) : String(err)));
