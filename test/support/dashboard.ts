// What the dashboard must do in a real browser, the same on both runtimes: with access control
// on it asks for a token and then works; the members table shows every member with the leader
// marked and each one's lag; a key written through one page shows in a second page's watch
// feed; a key deleted through the page goes, in the feed too; a prefix is browsed a page at a
// time. Screenshots of each step are kept in test/artifacts/ (git-ignored). No uncaught error
// and no Content-Security-Policy violation may happen on the way.

import { expect } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { artifact } from './browser.ts';

/** Bound on how long the page may take to show something. Generous: tests assert what, not how fast. */
export const PAGE_WAIT_MS = 30_000;

export interface DashboardTarget {
  /** Artifact names start with it: 'node', 'edge'. */
  name: string;
  /** The page: <base>/ui. */
  url: string;
  token: string;
  members: string[];
  /** The current leader, as the cluster says (asked with the token). */
  leader(): Promise<string>;
  /** A request through the API (not the page), with the token, redirects followed. */
  api(method: string, path: string, body?: string): Promise<Response>;
}

/** Uncaught errors and CSP violations a page reports. */
export function watchProblems(page: Page, problems: string[]): void {
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content.Security.Policy/i.test(msg.text())) problems.push(`csp: ${msg.text()}`);
  });
}

export async function enterToken(page: Page, token: string): Promise<void> {
  await page.getByTestId('token-input').fill(token);
  await page.getByTestId('token-save').click();
  await page.locator('[data-testid=auth-state][data-needed=false]').waitFor({ timeout: PAGE_WAIT_MS });
}

/** The member rows as [id, leader?, cells…]. */
async function memberRows(page: Page): Promise<Array<{ id: string; leader: boolean; cells: string[] }>> {
  return page.locator('[data-testid=member-row]').evaluateAll((rows) =>
    rows.map((r) => ({
      id: r.getAttribute('data-member') ?? '',
      leader: r.getAttribute('data-leader') === 'true',
      cells: [...r.children].map((c) => (c.textContent ?? '').trim()),
    })),
  );
}

async function keysShown(page: Page): Promise<string[]> {
  return page.locator('[data-testid=key-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key') ?? ''));
}

const poll = { timeout: PAGE_WAIT_MS, interval: 100 };

/** Opens the page, shows that a token is needed, enters it, and waits for the members table. */
export async function openWithToken(browser: Browser, url: string, problems: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  watchProblems(page, problems);
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  expect(response?.headers()['content-security-policy']).toContain("default-src 'self'");
  const state = page.locator('[data-testid=auth-state][data-needed=true]');
  await state.waitFor({ timeout: PAGE_WAIT_MS });
  expect(await state.textContent()).toMatch(/Token needed/);
  expect(await page.locator('[data-testid=member-row]').count()).toBe(0);
  return page;
}

export async function runDashboardScenario(browser: Browser, t: DashboardTarget): Promise<void> {
  const pages: Page[] = [];
  try {
    await scenario(browser, t, pages);
  } finally {
    for (const page of pages) await page.close();
  }
}

async function scenario(browser: Browser, t: DashboardTarget, pages: Page[]): Promise<void> {
  const problems: string[] = [];
  const writer = await openWithToken(browser, t.url, problems);
  pages.push(writer);
  await writer.screenshot({ path: artifact(`${t.name}-1-token-needed.png`) });
  await enterToken(writer, t.token);

  // The cluster: every member, the leader marked, every member's lag known (the leader's view).
  await expect.poll(async () => (await memberRows(writer)).map((r) => r.id).sort(), poll).toEqual([...t.members].sort());
  await expect
    .poll(async () => {
      const leader = await t.leader();
      const marked = (await memberRows(writer)).filter((r) => r.leader).map((r) => r.id);
      return marked.length === 1 && marked[0] === leader;
    }, poll)
    .toBe(true);
  // cells: role, term, commit, applied, match, lag, revision, address
  await expect.poll(async () => (await memberRows(writer)).every((r) => /^\d+$/.test(r.cells[6] ?? '')), poll).toBe(true);
  const leaderRow = (await memberRows(writer)).find((r) => r.leader)!;
  expect(leaderRow.cells[1]).toBe('leader');
  expect(Number(leaderRow.cells[2])).toBeGreaterThan(0); // term
  expect(Number(leaderRow.cells[3])).toBeGreaterThan(0); // commit index
  expect(await writer.getByTestId('leader-badge').count()).toBe(1);

  // A second page watches everything; a key put through the first appears in its feed.
  const watcher = await openWithToken(browser, t.url, problems);
  pages.push(watcher);
  await enterToken(watcher, t.token);
  await watcher.locator('[data-testid=watch-state]', { hasText: 'watching' }).waitFor({ timeout: PAGE_WAIT_MS });
  const key = `dash/${t.name}/greeting`;
  await writer.getByTestId('put-key').fill(key);
  await writer.getByTestId('put-value').fill('hello from the page');
  await writer.getByTestId('put').click();
  await writer
    .getByTestId('put-result')
    .filter({ hasText: `put ${key} at revision` })
    .waitFor({ timeout: PAGE_WAIT_MS });
  const put = watcher.locator(`[data-testid=watch-event][data-key="${key}"][data-type=put]`);
  await put.waitFor({ timeout: PAGE_WAIT_MS });
  expect(await put.textContent()).toContain('hello from the page');
  // The value view shows what was written.
  await writer.getByTestId('value-value').filter({ hasText: 'hello from the page' }).waitFor({ timeout: PAGE_WAIT_MS });
  expect(Number(await writer.getByTestId('value-version').textContent())).toBe(1);

  // Deleted through the page: gone, and the feed says so.
  await writer.getByTestId('delete-key').click();
  await writer
    .getByTestId('put-result')
    .filter({ hasText: `deleted ${key}` })
    .waitFor({ timeout: PAGE_WAIT_MS });
  await watcher.locator(`[data-testid=watch-event][data-key="${key}"][data-type=delete]`).waitFor({ timeout: PAGE_WAIT_MS });
  await watcher.screenshot({ path: artifact(`${t.name}-2-watch-feed.png`), fullPage: true });

  // Browsing a prefix a page at a time.
  const prefix = `dash/${t.name}/page/`;
  const keys = Array.from({ length: 7 }, (_, i) => `${prefix}k${i}`);
  for (const k of keys) {
    const res = await t.api('PUT', `/key/${encodeURIComponent(k)}`, `value of ${k}`);
    expect(res.status, await res.text()).toBe(204);
  }
  await writer.getByTestId('prefix-input').fill(prefix);
  await writer.getByTestId('page-size').selectOption('5');
  await writer.getByTestId('search').click();
  await expect.poll(() => keysShown(writer), poll).toEqual(keys.slice(0, 5));
  expect(await writer.getByTestId('prev-page').isDisabled()).toBe(true);
  await writer.getByTestId('next-page').click();
  await expect.poll(() => keysShown(writer), poll).toEqual(keys.slice(5));
  expect(await writer.getByTestId('next-page').isDisabled()).toBe(true);
  await writer.getByTestId('prev-page').click();
  await expect.poll(() => keysShown(writer), poll).toEqual(keys.slice(0, 5));
  // a key's value from the list
  await writer.locator('[data-testid=key-link]', { hasText: `${prefix}k3` }).click();
  await writer
    .getByTestId('value-value')
    .filter({ hasText: `value of ${prefix}k3` })
    .waitFor({ timeout: PAGE_WAIT_MS });

  // Leases: granted through the page, then shown by id.
  await writer.getByTestId('grant-ttl').fill('30');
  await writer.getByTestId('lease-grant').click();
  await writer.getByTestId('lease-view').waitFor({ timeout: PAGE_WAIT_MS });
  const leaseId = (await writer.getByTestId('lease-id').inputValue()).trim();
  expect(leaseId).toMatch(/^\d+$/);
  expect(Number(await writer.locator('#lease-view-granted').textContent())).toBe(30);
  // ...and listed (GET /lease), with its granted TTL.
  const listed = writer.locator(`[data-testid=lease-row][data-id="${leaseId}"]`);
  await listed.waitFor({ timeout: PAGE_WAIT_MS });
  expect(await listed.locator('td').first().textContent()).toBe('30');
  // Locks: one taken through the API shows with its holder and fencing token.
  const lockName = `dash-${t.name}-${Math.random().toString(36).slice(2, 8)}`; // fresh if the scenario runs again
  const taken = await t.api('POST', `/lock/${lockName}?ttl=30`);
  expect(taken.status).toBe(200);
  const lock = (await taken.json()) as { key: string; lease: string; revision: number };
  await writer.getByTestId('turns-refresh').click();
  const row = writer.locator(`[data-testid=turn-row][data-kind=lock][data-name="${lockName}"]`);
  await row.waitFor({ timeout: PAGE_WAIT_MS });
  const cells = await row.locator('td, th').allTextContents();
  expect(cells.slice(0, 5)).toEqual(['lock', lockName, lock.key, String(lock.revision), lock.lease]);
  await writer.screenshot({ path: artifact(`${t.name}-3-dashboard.png`), fullPage: true });
  // The top of the page (cluster, keys, value), as the README shows it.
  await writer.screenshot({ path: artifact(`${t.name}-readme.png`), fullPage: true, clip: { x: 0, y: 0, width: 1100, height: 980 } });
  expect((await t.api('DELETE', `/lock/${lockName}/${lock.key.split('/').pop()!}`)).status).toBe(200);

  expect(problems).toEqual([]);
}
