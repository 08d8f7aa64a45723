// Shared helpers for the edge tests. The tests run in Node; the Worker and the peers run in real
// workerd, started by wrangler's test harness (Miniflare underneath) from the project's own
// wrangler.toml and built by wrangler's own bundler — the same config and build as `npm start`
// and `npm run deploy`. Peers are reached two ways: through the public Worker (server.fetch),
// like any client, and through their internal RPC surface (inspect/abort/deliver), which only
// the test (holding the PEERS binding) can call.

import { createTestHarness } from 'wrangler';
import type { PeerStatus } from '../../worker/peer/peer.ts';
import type { EdgeCosts } from '../../worker/edge/costs.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const COMPATIBILITY_DATE = '2026-11-01';

/** The production tick: elections after 1-2 s of silence, so a busy 2-core machine running the
 *  whole suite does not starve peers into spurious elections mid-test. */
export const TEST_TICK_MS = 100;
/** Bound on how long a condition may take to become true before the test fails. Generous on
 *  purpose: tests assert what happens, not how fast. */
export const WAIT_MS = 30_000;

/** The RPC surface of a peer object as the test sees it through the harness proxy. */
export interface PeerRpc {
  inspect(): Promise<string>;
  /** Resolves to how many unwritten derived-state batches the crash loses (storage.ts). */
  abort(reason?: string): Promise<number>;
  deliver(batch: Uint8Array): Promise<Uint8Array | null>;
  isolate(on: boolean): Promise<void>;
  holdTicks(ms: number): Promise<void>;
}

export interface Inspection {
  name: string;
  opened: boolean;
  status: PeerStatus | null;
  transport: {
    sentMessages: number;
    sentBatches: number;
    repliesReceived: number;
    repliesReturned: number;
    dropped: Record<string, number>;
  } | null;
  derived: { deferred: number; merged: number; waiting: number } | null;
  persistCheck: { checked: number; checkedByType: Record<string, number>; violations: number; examples: string[] } | null;
  badBatches: number;
  misaddressed: number;
  isolated: boolean;
  isolatedDrops: number;
  alarmAt: number | null;
  ticking: boolean;
  resting: boolean;
  requests: number;
  cost: EdgeCosts;
}

/** The peers' cache in the tests: a few small records. */
export const TEST_CACHE_BYTES = 4096;

export interface ClusterOptions {
  vars?: Record<string, string>;
  /** Headers every request of the harness carries unless the request sets them (a root token). */
  headers?: Record<string, string>;
}

export type EdgeCluster = Awaited<ReturnType<typeof startCluster>>;

export async function startCluster(opts: ClusterOptions = {}) {
  // Open mode unless a test says otherwise (as npm start); test/edge/auth.test.ts runs the
  // deployment's default. A cache of a few records (CACHE_BYTES): nearly every read of the
  // tests goes to the peers' SQLite, so every path runs cold as well as hot.
  const vars: Record<string, string> = {
    TICK_MS: String(TEST_TICK_MS),
    CHECK_PERSIST: '1',
    METCD_AUTH: 'open',
    CACHE_BYTES: String(TEST_CACHE_BYTES),
    ...opts.vars,
  };
  const cluster = vars['CLUSTER_NAME'] ?? 'metcd';
  const server = createTestHarness({ root: ROOT, workers: [{ configPath: './wrangler.toml', vars }] });
  await server.listen();
  type Env = { PEERS: { idFromName(name: string): unknown; get(id: unknown): PeerRpc } };
  let env = (await server.getWorker().getEnv()) as Env;

  /** Reloads the Worker with changed vars (storage is kept), as a redeploy would. */
  async function reconfigure(changed: Record<string, string>): Promise<void> {
    await server.update({ root: ROOT, workers: [{ configPath: './wrangler.toml', vars: { ...vars, ...changed } }] });
    env = (await server.getWorker().getEnv()) as Env;
  }

  /** A request through the public Worker; redirects are returned, not followed. */
  async function request(path: string, init: RequestInit = {}): Promise<Response> {
    // The harness speaks undici's fetch types; the tests use the global ones (same shapes).
    type DispatchInit = Parameters<typeof server.fetch>[1];
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(opts.headers ?? {})) if (!headers.has(name)) headers.set(name, value);
    return (await server.fetch(path, { redirect: 'manual', ...init, headers } as DispatchInit)) as unknown as Response;
  }

  /** A request that follows 307s like `curl -L` (at most 5). */
  async function follow(path: string, init: RequestInit = {}): Promise<Response> {
    let url = path;
    for (let hops = 0; hops < 5; hops++) {
      const res = await request(url, init);
      if (res.status !== 307) return res;
      const location = res.headers.get('Location');
      if (location === null) throw new Error(`307 without Location for ${url}`);
      await res.body?.cancel();
      const u = new URL(location);
      url = u.pathname + u.search;
    }
    throw new Error(`too many redirects for ${path}`);
  }

  function peer(id: string): PeerRpc {
    return env.PEERS.get(env.PEERS.idFromName(`${cluster}/${id}`));
  }

  async function inspect(id: string): Promise<Inspection> {
    return JSON.parse(await peer(id).inspect()) as Inspection;
  }

  async function status(id: string): Promise<PeerStatus> {
    const res = await request(`/status?peer=${id}`);
    if (res.status !== 200) throw new Error(`/status?peer=${id} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as PeerStatus;
  }

  /** The leader all of `ids` agree on (polls until they do). */
  async function leader(ids: string[] = ['p1', 'p2', 'p3']): Promise<string> {
    let seen = '';
    await waitFor(
      `a leader agreed on by ${ids.join(', ')}`,
      async () => {
        const views = await Promise.all(ids.map((id) => status(id).catch(() => null)));
        const leaders = new Set(views.map((v) => v?.leader ?? ''));
        seen = [...leaders].join('|');
        const [only] = leaders;
        return leaders.size === 1 && only !== '' && only !== undefined && views.some((v) => v?.role === 'leader' && v.id === only);
      },
      () => `leaders seen: ${seen}`,
    );
    return seen;
  }

  return { server, cluster, request, follow, peer, inspect, status, leader, reconfigure, close: () => server.close() };
}

/** Polls `check` until it is true; fails with `what` (and `detail()`) after WAIT_MS. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, detail: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${detail()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Puts through the public Worker, following redirects; returns the response body as JSON. */
export async function putRaw(c: EdgeCluster, key: string, value: string, headers: Record<string, string> = {}): Promise<Response> {
  return c.follow(`/${encodeURIComponent(key)}`, { method: 'PUT', body: value, headers });
}
