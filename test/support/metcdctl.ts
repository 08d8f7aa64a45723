// metcdctl spawned as a user runs it (its bin launcher, a real process), for the Node, TLS and
// edge tests: one-shot runs with their exit code and output, and long-running ones (watch, lock,
// elect) read until a pattern shows and stopped with a signal as Ctrl-C does.

import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './wait.ts';

const BIN = new URL('../../node-runtime/bin/metcdctl.mjs', import.meta.url).pathname;

export interface CtlRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CtlOptions {
  /** Words before every command (--endpoints …, TLS flags). */
  globals: string[];
  /** METCDCTL_TOKEN ('' for none). */
  token: string;
}

export interface Ctl {
  run(args: string[], opts?: { stdin?: string; token?: string }): Promise<CtlRun>;
  /** Runs and throws unless it exits 0; resolves to its stdout. */
  ok(args: string[], opts?: { stdin?: string }): Promise<string>;
  /** Starts a long-running command and collects its output until `until` shows in it. */
  start(args: string[], until: RegExp): Promise<{ proc: ChildProcess; out: () => string; result: Promise<CtlRun> }>;
}

function launch(args: string[], token: string): { proc: ChildProcess; result: Promise<CtlRun>; out: () => string } {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, METCDCTL_TOKEN: token }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<CtlRun>((resolve) => proc.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { proc, result, out: () => stdout };
}

export function metcdctl(opts: CtlOptions): Ctl {
  const run: Ctl['run'] = (args, o = {}) => {
    const { proc, result } = launch([...opts.globals, ...args], o.token ?? opts.token);
    proc.stdin!.end(o.stdin ?? '');
    return result;
  };
  return {
    run,
    async ok(args, o = {}) {
      const r = await run(args, o);
      if (r.code !== 0) throw new Error(`metcdctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    async start(args, until) {
      const { proc, result, out } = launch([...opts.globals, ...args], opts.token);
      proc.stdin!.end();
      let ended: CtlRun | undefined;
      void result.then((r) => (ended = r));
      await waitFor(`metcdctl ${args.join(' ')} to print ${until}`, 20_000, async () => {
        if (until.test(out())) return true;
        if (ended !== undefined) throw new Error(`metcdctl ${args.join(' ')} exited ${ended.code}: ${ended.stderr}`);
        return undefined;
      });
      return { proc, out, result };
    },
  };
}
