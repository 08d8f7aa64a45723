// The dashboard in a real browser (Debian's chromium through playwright-core) against a real
// 3-node cluster of Node processes with access control on: the shared scenario
// (test/support/dashboard.ts) on the leader's page, and a follower's page, which can only ask
// the node that served it and points to the leader's dashboard for writes. And a node with
// access control off (loopback, no root token: development), where the page needs no token.

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifact, launchBrowser } from '../support/browser.ts';
import { PAGE_WAIT_MS, enterToken, openWithToken, runDashboardScenario, watchProblems } from '../support/dashboard.ts';
import { ProcCluster } from './proc-cluster.ts';
import { rawRequest } from '../support/raw-http.ts';

const ROOT = 'dashboard-root-token-0123456789';
// The production tick (elections after 1-2 s of silence): a loaded machine starves the nodes less often into one.
const cluster = new ProcCluster({ engine: 'memory', rootToken: ROOT, tickMs: 100 });
const openNode = new ProcCluster({ engine: 'memory', size: 1, clusterId: 'open' });
let browser: Browser | undefined;

// Installing chromium (apt-get) may take minutes on a fresh machine. (The dashboard is built by
// the suite's global setup, test/support/ui-build.ts.)
beforeAll(async () => {
  browser = await launchBrowser();
  await Promise.all([cluster.start(), openNode.start()]);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([cluster.stopAll(), openNode.stopAll()]);
}, 60_000);

describe('dashboard on Node', () => {
  it('asks for a token, shows the members, writes, watches, deletes, pages through keys, shows a lease and a lock', async () => {
    // On the leader's page (a follower's cannot write: below); run again if leadership moved meanwhile.
    await cluster.withStableLeader((leader) =>
      runDashboardScenario(browser!, {
        name: 'node',
        url: `${leader.url}/ui`,
        token: ROOT,
        members: ['n1', 'n2', 'n3'],
        leader: async () => (await cluster.leader({ all: true })).id,
        api: (method, path, body) =>
          fetch(`${leader.url}${path}`, { method, headers: cluster.headers, ...(body === undefined ? {} : { body }) }),
      }),
    );
  }, 300_000);

  it('serves the files to anyone under the security headers, and every other spelling as the route it resolves to', async () => {
    const node = cluster.live()[0]!;
    const page = await fetch(`${node.url}/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('Content-Security-Policy')).toMatch(/^default-src 'self'; script-src 'self';/);
    expect(page.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(page.headers.get('Referrer-Policy')).toBe('no-referrer');
    expect(page.headers.get('X-Frame-Options')).toBe('DENY');
    // Request targets sent exactly as written (fetch would normalise them).
    for (const [target, status] of [
      ['/ui/', 200],
      ['/ui/app.js', 200],
      ['/ui/../status', 401],
      ['/ui/%2e%2e/status', 401],
      ['/UI', 401],
      ['//ui', 401],
      ['//ui/app.js', 401],
      ['/ui/..%2fstatus', 404],
      ['/ui/%2e%2e%2fpackage.json', 404],
      ['/ui/nope.js', 404],
      ['/ui/src/main.ts', 401],
    ] as const) {
      const res = await rawRequest(node.url, 'GET', target);
      expect(res.status, target).toBe(status);
      if (status !== 200) expect(JSON.parse(res.body), target).toHaveProperty('error.code');
    }
  });

  it("on a follower's page: what that node knows, and a link to the leader's dashboard for writes", async () => {
    await cluster.withStableLeader(async (leader) => {
      const follower = cluster.live().find((n) => n.id !== leader.id)!;
      const problems: string[] = [];
      const page = await openWithToken(browser!, `${follower.url}/ui`, problems);
      try {
        await enterToken(page, ROOT);
        const marked = page.locator('[data-testid=member-row][data-leader=true]');
        await marked.waitFor({ timeout: PAGE_WAIT_MS });
        expect(await marked.getAttribute('data-member')).toBe(leader.id);
        expect(await page.locator('[data-testid=member-row]').count()).toBe(3);
        const link = page.getByTestId('leader-link');
        await link.waitFor({ timeout: PAGE_WAIT_MS });
        expect(await link.getAttribute('href')).toBe(`${leader.url}/ui`);
        // A write here is redirected to another origin: the page says where to go, instead of
        // taking the redirect for an answer.
        await page.getByTestId('put-key').fill('dash/follower');
        await page.getByTestId('put-value').fill('x');
        await page.getByTestId('put').click();
        await page.getByTestId('put-result').filter({ hasText: "open the leader's dashboard" }).waitFor({ timeout: PAGE_WAIT_MS });
        const stored = await fetch(`${leader.url}/key/dash%2Ffollower`, { headers: cluster.headers });
        expect(stored.status).toBe(404);
        await page.screenshot({ path: artifact('node-4-follower.png'), fullPage: true });
        expect(problems).toEqual([]);
      } finally {
        await page.close();
      }
    });
  }, 120_000);

  it('with access control off, needs no token', async () => {
    const node = openNode.live()[0]!;
    const page = await browser!.newPage();
    const problems: string[] = [];
    watchProblems(page, problems);
    try {
      await page.goto(`${node.url}/ui`);
      await page.locator('[data-testid=member-row][data-leader=true]').waitFor({ timeout: PAGE_WAIT_MS });
      const state = page.locator('[data-testid=auth-state]');
      expect(await state.getAttribute('data-needed')).toBe('false');
      expect(await state.textContent()).toMatch(/no token/);
      await page.getByTestId('put-key').fill('open/k');
      await page.getByTestId('put-value').fill('v');
      await page.getByTestId('put').click();
      await page.getByTestId('put-result').filter({ hasText: 'put open/k at revision' }).waitFor({ timeout: PAGE_WAIT_MS });
      await page.locator('[data-testid=watch-event][data-key="open/k"]').waitFor({ timeout: PAGE_WAIT_MS });
      expect(await (await fetch(`${node.url}/open/k`)).text()).toBe('v');
      expect(problems).toEqual([]);
      // A target starting with "//" is a path here as on the edge (key "/ui"), never a host.
      const doubled = await rawRequest(node.url, 'GET', '//ui');
      expect([doubled.status, JSON.parse(doubled.body).error.code]).toEqual([404, 'key_not_found']);
    } finally {
      await page.close();
    }
  });
});
