// How the page reaches the cluster: the TypeScript client (worker/client/) on the origin that
// served the page, with the token the user entered (kept in sessionStorage: gone with the tab).
//
// Runtimes. On the edge every peer is a Durable Object behind the same Worker, reached with
// ?peer=<id>, and its redirects stay on this origin, so the page follows them. On Node every
// member is a process of its own at its own URL: the page reaches only the node that served it
// (there is no CORS, on purpose), so a follower's redirect to the leader cannot be followed
// from here; it is reported as such, with the leader's dashboard to go to, instead of being
// taken for an answer (a browser hides a manual redirect's status and Location).

import { createClient, MetcdError } from '../../client/index.ts';
import type { MetcdClient, PeerStatus } from '../../client/index.ts';

const TOKEN_STORAGE_KEY = 'metcd.dashboard.token';
/** Deadline of the page's calls: the dashboard would rather say "timed out" than hang. */
export const CALL_TIMEOUT_MS = 5000;

export type Runtime = 'edge' | 'node' | 'unknown';

export class Connection {
  /** 'edge' once the members' addresses turn out to be Durable Object names, 'node' for URLs. */
  runtime: Runtime = 'unknown';
  /** The last 401 said this cluster needs a (better) token; cleared by the next success. */
  tokenNeeded = false;
  tokenProblem = '';
  /** The leader's dashboard, when the leader is another Node process ('' otherwise). */
  leaderDashboard = '';
  client: MetcdClient;
  private token: string | undefined;
  private readonly peerClients = new Map<string, MetcdClient>();
  private readonly onChange: Array<() => void> = [];
  private readonly onAuth: Array<() => void> = [];

  constructor() {
    this.token = sessionStorage.getItem(TOKEN_STORAGE_KEY) ?? undefined;
    this.client = this.makeClient();
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  /** Uses `token` from now on ('' forgets it) and tells every view to start over. */
  setToken(token: string): void {
    if (token === '') {
      sessionStorage.removeItem(TOKEN_STORAGE_KEY);
      this.token = undefined;
    } else {
      sessionStorage.setItem(TOKEN_STORAGE_KEY, token);
      this.token = token;
    }
    this.client = this.makeClient();
    this.peerClients.clear();
    this.tokenNeeded = false;
    this.tokenProblem = '';
    for (const f of this.onAuth) f();
    for (const f of this.onChange) f();
  }

  /** Called when the token changes (views restart their watches and reloads). */
  changed(f: () => void): void {
    this.onChange.push(f);
  }

  /** Called when whether a token is needed changes. */
  authChanged(f: () => void): void {
    this.onAuth.push(f);
  }

  /** A client that asks peer `id` itself (edge: ?peer=<id>); the page's own peer on Node. */
  peer(id: string): MetcdClient {
    if (this.runtime !== 'edge') return this.client;
    let c = this.peerClients.get(id);
    if (c === undefined) {
      c = this.makeClient(id);
      this.peerClients.set(id, c);
    }
    return c;
  }

  /** What the serving peer's status says about where the page is. */
  noteStatus(status: PeerStatus): void {
    const addresses = status.members.map((m) => m.address);
    this.runtime = addresses.some((a) => /^https?:\/\//.test(a)) ? 'node' : 'edge';
    const leaderAddress = typeof status['leaderAddress'] === 'string' ? status['leaderAddress'] : '';
    this.leaderDashboard =
      this.runtime === 'node' && status.role !== 'leader' && /^https?:\/\//.test(leaderAddress)
        ? `${leaderAddress.replace(/\/+$/, '')}/ui`
        : '';
    this.succeeded();
  }

  /** A call went through: whatever token is in use is good enough. */
  succeeded(): void {
    if (!this.tokenNeeded) return;
    this.tokenNeeded = false;
    this.tokenProblem = '';
    for (const f of this.onAuth) f();
  }

  /** The message for a failed call; a 401 also switches the page to "token needed". */
  failed(err: unknown): string {
    if (err instanceof MetcdError && err.code === 'unauthenticated') {
      const first = !this.tokenNeeded;
      this.tokenNeeded = true;
      this.tokenProblem =
        this.token === undefined ? `this cluster needs a token (${err.message})` : `the token was refused (${err.message})`;
      if (first) for (const f of this.onAuth) f();
      return `token needed: ${this.tokenProblem}`;
    }
    if (err instanceof MetcdError && err.status > 0) return `${err.message} (${err.status} ${err.code})`;
    return err instanceof Error ? err.message : String(err);
  }

  private makeClient(peer?: string): MetcdClient {
    return createClient({
      endpoints: [location.origin],
      ...(this.token === undefined ? {} : { token: this.token }),
      timeoutMs: CALL_TIMEOUT_MS,
      fetch: (input, init) => this.fetch(peer === undefined ? input : withPeer(input, peer), init),
    });
  }

  /** fetch as the client needs it in a browser (see the top of this file). */
  private async fetch(input: string, init: RequestInit): Promise<Response> {
    const res = await fetch(input, { ...init, redirect: this.runtime === 'edge' ? 'follow' : 'manual' });
    if (res.type !== 'opaqueredirect') return res;
    const where = this.leaderDashboard === '' ? 'ask the leader' : `open the leader's dashboard at ${this.leaderDashboard}`;
    const error = {
      code: 'redirected',
      message: `this node is not the leader and redirects there, which a page cannot follow to another origin: ${where}`,
    };
    return new Response(JSON.stringify({ error }), { status: 421, headers: { 'Content-Type': 'application/json' } });
  }
}

/** The same URL addressed to edge peer `id`. */
function withPeer(input: string, id: string): string {
  const url = new URL(input);
  url.searchParams.set('peer', id);
  return url.href;
}
