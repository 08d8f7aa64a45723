// `npm start` as a user runs it: `wrangler dev` with the project's config, on a port of its own
// (never 8787, the user's), with telemetry and the Request.cf download off. The README's curl
// commands work against it (redirects followed, as with `curl -L`), and the data survives a
// restart of wrangler dev because it lives in the local state directory.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from './harness.ts';

/** This suite's loopback port range (never 8787, the user's `npm start`). */
const PORT_RANGE = [18780, 18799] as const;
let PORT = 0;
let INSPECTOR_PORT = 0;
let BASE = '';
const stateDir = mkdtempSync(join(tmpdir(), 'metcd-wrangler-dev-'));
let running: ChildProcess | null = null;
let output = '';

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** Two free ports of the range (another run of the suite on the same machine may hold some). */
async function pickPorts(): Promise<void> {
  const free: number[] = [];
  for (let port = PORT_RANGE[0]; port <= PORT_RANGE[1] && free.length < 2; port++) {
    if (await isFree(port)) free.push(port);
  }
  if (free.length < 2) throw new Error(`no two free ports in ${PORT_RANGE.join('-')}`);
  [PORT, INSPECTOR_PORT] = free as [number, number];
  BASE = `http://127.0.0.1:${PORT}`;
}

/** Starts `wrangler dev` the way `npm start` does, with its state in `stateDir`. */
async function startDev(): Promise<void> {
  const wrangler = join(ROOT, 'node_modules/wrangler/bin/wrangler.js');
  const child = spawn(
    process.execPath,
    [
      wrangler,
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(PORT),
      '--inspector-port',
      String(INSPECTOR_PORT),
      '--persist-to',
      stateDir,
      '--show-interactive-dev-session=false',
      // As npm start: local development in open mode (a deployment is not: deploy.test.ts).
      '--var',
      'METCD_AUTH:open',
    ],
    {
      cwd: ROOT,
      // Its own process group, so stopping it also stops the workerd it starts.
      detached: true,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running = child;
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(
    'wrangler dev to answer',
    async () => {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output}`);
      try {
        await (await fetch(`${BASE}/status`)).body?.cancel();
        return true;
      } catch {
        return false;
      }
    },
    () => output,
  );
}

async function stopDev(): Promise<void> {
  const child = running;
  running = null;
  if (child === null || child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid, 'SIGTERM');
  await exited;
}

afterAll(async () => {
  await stopDev();
  rmSync(stateDir, { recursive: true, force: true });
});

/** fetch follows 307 like `curl -L` (and resends the body, as curl does for 307). */
async function curl(path: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(`${BASE}${path}`, init);
  return { status: res.status, body: await res.text() };
}

describe('npm start (wrangler dev)', () => {
  it("serves the README's curl commands against a 3-peer cluster, and keeps the data across a restart", async () => {
    await pickPorts();
    await startDev();
    // metcd style: curl -L http://127.0.0.1:8787/hello -XPUT -d world; curl -L …/hello
    expect((await curl('/hello', { method: 'PUT', body: 'world' })).status).toBe(204);
    expect(await curl('/hello')).toEqual({ status: 200, body: 'world' });
    // hraftd style
    expect((await curl('/key', { method: 'POST', body: '{"foo": "bar"}' })).status).toBe(200);
    expect(await curl('/key/foo')).toEqual({ status: 200, body: '{"foo":"bar"}' });
    expect(await curl('/key/foo?level=consistent&peer=p2')).toEqual({ status: 200, body: '{"foo":"bar"}' });
    expect((await curl('/key/foo', { method: 'DELETE' })).status).toBe(200);
    expect((await curl('/key/foo')).status).toBe(404);
    const members = JSON.parse((await curl('/members')).body) as { members: Array<{ id: string }> };
    expect(members.members.map((m) => m.id)).toEqual(['p1', 'p2', 'p3']);

    await stopDev();
    await startDev();
    expect(await curl('/hello')).toEqual({ status: 200, body: 'world' });
    expect((await curl('/key/foo')).status).toBe(404);
    await stopDev();
    expect(output).not.toMatch(/Unable to fetch the `Request.cf` object/);
  });
});
