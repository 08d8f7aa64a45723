// Leases: grant, keep alive (once, or in a loop every ttl/3), revoke, time to live.

import { MetcdError } from './errors.ts';
import type { Transport } from './transport.ts';
import type { CallOptions, Lease, LeaseInfo, KeepAliveHandle } from './types.ts';
import { sleep } from './util.ts';

export function leaseGrant(t: Transport, ttl: number, opts?: CallOptions): Promise<Lease> {
  return t.json({ method: 'POST', path: '/lease', body: JSON.stringify({ ttl }), retry: 'once' }, opts);
}

export function leaseKeepAlive(t: Transport, id: string, opts?: CallOptions): Promise<Lease> {
  return t.json({ method: 'POST', path: `/lease/${encodeURIComponent(id)}/keepalive`, retry: 'idempotent' }, opts);
}

export function leaseRevoke(t: Transport, id: string, opts?: CallOptions): Promise<{ deleted: number; revision: number }> {
  return t.json({ method: 'DELETE', path: `/lease/${encodeURIComponent(id)}`, retry: 'idempotent' }, opts);
}

/** One page of the cluster's leases in id order (GET /lease); `after` continues from an id. */
export function leaseList(
  t: Transport,
  opts: CallOptions & { limit?: number; after?: string } = {},
): Promise<{ leases: Array<{ id: string; grantedTtl: number }>; more: boolean }> {
  const { limit, after, ...call } = opts;
  return t.json({ method: 'GET', path: '/lease', query: { limit, after }, retry: 'read' }, call);
}

export function leaseTimeToLive(t: Transport, id: string, opts?: CallOptions): Promise<LeaseInfo> {
  return t.json({ method: 'GET', path: `/lease/${encodeURIComponent(id)}`, retry: 'read' }, opts);
}

/** Keeps a lease alive every ttl/3 until stopped or lost (404: it expired or was revoked). */
export function keepAliveLoop(t: Transport, lease: Lease): KeepAliveHandle {
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
        await leaseKeepAlive(t, lease.id, { signal: stop.signal, timeoutMs: everyMs * 2 });
      } catch (err) {
        if (stop.signal.aborted) return undefined;
        const e = err instanceof MetcdError ? err : new MetcdError(0, 'unavailable', String(err));
        if (e.code === 'lease_not_found') return e;
      }
    }
  })();
  return { stop: () => stop.abort(), done };
}
