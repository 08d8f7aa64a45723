// GET /ui through the shared router: the dashboard's files, open to anyone but only the files of
// the allowlist, with the page's security headers, and every other spelling of a path judged as
// the route it resolves to (dot segments and encodings never reach a file or skip a check). The
// files are the real build (worker/ui/build.ts, run by the suite's global setup) read by the Node
// host's reader.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createAuthorizer, digestOf } from '../../worker/api/router.ts';
import { UI_ASSETS, UI_CSP, type UiAssetName } from '../../worker/api/ui-route.ts';
import { uiAssetReader } from '../../node-runtime/ui-assets.ts';
import { UI_DIST_DIR } from '../../worker/ui/build.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import { routersFor } from './routers.ts';

const ROOT = 'root-token-for-the-ui-tests';
const emptyDir = mkdtempSync(path.join(tmpdir(), 'metcd-ui-empty-'));

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});
afterAll(() => rmSync(emptyDir, { recursive: true, force: true }));

type Mode = 'tokens' | 'open' | 'unbuilt';

/**
 * The Node host's reader (uiAssetReader), its files read before the cluster is driven: the
 * in-process cluster runs on fake ticks, and a disk read still under way after `drive`'s ticks
 * ran out would fail the call on a busy machine, which says nothing about the route.
 */
async function preloadedReader(dir: string): Promise<(name: UiAssetName) => Promise<Uint8Array | null>> {
  const read = uiAssetReader(dir);
  const files = new Map<UiAssetName, Uint8Array | null>();
  for (const name of Object.keys(UI_ASSETS) as UiAssetName[]) files.set(name, await read(name));
  return async (name) => {
    if (!files.has(name)) throw new Error(`not a dashboard file: ${JSON.stringify(name)}`);
    return files.get(name)!;
  };
}

async function setup(mode: Mode) {
  const c = await TestCluster.start();
  cluster = c;
  const uiAsset = await preloadedReader(mode === 'unbuilt' ? emptyDir : UI_DIST_DIR);
  const router = routersFor(c, (id) => ({
    uiAsset,
    ...(mode === 'tokens'
      ? { authorize: createAuthorizer({ mode: 'tokens', rootDigest: digestOf(ROOT), now: () => Date.now() }, () => c.peer(id).tokens) }
      : {}),
  }));
  const leader = (await c.waitLeader()).id;
  const call = async (pathAndQuery: string, init: RequestInit = {}): Promise<Response> => {
    const res = await c.drive(router(leader).fetch(new Request(`${addressOf(leader)}${pathAndQuery}`, init)));
    expect(res.status, `${init.method ?? 'GET'} ${pathAndQuery}`).not.toBe(500);
    return res;
  };
  return { call };
}

async function errorCode(res: Response): Promise<string> {
  expect(res.headers.get('Content-Type')).toMatch(/^application\/json/);
  return ((await res.json()) as { error: { code: string } }).error.code;
}

function expectPageHeaders(res: Response): void {
  expect(res.headers.get('Content-Security-Policy')).toBe(UI_CSP);
  expect(UI_CSP).toContain("default-src 'self'");
  expect(UI_CSP).toContain("script-src 'self'");
  expect(UI_CSP).not.toContain('unsafe-inline');
  expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
  expect(res.headers.get('Referrer-Policy')).toBe('no-referrer');
  expect(res.headers.get('X-Frame-Options')).toBe('DENY');
}

describe('GET /ui', () => {
  it('serves the page and its files to anyone, with auth on, under the security headers', async () => {
    const { call } = await setup('tokens');
    for (const p of ['/ui', '/ui/', '/ui/index.html']) {
      const res = await call(p);
      expect(res.status, p).toBe(200);
      expect(res.headers.get('Content-Type')).toBe('text/html; charset=utf-8');
      expectPageHeaders(res);
      const html = await res.text();
      expect(html).toContain('<script type="module" src="/ui/app.js"></script>');
    }
    for (const [name, type] of Object.entries(UI_ASSETS)) {
      const res = await call(`/ui/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('Content-Type')).toBe(type);
      expectPageHeaders(res);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    const head = await call('/ui', { method: 'HEAD' });
    expect(head.status).toBe(200);
    // A peer's state is not for an anonymous caller, even on an open route.
    expect(head.headers.get('X-Metcd-Leader')).toBeNull();
    expect(head.headers.get('X-Metcd-Revision')).toBeNull();
  });

  it('the page has no inline script, no inline handler and no inline style (the CSP would refuse them)', async () => {
    const { call } = await setup('open');
    const html = await (await call('/ui')).text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    for (const [, attrs, inner] of scripts) {
      expect(attrs).toMatch(/src="\/ui\/app\.js"/);
      expect(inner!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('every other spelling is the route it resolves to: never a file, never a skipped check', async () => {
    const { call } = await setup('tokens');
    const cases: Array<[string, number, string]> = [
      // dot segments are resolved before routing: these ARE /status, which needs a credential
      ['/ui/../status', 401, 'unauthenticated'],
      ['/ui/%2e%2e/status', 401, 'unauthenticated'],
      ['/ui/%2E%2E/status', 401, 'unauthenticated'],
      ['/ui/./../status', 401, 'unauthenticated'],
      // keys, not the dashboard (paths are case-sensitive; an empty first segment is a key)
      ['//ui', 401, 'unauthenticated'],
      ['/UI', 401, 'unauthenticated'],
      ['/Ui/app.js', 401, 'unauthenticated'],
      // encoded slashes and dots stay inside the one asset name: not in the allowlist
      ['/ui/..%2fstatus', 404, 'not_found'],
      ['/ui/..%2F..%2Fpackage.json', 404, 'not_found'],
      ['/ui/%2e%2e%2f%2e%2e%2fpackage.json', 404, 'not_found'],
      ['/ui/app.js%2f', 404, 'not_found'],
      ['/ui/app.js%00', 404, 'not_found'],
      ['/ui/%2fetc%2fpasswd', 404, 'not_found'],
      ['/ui/nope.js', 404, 'not_found'],
      ['/ui/constructor', 404, 'not_found'],
      ['/ui/__proto__', 404, 'not_found'],
      ['/ui/toString', 404, 'not_found'],
      ['/ui/build.ts', 404, 'not_found'],
      ['/ui/%ZZ', 400, 'bad_request'],
      ['/ui/app.js?x=1', 400, 'bad_request'],
      // deeper paths under the reserved segment need a credential, as everywhere
      ['/ui/src/main.ts', 401, 'unauthenticated'],
      ['/ui/dist/app.js', 401, 'unauthenticated'],
    ];
    for (const [p, status, code] of cases) {
      const res = await call(p);
      expect(res.status, p).toBe(status);
      expect(await errorCode(res), p).toBe(code);
      expect(res.headers.get('Content-Security-Policy'), p).toBeNull();
    }
    // Only GET (and HEAD): another method is refused like any route's, after authentication.
    expect((await call('/ui', { method: 'POST', body: 'x' })).status).toBe(401);
    const put = await call('/ui/app.js', { method: 'PUT', body: 'x', headers: { Authorization: `Bearer ${ROOT}` } });
    expect(put.status).toBe(405);
    expect(put.headers.get('Allow')).toBe('GET');
  });

  it('in open mode the same spellings reach keys and routes, never a file', async () => {
    const { call } = await setup('open');
    expect(await errorCode(await call('//ui'))).toBe('key_not_found');
    expect(await errorCode(await call('/UI'))).toBe('key_not_found');
    expect((await call('/ui/../status')).headers.get('Content-Type')).toMatch(/^application\/json/);
    expect(await errorCode(await call('/ui/src/main.ts'))).toBe('not_found');
    // A key named "ui" is reached through /key/ui, as any reserved name.
    expect((await call('/key/ui', { method: 'PUT', body: 'v' })).status).toBe(204);
    expect(await (await call('/key/ui')).json()).toEqual({ ui: 'v' });
    expect((await call('/ui')).headers.get('Content-Type')).toBe('text/html; charset=utf-8');
  });

  it('answers 404 with how to build it when the host has no build', async () => {
    const { call } = await setup('unbuilt');
    const res = await call('/ui');
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('npm run build:ui');
  });
});

describe("the Node host's reader", () => {
  it('reads only allowlisted names from the built directory', async () => {
    const read = uiAssetReader();
    expect((await read('app.js'))!.byteLength).toBeGreaterThan(1000);
    await expect(read('../../package.json' as UiAssetName)).rejects.toThrow(/not a dashboard file/);
    await expect(read('constructor' as UiAssetName)).rejects.toThrow(/not a dashboard file/);
    expect(await uiAssetReader(emptyDir)('index.html')).toBeNull();
  });
});
