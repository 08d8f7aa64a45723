// One metcd node as a real process (the Node runtime's CLI) on loopback: what the process
// tests (test/node/proc-cluster.ts) and the benchmark (test/bench/metcd.ts) both start, kill
// and restart. Output is captured in memory, or appended to a log file when one is given (a
// long benchmark must not hold every line in memory, nor leave a pipe unread).

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { nodeProcess } from '../../node-runtime/process-tuning.ts';

export const CLI = new URL('../../node-runtime/cli.ts', import.meta.url).pathname;

export interface NodeProcessOptions {
  /** Append stdout and stderr here instead of capturing them in `output`. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with every process spawned (the bench registers it for cleanup on Ctrl-C). */
  onSpawn?: (proc: ChildProcess) => void;
}

export class NodeProcess {
  readonly id: string;
  readonly port: number;
  readonly args: string[];
  proc: ChildProcess | undefined;
  /** Everything the process wrote, across restarts (without a log file). */
  output = '';
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private readonly options: NodeProcessOptions;

  constructor(id: string, port: number, args: string[], options: NodeProcessOptions = {}) {
    this.id = id;
    this.port = port;
    this.args = args;
    this.options = options;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(extra: string[] = []): void {
    // As `npm run node` starts a node (process-tuning.ts): the memory the tests and the bench
    // see is what a user's node has.
    const { argv, env } = nodeProcess(CLI, [...this.args, ...extra], this.options.env ?? process.env);
    const { logFile, onSpawn } = this.options;
    let proc: ChildProcess;
    if (logFile !== undefined) {
      const fd = openSync(logFile, 'a');
      proc = spawn(process.execPath, argv, { stdio: ['ignore', fd, fd], env });
      closeSync(fd);
    } else {
      proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
      const add = (d: Buffer) => (this.output += d.toString());
      proc.stdout!.on('data', add);
      proc.stderr!.on('data', add);
    }
    onSpawn?.(proc);
    this.proc = proc;
    this.exit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    this.proc!.kill(signal);
    await this.exit;
  }

  signal(signal: NodeJS.Signals): void {
    this.proc?.kill(signal);
  }

  /** The end of what the process wrote (its log file, or the captured output). */
  logTail(bytes = 2000): string {
    if (this.options.logFile === undefined) return this.output.slice(-bytes);
    try {
      return readFileSync(this.options.logFile, 'utf8').slice(-bytes);
    } catch {
      return '';
    }
  }
}

/** Runs the CLI once with `args` to its exit (killed after `timeoutMs`): its code and output. */
export function runCli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
