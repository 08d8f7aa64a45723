// How every call reaches the cluster: the endpoint believed to lead, redirects, retries,
// deadlines and the exactly-once sessions. The rest of the client (kv.ts, watch.ts, leases.ts,
// turns.ts, cluster.ts) describes calls and reads answers; this file sends them.
//
// - Endpoints and the leader. Requests go to the endpoint believed to lead: a 307 from a follower
//   is followed by the client itself (redirect: 'manual', so the Authorization header goes along
//   to the leader's port, which fetch would drop across origins) and its Location's origin is
//   remembered as that leader's (X-Metcd-Leader names it); an endpoint that cannot be reached is
//   skipped for the next one. In a browser a manual redirect is opaque (no status, no Location):
//   the call is sent again for the browser to follow, which it does within the page's origin
//   (the edge's ?peer= redirects); one it cannot follow (another origin, as a Node follower's
//   redirect to the leader's port) is a `redirect_hidden` error, never taken for an answer.
// - Retries. Reads, idempotent calls and session-stamped writes are retried within the call's
//   deadline on an unreachable endpoint or a 503 (no leader yet, leadership moving). Key writes
//   and transactions carry X-Metcd-Client / X-Metcd-Seq (README, "Writes you can retry"): a
//   retry reuses its seq, so the state machine applies it once. Each session has one write in
//   flight; concurrent writes take sessions from a small pool. A `409 session_expired` on a
//   write's first send (never applied) restarts under a new client id at seq 1; on a retry it is
//   thrown (the write may have been applied). Other writes (lease grant, lock, token create, join)
//   are retried only when the answer says they were not applied.
// - Deadlines. `timeoutMs` (default 10 s) bounds each call with its retries; `signal` cancels it.

import { MetcdError, errorFromAnswer } from './errors.ts';
import type { FetchFunction, ClientOptions, CallOptions, Member } from './types.ts';
import { sleep, Deadline, newClientId, withCause, describeFetchError, queryString, parseJson, type Session } from './util.ts';

/** How a call may be sent again: reads and idempotent calls always, session-stamped writes with
 *  their seq, 'once' only when the answer says it was not taken. */
export type Retry = 'read' | 'session' | 'idempotent' | 'once';

export interface Call {
  method: string;
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: string;
  headers?: Record<string, string>;
  retry: Retry;
  /** Send to this base URL and no other (no leader routing, no rotation). */
  endpoint?: string;
  /** Return as soon as the headers are in; the deadline stops there. */
  stream?: boolean;
  /** Statuses that are answers, not errors (404 for a missing key). */
  ok?: readonly number[];
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

const LEADER = 'X-Metcd-Leader';
/** 503 codes that say the request was not taken: safe to send again whatever it is. */
const NOT_TAKEN = new Set(['no_leader', 'not_leader', 'busy', 'too_many_requests']);
/** 503 codes after which a taken write may or may not have been applied. */
const MAYBE_TAKEN = new Set(['unavailable', 'leadership_lost', 'timeout']);
const MAX_REDIRECTS = 5;
/** How long an endpoint that did not answer is not followed to by a redirect. */
const DOWN_MS = 2000;
const SESSION_POOL_MAX = 16;

export class Transport {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  private readonly token: string | undefined;
  private readonly fetchFn: FetchFunction;
  /** The base URL requests go to first. */
  private preferred: string;
  /** Endpoints that failed to answer, skipped while others remain, by when they failed. */
  private readonly down = new Map<string, number>();
  /** Leader ids to the base URL they were reached at (from 307 Locations and /members). */
  private readonly leaderBases = new Map<string, string>();
  private leaderId = '';
  private readonly sessions: Session[] = [];

  constructor(options: ClientOptions) {
    const list = typeof options.endpoints === 'string' ? options.endpoints.split(',') : options.endpoints;
    const endpoints = list.map((e) => e.trim().replace(/\/+$/, '')).filter((e) => e !== '');
    if (endpoints.length === 0) throw new MetcdError(0, 'bad_request', 'no endpoints given');
    for (const e of endpoints) {
      try {
        new URL(e);
      } catch {
        throw new MetcdError(0, 'bad_request', `not a URL: ${JSON.stringify(e)} (e.g. http://127.0.0.1:3379)`);
      }
    }
    this.endpoints = endpoints;
    this.preferred = endpoints[0]!;
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The leader last named by a peer ('' while unknown). */
  get leader(): string {
    return this.leaderId;
  }

  /** The base URL requests go to first (the leader's, once known). */
  get endpoint(): string {
    return this.preferred;
  }

  async json<T>(call: Call, opts?: CallOptions): Promise<T> {
    const a = await this.request(call, opts ?? {});
    return parseJson<T>(a.text);
  }

  /** A call whose whole answer is read within the deadline. */
  async request(call: Call, opts: CallOptions): Promise<Answer> {
    const deadline = new Deadline(opts.timeoutMs ?? this.timeoutMs, opts.signal);
    try {
      const res = await this.send(call, deadline);
      const text = await res.text().catch((err: unknown) => {
        throw deadline.signal.aborted ? deadline.reason : new MetcdError(0, 'unavailable', `reading the answer failed: ${String(err)}`);
      });
      if (res.status >= 400 && !(call.ok ?? []).includes(res.status)) throw errorFromAnswer(res.status, text, res.headers);
      return { status: res.status, headers: res.headers, text };
    } finally {
      deadline.dispose();
    }
  }

  /** A call whose body is the caller's to read (a stream); the deadline ends with the headers. */
  async open(call: Call, opts: CallOptions): Promise<Response> {
    const deadline = new Deadline(opts.timeoutMs ?? this.timeoutMs, opts.signal);
    let res: Response;
    try {
      res = await this.send(call, deadline);
    } catch (err) {
      deadline.dispose();
      throw err;
    }
    deadline.clear();
    if (res.status >= 400) {
      const text = await res.text().catch(() => '');
      deadline.dispose();
      throw errorFromAnswer(res.status, text, res.headers);
    }
    return res;
  }

  /** An endpoint that did not answer (or broke a stream): others are tried first for a while. */
  markDown(base: string = this.preferred): void {
    this.down.set(base, Date.now());
    if (this.leaderBases.get(this.leaderId) === base) this.leaderId = '';
  }

  /** Remembers which endpoint each member is reached at (from GET /members). */
  learnAddresses(members: readonly Member[]): void {
    for (const m of members) {
      try {
        const origin = new URL(m.address).origin;
        if (this.endpoints.some((e) => new URL(e).origin === origin)) this.leaderBases.set(m.id, origin);
      } catch {
        // the edge's addresses are not URLs
      }
    }
  }

  /** Sends `call` until it has an answer that is not a redirect or a retryable refusal. */
  private async send(call: Call, deadline: Deadline): Promise<Response> {
    const session = call.retry === 'session' ? this.takeSession() : undefined;
    let mayHaveApplied = false;
    let redirectTo: string | undefined;
    /** Let fetch follow redirects: set once a browser hid one from us (opaqueredirect). */
    let follow = false;
    let hops = 0;
    let attempt = 0;
    let lastError: MetcdError | undefined;
    try {
      for (;;) {
        if (deadline.signal.aborted)
          throw lastError !== undefined && deadline.reason.code === 'timeout' ? withCause(deadline.reason, lastError) : deadline.reason;
        const base = call.endpoint ?? this.pick();
        const url = redirectTo ?? base + call.path + queryString(call.query);
        redirectTo = undefined;
        const headers: Record<string, string> = { ...call.headers };
        if (this.token !== undefined) headers['Authorization'] = `Bearer ${this.token}`;
        if (call.body !== undefined) headers['Content-Type'] = call.method === 'PUT' ? 'application/octet-stream' : 'application/json';
        if (session !== undefined) {
          headers['X-Metcd-Client'] = session.id;
          headers['X-Metcd-Seq'] = String(session.seq);
        }
        const init: RequestInit = { method: call.method, headers, redirect: follow ? 'follow' : 'manual', signal: deadline.signal };
        if (call.body !== undefined) init.body = call.body;
        let res: Response;
        try {
          res = await this.fetchFn(url, init);
        } catch (err) {
          if (deadline.signal.aborted) throw deadline.reason;
          if (follow) throw hiddenRedirect(url, err);
          // No answer: the request may have reached the peer (a write may have applied).
          if (call.method !== 'GET') mayHaveApplied = true;
          hops = 0;
          lastError = new MetcdError(
            0,
            'unavailable',
            `${new URL(url).origin} did not answer: ${describeFetchError(err)}`,
            {},
            { cause: err },
          );
          if (call.endpoint === undefined) this.markDown(new URL(url).origin === new URL(base).origin ? base : new URL(url).origin);
          if (call.endpoint !== undefined || !retryable(call.retry, true)) throw lastError;
          await backoff(attempt++, deadline);
          continue;
        }
        this.noteLeader(res.headers);
        if (res.type === 'opaqueredirect') {
          // A browser hides where it was sent; the same call again (same session stamp, so
          // applied once) lets the browser follow it.
          if (follow) throw hiddenRedirect(url);
          follow = true;
          continue;
        }
        if (res.status === 307 || res.status === 308) {
          const location = res.headers.get('Location');
          await res.body?.cancel().catch(() => {});
          if (location === null || ++hops > MAX_REDIRECTS) {
            throw new MetcdError(res.status, 'bad_response', `too many redirects or a redirect without Location from ${url}`);
          }
          const target = new URL(location, url);
          if (new URL(url).protocol === 'https:' && target.protocol !== 'https:') {
            // The token goes along with the call: never in clear because a server said so.
            throw new MetcdError(
              res.status,
              'bad_response',
              `${new URL(url).origin} redirected to ${target.origin}, off TLS: not followed`,
            );
          }
          if (call.endpoint === undefined && this.recentlyDown(target.origin)) {
            // A follower still names a leader that just failed us (it has not noticed yet):
            // wait for an election rather than follow it there.
            hops = 0;
            await backoff(attempt++, deadline, 100);
            continue;
          }
          const leader = res.headers.get(LEADER);
          if (leader !== null && call.endpoint === undefined && target.origin !== new URL(url).origin) {
            this.leaderBases.set(leader, target.origin);
            this.preferred = target.origin;
          }
          redirectTo = target.href;
          continue;
        }
        if (res.status === 503 || res.status === 429) {
          const text = await res.text().catch(() => '');
          const err = errorFromAnswer(res.status, text, res.headers);
          const taken = MAYBE_TAKEN.has(err.code);
          if (call.path === '/health') return new Response(text, { status: res.status, headers: res.headers });
          if (taken && call.method !== 'GET') mayHaveApplied = true;
          if (!(NOT_TAKEN.has(err.code) || retryable(call.retry, taken))) throw err;
          lastError = err;
          hops = 0;
          const after = Number(res.headers.get('Retry-After') ?? '0') * 1000;
          await backoff(attempt++, deadline, Math.min(after, 1000));
          continue;
        }
        if (res.status === 409 && session !== undefined) {
          const text = await res.text().catch(() => '');
          const err = errorFromAnswer(res.status, text, res.headers);
          if (err.code === 'session_expired' && !mayHaveApplied) {
            // This seq was never applied: start a new session and send it again.
            session.id = newClientId();
            session.seq = 1;
            continue;
          }
          if (err.code === 'session_expired') session.seq = -1; // drop it
          return new Response(text, { status: res.status, headers: res.headers });
        }
        if (call.endpoint === undefined) this.down.delete(new URL(url).origin);
        return res;
      }
    } finally {
      if (session !== undefined) this.returnSession(session);
    }
  }

  /** The endpoint to send to: the preferred one unless it failed and another has not. */
  private pick(): string {
    if (!this.down.has(this.preferred)) return this.preferred;
    const candidates = [...new Set([...this.endpoints, ...this.leaderBases.values()])];
    const up = candidates.filter((e) => !this.down.has(e));
    if (up.length > 0) this.preferred = up[0]!;
    else {
      // Every endpoint failed: the one that failed longest ago gets another go.
      const oldest = candidates.reduce((a, b) => ((this.down.get(a) ?? 0) <= (this.down.get(b) ?? 0) ? a : b));
      this.down.delete(oldest);
      this.preferred = oldest;
    }
    return this.preferred;
  }

  private recentlyDown(base: string): boolean {
    const at = this.down.get(base);
    return at !== undefined && Date.now() - at < DOWN_MS;
  }

  /** X-Metcd-Leader names the leader: go there next when its URL is known. */
  private noteLeader(headers: Headers): void {
    const leader = headers.get(LEADER);
    if (leader === null || leader === this.leaderId) return;
    this.leaderId = leader;
    const base = this.leaderBases.get(leader);
    if (base !== undefined && !this.down.has(base)) this.preferred = base;
  }

  private takeSession(): Session {
    const s = this.sessions.pop();
    if (s !== undefined) {
      s.seq++;
      return s;
    }
    return { id: newClientId(), seq: 1 };
  }

  private returnSession(s: Session): void {
    if (s.seq > 0 && this.sessions.length < SESSION_POOL_MAX) this.sessions.push(s);
  }
}

function retryable(retry: Retry, maybeTaken: boolean): boolean {
  if (retry === 'read' || retry === 'session' || retry === 'idempotent') return true;
  return !maybeTaken;
}

async function backoff(attempt: number, deadline: Deadline, atLeast = 0): Promise<void> {
  const ms = Math.max(atLeast, Math.min(1000, 25 * 2 ** attempt)) * (0.5 + Math.random() / 2);
  try {
    await sleep(ms, deadline.signal);
  } catch {
    // the deadline passed: the loop throws its reason
  }
}

/** A redirect a browser would not follow for us (to another origin, which allows no CORS). */
function hiddenRedirect(url: string, cause?: unknown): MetcdError {
  return new MetcdError(
    0,
    'redirect_hidden',
    `${new URL(url).origin} redirected to a place this page cannot follow (another origin): give the client the leader's endpoint`,
    {},
    cause === undefined ? undefined : { cause },
  );
}
