// `npm run deploy:check` (wrangler deploy --dry-run) in the test suite, so CI (which runs only
// `npm install && npm test`) checks the deployable bundle on every change: it builds, declares
// the peers' Durable Object binding, and the built bundle itself boots and serves in workerd.

import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestHarness } from 'wrangler';
import { ROOT, TEST_TICK_MS } from './harness.ts';

const OUT_DIR = join(ROOT, '.wrangler/deploy-check');
/** Workers' compressed script limit on the free plan; the bundle must stay well within it. */
const BUNDLE_BYTES_MAX = 3 * 1024 * 1024;

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('deployable bundle', () => {
  it('npm run deploy:check succeeds and the built bundle boots and serves the quick-start flow', async () => {
    const { code, output } = await run('npm', ['run', 'deploy:check']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/env\.PEERS \(PeerObject\)\s+Durable Object/);
    expect(output).toMatch(/--dry-run: exiting now/);
    const bundle = join(OUT_DIR, 'index.js');
    expect(existsSync(bundle)).toBe(true);
    expect(statSync(bundle).size).toBeLessThan(BUNDLE_BYTES_MAX);

    // The very files a deploy would upload, run by workerd (no rebuild), with the vars of
    // wrangler.toml: no open mode and, until the secret is set, no root token.
    const worker = (vars: Record<string, string>) => ({ configPath: './wrangler.toml', prebuiltWorkerDir: OUT_DIR, vars });
    const server = createTestHarness({ root: ROOT, workers: [worker({ TICK_MS: String(TEST_TICK_MS) })] });
    try {
      await server.listen();
      let res = await server.fetch('/hello', { method: 'PUT', body: 'world' });
      expect(res.status).toBe(401);
      expect(await res.text()).toContain('wrangler secret put METCD_ROOT_TOKEN');
      // After `wrangler secret put METCD_ROOT_TOKEN`: the README's deploy walk-through.
      const root = { authorization: 'Bearer a-root-token-from-wrangler-secret' };
      await server.update({
        root: ROOT,
        workers: [worker({ TICK_MS: String(TEST_TICK_MS), METCD_ROOT_TOKEN: root.authorization.slice(7) })],
      });
      res = await server.fetch('/hello', { method: 'PUT', body: 'world', headers: root });
      expect(res.status).toBe(204);
      res = await server.fetch('/auth/tokens', {
        method: 'POST',
        headers: root,
        body: '{"name":"app","rules":[{"prefix":"hello","access":"read"}]}',
      });
      expect(res.status).toBe(201);
      const { token } = (await res.json()) as { token: string };
      res = await server.fetch('/hello', { headers: { authorization: `Bearer ${token}` } });
      expect(await res.text()).toBe('world');
    } finally {
      await server.close();
    }
  });
});
