// `npm start` as a user runs it: `wrangler dev` with the project's config, on a port of its own
// (never 8787, the user's), with telemetry and the Request.cf download off. The README's curl
// commands work against it (redirects followed, as with `curl -L`), and the data survives a
// restart of wrangler dev because it lives in the local state directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WranglerDev } from '../support/wrangler-dev.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'metcd-wrangler-dev-'));
// This suite's loopback port range; as npm start: local development in open mode (a deployment
// is not: deploy.test.ts).
const dev = new WranglerDev([18780, 18799], stateDir, ['METCD_AUTH:open']);

afterAll(async () => {
  await dev.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/** fetch follows 307 like `curl -L` (and resends the body, as curl does for 307). */
async function curl(path: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(`${dev.base}${path}`, init);
  return { status: res.status, body: await res.text() };
}

describe('npm start (wrangler dev)', () => {
  it("serves the README's curl commands against a 3-peer cluster, and keeps the data across a restart", async () => {
    await dev.start();
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
    // the dashboard, from the assets binding (README, Dashboard)
    const page = await fetch(`${dev.base}/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('Content-Type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('/ui/app.js');
    expect((await fetch(`${dev.base}/ui/app.js`)).headers.get('Content-Type')).toBe('text/javascript; charset=utf-8');

    await dev.stop();
    await dev.start();
    expect(await curl('/hello')).toEqual({ status: 200, body: 'world' });
    expect((await curl('/key/foo')).status).toBe(404);
    await dev.stop();
    expect(dev.output).not.toMatch(/Unable to fetch the `Request.cf` object/);
  });
});
