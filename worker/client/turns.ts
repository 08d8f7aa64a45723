// Locks and elections (etcd's concurrency recipes, run by the leader: README, "Locks and
// elections"): each answers the holder's key and its fencing token, and keeps the lease it was
// granted alive until released, resigned or lost.

import { MetcdError } from './errors.ts';
import { keepAliveLoop, leaseRevoke } from './leases.ts';
import type { Transport } from './transport.ts';
import { sseFrames } from './sse.ts';
import type {
  CallOptions,
  LockOptions,
  LockHandle,
  CampaignOptions,
  Leadership,
  KeepAliveHandle,
  ElectionLeader,
  ObserveOptions,
} from './types.ts';
import { waitMs, ignoreNotFound, lostPromise, parseJson, sleep } from './util.ts';

interface Held {
  key: string;
  lease: string;
  revision: number;
}

/** A blocking call may wait up to `wait` on the server: its deadline is at least that. */
function blockingTimeoutMs(t: Transport, opts: { timeoutMs?: number; wait?: string }): number {
  return opts.timeoutMs ?? Math.max(t.timeoutMs, waitMs(opts.wait) + 5000);
}

/** Keeps the lease alive when the server granted it for this call (no `lease` given); `end`
 *  stops that and revokes it. */
function ownLease(t: Transport, held: Held, opts: { lease?: string; ttl?: number }) {
  const own = opts.lease === undefined;
  const loop: KeepAliveHandle | undefined = own ? keepAliveLoop(t, { id: held.lease, ttl: opts.ttl ?? 60 }) : undefined;
  return {
    lost: lostPromise(loop),
    stop: () => loop?.stop(),
    revoke: async (callOpts?: CallOptions) => {
      if (own) await leaseRevoke(t, held.lease, callOpts).catch(ignoreNotFound);
    },
  };
}

/** Takes the lock `name` (blocking up to `wait`), keeps its lease alive, and answers the
 *  holder's key and fencing token. release() deletes the key and revokes a lease it granted. */
export async function lock(t: Transport, name: string, opts: LockOptions): Promise<LockHandle> {
  const held = await t.json<Held>(
    {
      method: 'POST',
      path: `/lock/${encodeURIComponent(name)}`,
      query: { ttl: opts.lease === undefined ? opts.ttl : undefined, lease: opts.lease, wait: opts.wait },
      retry: 'once',
    },
    { signal: opts.signal, timeoutMs: blockingTimeoutMs(t, opts) },
  );
  const lease = ownLease(t, held, opts);
  return {
    ...held,
    lost: lease.lost,
    release: async (callOpts?: CallOptions) => {
      lease.stop();
      const id = held.key.slice(held.key.lastIndexOf('/') + 1);
      await t.json(
        { method: 'DELETE', path: `/lock/${encodeURIComponent(name)}/${encodeURIComponent(id)}`, retry: 'idempotent' },
        callOpts,
      );
      await lease.revoke(callOpts);
    },
  };
}

/** Campaigns in election `name` with `value` until elected (blocking up to `wait`); answers the
 *  leader's key and fencing token, with proclaim() and resign(). */
export async function campaign(t: Transport, name: string, value: string, opts: CampaignOptions): Promise<Leadership> {
  const body: Record<string, unknown> = { value };
  if (opts.lease !== undefined) body['lease'] = opts.lease;
  else if (opts.ttl !== undefined) body['ttl'] = opts.ttl;
  const base = `/election/${encodeURIComponent(name)}`;
  const held = await t.json<Held>(
    { method: 'POST', path: `${base}/campaign`, query: { wait: opts.wait }, body: JSON.stringify(body), retry: 'once' },
    { signal: opts.signal, timeoutMs: blockingTimeoutMs(t, opts) },
  );
  const lease = ownLease(t, held, opts);
  return {
    ...held,
    lost: lease.lost,
    proclaim: async (v: string, callOpts?: CallOptions) =>
      (
        await t.json<{ revision: number }>(
          { method: 'POST', path: `${base}/proclaim`, body: JSON.stringify({ key: held.key, value: v }), retry: 'idempotent' },
          callOpts,
        )
      ).revision,
    resign: async (callOpts?: CallOptions) => {
      lease.stop();
      await t.json({ method: 'POST', path: `${base}/resign`, body: JSON.stringify({ key: held.key }), retry: 'idempotent' }, callOpts);
      await lease.revoke(callOpts);
    },
  };
}

/** The election's leader now, or null when there is none. */
export async function electionLeader(t: Transport, name: string, opts?: CallOptions): Promise<ElectionLeader | null> {
  try {
    return await t.json({ method: 'GET', path: `/election/${encodeURIComponent(name)}`, retry: 'read' }, opts);
  } catch (err) {
    if (err instanceof MetcdError && err.status === 404) return null;
    throw err;
  }
}

/**
 * The election's leader now and at every change (null: none), as an async iterator
 * (`GET /election/:name/observe`). A broken stream is opened again on any endpoint; the leader it
 * then reports is yielded only if it differs from the last one. Ends when `signal` aborts.
 */
export async function* observe(t: Transport, name: string, opts: ObserveOptions = {}): AsyncGenerator<ElectionLeader | null> {
  const signal = opts.signal ?? new AbortController().signal;
  let last: string | undefined;
  let backoff = 50;
  while (!signal.aborted) {
    let body: ReadableStream<Uint8Array>;
    try {
      const res = await t.open(
        { method: 'GET', path: `/election/${encodeURIComponent(name)}/observe`, retry: 'read', stream: true },
        { signal, timeoutMs: opts.timeoutMs },
      );
      body = res.body!;
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof MetcdError && (err.code === 'timeout' || err.status === 0 || err.status === 503)) {
        await sleep(backoff, signal).catch(() => {});
        backoff = Math.min(backoff * 2, 1000);
        continue;
      }
      throw err;
    }
    backoff = 50;
    try {
      for await (const f of sseFrames(body, signal)) {
        if (f.event !== 'leader') continue;
        const leader = parseJson<ElectionLeader | null>(f.data);
        const seen = JSON.stringify(leader);
        if (seen === last) continue;
        last = seen;
        yield leader;
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof MetcdError) throw err;
    }
    if (!signal.aborted) t.markDown(); // the stream ended or broke: resume on another endpoint
  }
}
