// The dashboard in a real browser (Debian's chromium through playwright-core) against the edge
// as `npm start` runs it (wrangler dev: the Worker, its static assets binding and three peer
// Durable Objects in workerd), with access control on (a root token, as a deployment): the
// shared scenario of test/support/dashboard.ts, each peer asked for its status with ?peer=.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../support/browser.ts';
import { runDashboardScenario } from '../support/dashboard.ts';
import { WranglerDev } from '../support/wrangler-dev.ts';
import { rawRequest } from '../support/raw-http.ts';
import { waitFor } from './harness.ts';

const ROOT = 'edge-dashboard-root-token-0123456789';
const AUTH = { Authorization: `Bearer ${ROOT}` };
const stateDir = mkdtempSync(join(tmpdir(), 'metcd-dashboard-edge-'));
/** This suite's loopback ports (wrangler-dev.test.ts has 18780-18799). */
const dev = new WranglerDev([18800, 18819], stateDir, [`METCD_ROOT_TOKEN:${ROOT}`]);
let browser: Browser | undefined;

// Installing chromium (apt-get) may take minutes on a fresh machine. (The dashboard is built by
// the suite's global setup, test/support/ui-build.ts.)
beforeAll(async () => {
  browser = await launchBrowser();
  await dev.start();
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await dev.stop();
  rmSync(stateDir, { recursive: true, force: true });
}, 60_000);

/** The leader every peer agrees on. */
async function leader(): Promise<string> {
  let agreed = '';
  await waitFor('a leader all three peers agree on', async () => {
    const views = await Promise.all(
      ['p1', 'p2', 'p3'].map(async (id) => {
        const res = await fetch(`${dev.base}/status?peer=${id}`, { headers: AUTH });
        return res.status === 200 ? ((await res.json()) as { leader: string }).leader : '';
      }),
    );
    agreed = views[0]!;
    return agreed !== '' && views.every((v) => v === agreed);
  });
  return agreed;
}

describe('dashboard on the edge (wrangler dev)', () => {
  it('serves the files from the assets binding to anyone, under the security headers; other spellings are the routes they resolve to', async () => {
    for (const [path, type] of [
      ['/ui', 'text/html; charset=utf-8'],
      ['/ui/app.js', 'text/javascript; charset=utf-8'],
      ['/ui/app.css', 'text/css; charset=utf-8'],
    ] as const) {
      const res = await fetch(`${dev.base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('Content-Type')).toBe(type);
      expect(res.headers.get('Content-Security-Policy')).toMatch(/^default-src 'self'; script-src 'self';/);
      expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
      expect(res.headers.get('Referrer-Policy')).toBe('no-referrer');
      expect(res.headers.get('X-Frame-Options')).toBe('DENY');
      await res.body?.cancel();
    }
    // Request targets sent exactly as written (fetch would normalise them).
    for (const [target, status] of [
      ['/ui/', 200],
      ['/ui/../status', 401],
      ['/ui/%2e%2e/status', 401],
      ['/UI', 401],
      ['/ui/..%2fstatus', 404],
      ['/ui/%2e%2e%2fwrangler.toml', 404],
      ['/ui/nope.js', 404],
      ['/ui/src/main.ts', 401],
    ] as const) {
      const res = await rawRequest(dev.base, 'GET', target);
      expect(res.status, target).toBe(status);
      if (status !== 200) expect(JSON.parse(res.body), target).toHaveProperty('error.code');
    }
  });

  it('asks for a token, shows every peer, writes, watches, deletes, pages through keys, shows a lease and a lock', async () => {
    await leader();
    await runDashboardScenario(browser!, {
      name: 'edge',
      url: `${dev.base}/ui`,
      token: ROOT,
      members: ['p1', 'p2', 'p3'],
      leader,
      // redirects to the leader are followed (same origin: the header goes along)
      api: (method, path, body) => fetch(`${dev.base}${path}`, { method, headers: AUTH, ...(body === undefined ? {} : { body }) }),
    });
  }, 180_000);
});
