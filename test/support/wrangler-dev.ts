// `wrangler dev` as `npm start` runs it, for the tests that need the edge on a real port (a
// browser, curl): the project's config, telemetry and the Request.cf download off, its own ports
// from a range (never 8787, the user's), its state in a directory the test owns. Stopping it
// stops the workerd it started (its own process group).

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT, waitFor } from '../edge/harness.ts';

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

export class WranglerDev {
  port = 0;
  inspectorPort = 0;
  output = '';
  private running: ChildProcess | null = null;
  private readonly portRange: readonly [number, number];
  private readonly stateDir: string;
  private readonly vars: readonly string[];

  /** `vars` as wrangler's --var takes them: NAME:value. */
  constructor(portRange: readonly [number, number], stateDir: string, vars: readonly string[]) {
    this.portRange = portRange;
    this.stateDir = stateDir;
    this.vars = vars;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts it (on the ports of the first start, so a restart keeps its URL) and waits until it answers. */
  async start(): Promise<void> {
    if (this.port === 0) await this.pickPorts();
    const wrangler = join(ROOT, 'node_modules/wrangler/bin/wrangler.js');
    const args = [wrangler, 'dev', '--ip', '127.0.0.1', '--port', String(this.port), '--inspector-port', String(this.inspectorPort)];
    args.push('--persist-to', this.stateDir, '--show-interactive-dev-session=false');
    for (const v of this.vars) args.push('--var', v);
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.running = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    await waitFor(
      'wrangler dev to answer',
      async () => {
        if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${this.output}`);
        try {
          await (await fetch(`${this.base}/health`)).body?.cancel();
          return true;
        } catch {
          return false;
        }
      },
      () => this.output,
    );
  }

  async stop(): Promise<void> {
    const child = this.running;
    this.running = null;
    if (child === null || child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(-child.pid, 'SIGTERM');
    await exited;
  }

  /** Two free ports of the range (another run of the suite on the same machine may hold some). */
  private async pickPorts(): Promise<void> {
    const free: number[] = [];
    for (let port = this.portRange[0]; port <= this.portRange[1] && free.length < 2; port++) {
      if (await isFree(port)) free.push(port);
    }
    if (free.length < 2) throw new Error(`no two free ports in ${this.portRange.join('-')}`);
    [this.port, this.inspectorPort] = free as [number, number];
  }
}
