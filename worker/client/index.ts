// metcd's TypeScript client (`metcd/client`): the API of README.md over fetch, for browsers,
// Workers and Node alike (only fetch, AbortSignal, TextDecoder and ReadableStream: no Node API).
//
// - Endpoints and the leader. Requests go to the endpoint believed to lead: a 307 from a follower
//   is followed by the client itself (redirect: 'manual', so the Authorization header goes along
//   to the leader's port, which fetch would drop across origins) and its Location's origin is
//   remembered as that leader's (X-Metcd-Leader names it); an endpoint that cannot be reached is
//   skipped for the next one.
// - Retries. Reads, idempotent calls and session-stamped writes are retried within the call's
//   deadline on an unreachable endpoint or a 503 (no leader yet, leadership moving). Key writes
//   and transactions carry X-Metcd-Client / X-Metcd-Seq (README, "Writes you can retry"): a
//   retry reuses its seq, so the state machine applies it once. Each session has one write in
//   flight; concurrent writes take sessions from a small pool. A `409 session_expired` on a
//   write's first send (never applied) restarts under a new client id at seq 1; on a retry it is
//   thrown (the write may have been applied). Other writes (lease grant, lock, token create, join)
//   are retried only when the answer says they were not applied.
// - Deadlines. `timeoutMs` (default 10 s) bounds each call with its retries; `signal` cancels it.
//   A watch's deadline covers only its connecting.
// - Errors: every failure is a MetcdError (errors.ts).

import { MetcdError, errorFromAnswer } from './errors.ts';
import { sseFrames } from './sse.ts';

export { MetcdError } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';

import type {
  FetchFunction,
  ClientOptions,
  CallOptions,
  KeyValue,
  GetOptions,
  RangeOptions,
  RangeResult,
  PutOptions,
  Txn,
  TxnResult,
  WatchOptions,
  WatchEvent,
  WatchResponse,
  Watch,
  Lease,
  LeaseInfo,
  KeepAliveHandle,
  LockOptions,
  LockHandle,
  CampaignOptions,
  Leadership,
  TokenSpec,
  TokenInfo,
  Member,
  Members,
  PeerStatus,
  EndpointOptions,
} from './types.ts';
import {
  sleep,
  Deadline,
  newClientId,
  withCause,
  describeFetchError,
  encodePath,
  queryString,
  parseJson,
  waitMs,
  ignoreNotFound,
  lostPromise,
  type Session,
} from './util.ts';
export type * from './types.ts';

type Retry = 'read' | 'session' | 'idempotent' | 'once';

interface Call {
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

interface Answer {
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

export class MetcdClient {
  readonly endpoints: readonly string[];
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchFn: FetchFunction;
  /** The base URL requests go to first. */
  private preferred: string;
  /** Endpoints that failed to answer, skipped while others remain, by when they failed. */
  private readonly down = new Map<string, number>();
  /** Leader ids to the base URL they were reached at (from 307 Locations and /members). */
  private readonly leaderBases = new Map<string, string>();
  private leaderId = '';
  private readonly sessions: Session[] = [];

  readonly lease = {
    grant: (ttl: number, opts?: CallOptions): Promise<Lease> => this.leaseGrant(ttl, opts),
    keepAlive: (id: string, opts?: CallOptions): Promise<Lease> => this.leaseKeepAlive(id, opts),
    revoke: (id: string, opts?: CallOptions): Promise<{ deleted: number; revision: number }> => this.leaseRevoke(id, opts),
    timeToLive: (id: string, opts?: CallOptions): Promise<LeaseInfo> => this.leaseTimeToLive(id, opts),
    /** Keeps a lease alive every ttl/3 until stopped or lost (404: it expired or was revoked). */
    keepAliveLoop: (lease: Lease): KeepAliveHandle => this.keepAliveLoop(lease),
  };

  readonly tokens = {
    create: (spec: TokenSpec, opts?: CallOptions): Promise<TokenInfo & { token: string; revision: number }> =>
      this.json({ method: 'POST', path: '/auth/tokens', body: JSON.stringify(spec), retry: 'once' }, opts),
    list: async (opts?: CallOptions): Promise<TokenInfo[]> =>
      (await this.json<{ tokens: TokenInfo[] }>({ method: 'GET', path: '/auth/tokens', retry: 'read' }, opts)).tokens,
    revoke: (id: string, opts?: CallOptions): Promise<{ revoked: string; revision: number }> =>
      this.json({ method: 'DELETE', path: `/auth/tokens/${encodeURIComponent(id)}`, retry: 'idempotent' }, opts),
  };

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

  // ---- keys ----

  /** The key, or null when it does not exist (at `revision`, when given). */
  async get(key: string, opts: GetOptions = {}): Promise<KeyValue | null> {
    const a = await this.request(
      { method: 'GET', path: `/key/${encodePath(key)}`, query: { level: opts.level, revision: opts.revision }, retry: 'read', ok: [404] },
      opts,
    );
    if (a.status === 404) {
      const err = errorFromAnswer(a.status, a.text, a.headers);
      if (err.code === 'key_not_found') return null;
      throw err;
    }
    const pairs = parseJson<Record<string, string>>(a.text);
    return {
      key,
      value: pairs[key] ?? '',
      createRevision: Number(a.headers.get('X-Metcd-Create-Revision') ?? 0),
      modRevision: Number(a.headers.get('X-Metcd-Mod-Revision') ?? 0),
      version: Number(a.headers.get('X-Metcd-Version') ?? 0),
    };
  }

  /** One page of a sorted range (a prefix, or [start, end)). */
  async range(opts: RangeOptions = {}): Promise<RangeResult> {
    const a = await this.request(
      {
        method: 'GET',
        path: '/key',
        query: { prefix: opts.prefix, start: opts.start, end: opts.end, limit: opts.limit, level: opts.level, revision: opts.revision },
        retry: 'read',
      },
      opts,
    );
    const pairs = parseJson<Record<string, string>>(a.text);
    const next = a.headers.get('X-Metcd-Next-Start');
    return {
      kvs: Object.entries(pairs).map(([key, value]) => ({ key, value })),
      more: a.headers.get('X-Metcd-More') === 'true',
      nextStart: next === null ? null : decodeURIComponent(next),
      revision: Number(a.headers.get('X-Metcd-Revision') ?? 0),
    };
  }

  /** Writes the key (exactly once, however often it is retried); answers the new revision. */
  async put(key: string, value: string, opts: PutOptions = {}): Promise<{ revision: number }> {
    const a = await this.request(
      {
        method: 'PUT',
        path: `/key/${encodePath(key)}`,
        query: { lease: opts.lease, ifRevision: opts.ifRevision },
        body: value,
        retry: 'session',
      },
      opts,
    );
    return { revision: Number(a.headers.get('X-Metcd-Revision') ?? 0) };
  }

  /** Deletes the key (or, with `prefix`, every key under it, in one revision). */
  async delete(key: string, opts: CallOptions & { prefix?: boolean } = {}): Promise<{ deleted: number; revision: number }> {
    if (opts.prefix === true) {
      const r = await this.txn({ success: [{ delete: { prefix: key } }] }, opts);
      const first = r.results[0] as { delete?: { deleted: number } } | undefined;
      return { deleted: first?.delete?.deleted ?? 0, revision: r.revision };
    }
    return this.json({ method: 'DELETE', path: `/key/${encodePath(key)}`, retry: 'session' }, opts);
  }

  /** An etcd transaction in one revision (README, Transactions), exactly once. */
  txn(t: Txn, opts?: CallOptions): Promise<TxnResult> {
    return this.json({ method: 'POST', path: '/txn', body: JSON.stringify(t), retry: 'session' }, opts);
  }

  /** Discards the history below `revision` (admin). */
  compact(revision: number, opts?: CallOptions): Promise<{ revision: number; compactRevision: number }> {
    return this.json({ method: 'POST', path: '/compact', body: JSON.stringify({ revision }), retry: 'idempotent' }, opts);
  }

  // ---- watch ----

  /**
   * Every change of a key, a prefix or a range, one frame per revision, as an async iterator.
   * A broken stream (a peer gone, a connection cut, a peer's `overflow` or `closed`) is resumed on
   * any endpoint from the revision after the last one delivered (Last-Event-ID), so nothing is
   * skipped and nothing repeated. The iterator throws MetcdError `compacted` (details
   * `compactRevision`) when the history it needs is gone, and ends on close() or the signal.
   */
  watch(opts: WatchOptions): Watch {
    const local = new AbortController();
    const outer = opts.signal;
    const onOuter = () => local.abort(outer?.reason);
    if (outer?.aborted) onOuter();
    outer?.addEventListener('abort', onOuter, { once: true });
    const state = { reconnects: 0 };
    let path = '/watch';
    const query: Record<string, string | number | undefined> = { progressMs: opts.progressMs, level: opts.level };
    if (opts.key !== undefined) {
      path = `/watch/${encodePath(opts.key)}`;
      if (opts.prefix === true) query['prefix'] = '1';
    } else if (typeof opts.prefix === 'string') query['prefix'] = opts.prefix;
    else if (opts.start !== undefined || opts.end !== undefined) {
      query['start'] = opts.start ?? '';
      query['end'] = opts.end ?? '';
    } else throw new MetcdError(0, 'bad_request', 'watch: give key, prefix, or start/end');

    const iterable = this.watchLoop(path, query, opts, local, state, () => outer?.removeEventListener('abort', onOuter));
    return {
      [Symbol.asyncIterator]: () => iterable,
      close: () => local.abort(),
      get reconnects() {
        return state.reconnects;
      },
    };
  }

  private async *watchLoop(
    path: string,
    query: Record<string, string | number | undefined>,
    opts: WatchOptions,
    local: AbortController,
    state: { reconnects: number },
    unlink: () => void,
  ): AsyncGenerator<WatchResponse> {
    let next = opts.fromRevision;
    let backoff = 50;
    try {
      for (;;) {
        if (local.signal.aborted) return;
        let body: ReadableStream<Uint8Array>;
        try {
          const res = await this.open(
            {
              method: 'GET',
              path,
              query,
              retry: 'read',
              stream: true,
              headers: next === undefined ? {} : { 'Last-Event-ID': String(next - 1) },
            },
            { signal: local.signal, timeoutMs: opts.timeoutMs },
          );
          if (next === undefined) {
            const from = res.headers.get('X-Metcd-Watch-From');
            next = from !== null ? Number(from) : Number(res.headers.get('X-Metcd-Revision') ?? 0) + 1;
          }
          body = res.body!;
        } catch (err) {
          if (local.signal.aborted) return;
          // Unreachable everywhere within the deadline: try again while the caller wants it.
          if (err instanceof MetcdError && (err.code === 'timeout' || err.status === 0 || err.status === 503)) {
            await sleep(backoff, local.signal).catch(() => {});
            backoff = Math.min(backoff * 2, 1000);
            state.reconnects++;
            continue;
          }
          throw err;
        }
        backoff = 50;
        let broken = false;
        try {
          for await (const f of sseFrames(body)) {
            if (f.event === 'revision') {
              const revision = Number(f.id);
              if (next !== undefined && revision < next) continue; // already delivered
              next = revision + 1;
              yield { revision, events: parseJson<WatchEvent[]>(f.data) };
            } else if (f.event === 'progress') {
              const revision = Number(f.id);
              if (next === undefined || revision >= next) next = revision + 1;
              if (opts.progress === true) yield { revision, events: [] };
            } else if (f.event === 'compacted') {
              const data = parseJson<Record<string, unknown>>(f.data);
              throw new MetcdError(410, 'compacted', `the watch's start revision ${next} was compacted`, data);
            } else if (f.event === 'overflow' || f.event === 'closed') {
              const data = parseJson<{ resumeRevision?: number }>(f.data);
              if (typeof data.resumeRevision === 'number') next = data.resumeRevision;
              break;
            }
          }
        } catch (err) {
          if (local.signal.aborted) return;
          if (err instanceof MetcdError) throw err;
          broken = true; // the connection broke mid-stream: resume below, on another endpoint
        }
        if (local.signal.aborted) return;
        if (broken) this.markDown(this.preferred);
        state.reconnects++;
      }
    } finally {
      unlink();
      local.abort();
    }
  }

  // ---- leases ----

  private leaseGrant(ttl: number, opts?: CallOptions): Promise<Lease> {
    return this.json({ method: 'POST', path: '/lease', body: JSON.stringify({ ttl }), retry: 'once' }, opts);
  }

  private leaseKeepAlive(id: string, opts?: CallOptions): Promise<Lease> {
    return this.json({ method: 'POST', path: `/lease/${encodeURIComponent(id)}/keepalive`, retry: 'idempotent' }, opts);
  }

  private leaseRevoke(id: string, opts?: CallOptions): Promise<{ deleted: number; revision: number }> {
    return this.json({ method: 'DELETE', path: `/lease/${encodeURIComponent(id)}`, retry: 'idempotent' }, opts);
  }

  private leaseTimeToLive(id: string, opts?: CallOptions): Promise<LeaseInfo> {
    return this.json({ method: 'GET', path: `/lease/${encodeURIComponent(id)}`, retry: 'read' }, opts);
  }

  private keepAliveLoop(lease: Lease): KeepAliveHandle {
    const stop = new AbortController();
    const everyMs = Math.max(500, (lease.ttl * 1000) / 3);
    const done = (async (): Promise<MetcdError | undefined> => {
      for (;;) {
        try {
          await sleep(everyMs, stop.signal);
        } catch {
          return undefined;
        }
        try {
          // Each keep-alive may take until the lease's end; a transient failure is tried again next round.
          await this.leaseKeepAlive(lease.id, { signal: stop.signal, timeoutMs: everyMs * 2 });
        } catch (err) {
          if (stop.signal.aborted) return undefined;
          const e = err instanceof MetcdError ? err : new MetcdError(0, 'unavailable', String(err));
          if (e.code === 'lease_not_found') return e;
        }
      }
    })();
    return { stop: () => stop.abort(), done };
  }

  // ---- locks and elections ----

  /** Takes the lock `name` (blocking up to `wait`), keeps its lease alive, and answers the
   *  holder's key and fencing token. release() deletes the key and revokes a lease it granted. */
  async lock(name: string, opts: LockOptions = {}): Promise<LockHandle> {
    const held = await this.json<{ key: string; lease: string; revision: number }>(
      {
        method: 'POST',
        path: `/lock/${encodeURIComponent(name)}`,
        query: { ttl: opts.lease === undefined ? opts.ttl : undefined, lease: opts.lease, wait: opts.wait },
        retry: 'once',
      },
      { signal: opts.signal, timeoutMs: opts.timeoutMs ?? Math.max(this.timeoutMs, waitMs(opts.wait) + 5000) },
    );
    const own = opts.lease === undefined;
    const loop = own ? this.keepAliveLoop({ id: held.lease, ttl: opts.ttl ?? 60 }) : undefined;
    const lost = lostPromise(loop);
    return {
      ...held,
      lost,
      release: async (callOpts?: CallOptions) => {
        loop?.stop();
        const id = held.key.slice(held.key.lastIndexOf('/') + 1);
        await this.json(
          { method: 'DELETE', path: `/lock/${encodeURIComponent(name)}/${encodeURIComponent(id)}`, retry: 'idempotent' },
          callOpts,
        );
        if (own) await this.leaseRevoke(held.lease, callOpts).catch(ignoreNotFound);
      },
    };
  }

  /** Campaigns in election `name` with `value` until elected (blocking up to `wait`); answers the
   *  leader's key and fencing token, with proclaim() and resign(). */
  async campaign(name: string, value: string, opts: CampaignOptions = {}): Promise<Leadership> {
    const body: Record<string, unknown> = { value };
    if (opts.lease !== undefined) body['lease'] = opts.lease;
    else if (opts.ttl !== undefined) body['ttl'] = opts.ttl;
    const held = await this.json<{ key: string; lease: string; revision: number }>(
      {
        method: 'POST',
        path: `/election/${encodeURIComponent(name)}/campaign`,
        query: { wait: opts.wait },
        body: JSON.stringify(body),
        retry: 'once',
      },
      { signal: opts.signal, timeoutMs: opts.timeoutMs ?? Math.max(this.timeoutMs, waitMs(opts.wait) + 5000) },
    );
    const own = opts.lease === undefined;
    const loop = own ? this.keepAliveLoop({ id: held.lease, ttl: opts.ttl ?? 60 }) : undefined;
    const base = `/election/${encodeURIComponent(name)}`;
    return {
      ...held,
      lost: lostPromise(loop),
      proclaim: async (v: string, callOpts?: CallOptions) =>
        (
          await this.json<{ revision: number }>(
            { method: 'POST', path: `${base}/proclaim`, body: JSON.stringify({ key: held.key, value: v }), retry: 'idempotent' },
            callOpts,
          )
        ).revision,
      resign: async (callOpts?: CallOptions) => {
        loop?.stop();
        await this.json({ method: 'POST', path: `${base}/resign`, body: JSON.stringify({ key: held.key }), retry: 'idempotent' }, callOpts);
        if (own) await this.leaseRevoke(held.lease, callOpts).catch(ignoreNotFound);
      },
    };
  }

  /** The election's leader now, or null when there is none. */
  async electionLeader(name: string, opts?: CallOptions): Promise<{ key: string; value: string; revision: number; lease: string } | null> {
    try {
      return await this.json({ method: 'GET', path: `/election/${encodeURIComponent(name)}`, retry: 'read' }, opts);
    } catch (err) {
      if (err instanceof MetcdError && err.status === 404) return null;
      throw err;
    }
  }

  // ---- cluster ----

  async members(opts?: CallOptions): Promise<Members> {
    const m = await this.json<Members>({ method: 'GET', path: '/members', retry: 'read' }, opts);
    this.learnAddresses(m.members);
    return m;
  }

  /** Adds a member (`POST /join`); on Node `address` is the new node's URL. */
  addMember(member: { id: string; address?: string; learner?: boolean }, opts?: CallOptions): Promise<Members> {
    return this.json({ method: 'POST', path: '/join', body: JSON.stringify(member), retry: 'once' }, opts);
  }

  removeMember(id: string, opts?: CallOptions): Promise<Members> {
    return this.json({ method: 'DELETE', path: `/members/${encodeURIComponent(id)}`, retry: 'once' }, opts);
  }

  promoteMember(id: string, opts?: CallOptions): Promise<Members> {
    return this.json({ method: 'POST', path: `/members/${encodeURIComponent(id)}/promote`, retry: 'once' }, opts);
  }

  /** Hands leadership to `id`; answers the new leader. */
  moveLeader(id: string, opts?: CallOptions): Promise<{ leader: string }> {
    return this.json({ method: 'POST', path: '/transfer-leader', body: JSON.stringify({ id }), retry: 'once' }, opts);
  }

  /** A peer's own status: `endpoint`'s, else the first that answers. */
  status(opts: EndpointOptions = {}): Promise<PeerStatus> {
    return this.json({ method: 'GET', path: '/status', retry: 'read', endpoint: opts.endpoint }, opts);
  }

  /** Whether a peer is healthy (a leader known and caught up): `{ok, reason?}`, never throws on 503. */
  async health(opts: EndpointOptions = {}): Promise<{ ok: boolean; reason?: string }> {
    const a = await this.request({ method: 'GET', path: '/health', retry: 'read', endpoint: opts.endpoint, ok: [503] }, opts);
    if (a.status === 200) return { ok: true };
    return { ok: false, reason: errorFromAnswer(a.status, a.text, a.headers).message };
  }

  /** A backup of the whole state (admin), as a stream; `revision` is the backup's. */
  async snapshot(opts: EndpointOptions = {}): Promise<{ revision: number; body: ReadableStream<Uint8Array> }> {
    const res = await this.open({ method: 'GET', path: '/snapshot', retry: 'read', stream: true, endpoint: opts.endpoint }, opts);
    return { revision: Number(res.headers.get('X-Metcd-Revision') ?? 0), body: res.body! };
  }

  // ---- the request loop ----

  private async json<T>(call: Call, opts?: CallOptions): Promise<T> {
    const a = await this.request(call, opts ?? {});
    return parseJson<T>(a.text);
  }

  /** A call whose whole answer is read within the deadline. */
  private async request(call: Call, opts: CallOptions): Promise<Answer> {
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
  private async open(call: Call, opts: CallOptions): Promise<Response> {
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

  /** Sends `call` until it has an answer that is not a redirect or a retryable refusal. */
  private async send(call: Call, deadline: Deadline): Promise<Response> {
    const session = call.retry === 'session' ? this.takeSession() : undefined;
    let mayHaveApplied = false;
    let redirectTo: string | undefined;
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
        const init: RequestInit = { method: call.method, headers, redirect: 'manual', signal: deadline.signal };
        if (call.body !== undefined) init.body = call.body;
        let res: Response;
        try {
          res = await this.fetchFn(url, init);
        } catch (err) {
          if (deadline.signal.aborted) throw deadline.reason;
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
          if (call.endpoint !== undefined || !this.retryable(call.retry, true)) throw lastError;
          await this.backoff(attempt++, deadline);
          continue;
        }
        this.noteLeader(res.headers);
        if (res.status === 307 || res.status === 308) {
          const location = res.headers.get('Location');
          await res.body?.cancel().catch(() => {});
          if (location === null || ++hops > MAX_REDIRECTS) {
            throw new MetcdError(res.status, 'bad_response', `too many redirects or a redirect without Location from ${url}`);
          }
          const target = new URL(location, url);
          if (call.endpoint === undefined && this.recentlyDown(target.origin)) {
            // A follower still names a leader that just failed us (it has not noticed yet):
            // wait for an election rather than follow it there.
            hops = 0;
            await this.backoff(attempt++, deadline, 100);
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
          if (!(NOT_TAKEN.has(err.code) || this.retryable(call.retry, taken))) throw err;
          lastError = err;
          hops = 0;
          const after = Number(res.headers.get('Retry-After') ?? '0') * 1000;
          await this.backoff(attempt++, deadline, Math.min(after, 1000));
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

  private retryable(retry: Retry, maybeTaken: boolean): boolean {
    if (retry === 'read' || retry === 'session' || retry === 'idempotent') return true;
    return !maybeTaken;
  }

  private async backoff(attempt: number, deadline: Deadline, atLeast = 0): Promise<void> {
    const ms = Math.max(atLeast, Math.min(1000, 25 * 2 ** attempt)) * (0.5 + Math.random() / 2);
    try {
      await sleep(ms, deadline.signal);
    } catch {
      // the deadline passed: the loop throws its reason
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

  private markDown(base: string): void {
    this.down.set(base, Date.now());
    if (this.leaderBases.get(this.leaderId) === base) this.leaderId = '';
  }

  /** X-Metcd-Leader names the leader: go there next when its URL is known. */
  private noteLeader(headers: Headers): void {
    const leader = headers.get(LEADER);
    if (leader === null || leader === this.leaderId) return;
    this.leaderId = leader;
    const base = this.leaderBases.get(leader);
    if (base !== undefined && !this.down.has(base)) this.preferred = base;
  }

  private learnAddresses(members: readonly Member[]): void {
    for (const m of members) {
      try {
        const origin = new URL(m.address).origin;
        if (this.endpoints.some((e) => new URL(e).origin === origin)) this.leaderBases.set(m.id, origin);
      } catch {
        // the edge's addresses are not URLs
      }
    }
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

/** A client for `endpoints` (see ClientOptions). */
export function createClient(options: ClientOptions): MetcdClient {
  return new MetcdClient(options);
}
