// --join: ask a member to add this node (POST /join), following the member's 307 to the
// leader, retrying while the cluster is busy, electing or unreachable, until a deadline.

import type { Logger } from './log.ts';

export interface JoinOptions {
  target: string;
  id: string;
  /** This node's advertised URL, recorded in the membership. */
  address: string;
  token: string;
  timeoutMs: number;
  log: Logger;
  /** Delay between attempts. */
  retryMs?: number;
}

const REDIRECTS_MAX = 5;
const ATTEMPT_TIMEOUT_MS = 5000;

export class JoinError extends Error {
  override name = 'JoinError';
}

type Attempt = { done: true } | { done: false; why: string };

async function attempt(opts: JoinOptions): Promise<Attempt> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token !== '') headers['authorization'] = `Bearer ${opts.token}`;
  let url = new URL('/join', opts.target).toString();
  for (let hop = 0; hop <= REDIRECTS_MAX; hop++) {
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ id: opts.id, address: opts.address }),
      redirect: 'manual',
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status === 200) return { done: true };
    const location = res.headers.get('location');
    if ((res.status === 307 || res.status === 308) && location !== null) {
      url = new URL(location, url).toString();
      continue;
    }
    if (res.status === 409 && (await alreadyMember(url, opts))) return { done: true };
    if (res.status === 401) throw new JoinError(`${url} rejected the cluster token (check --cluster-token)`);
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      throw new JoinError(`${url} refused the join: HTTP ${res.status} ${text.trim()}`);
    }
    return { done: false, why: `HTTP ${res.status} ${text.trim()}` };
  }
  return { done: false, why: 'too many redirects' };
}

/** After a 409: are we already in with our address (a retry after a lost answer)? */
async function alreadyMember(joinUrl: string, opts: JoinOptions): Promise<boolean> {
  const res = await fetch(new URL('/members', joinUrl), { signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS) });
  if (res.status !== 200) return false;
  const body = (await res.json()) as { members?: Array<{ id: string; address: string }> };
  return (body.members ?? []).some((m) => m.id === opts.id && m.address === opts.address);
}

export async function joinCluster(opts: JoinOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'no attempt made';
  for (let n = 1; ; n++) {
    try {
      const result = await attempt(opts);
      if (result.done) {
        opts.log.info('joined the cluster', { via: opts.target, attempts: n });
        return;
      }
      last = result.why;
    } catch (err) {
      if (err instanceof JoinError) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      last = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
    }
    if (Date.now() >= deadline) {
      throw new JoinError(`cannot join via ${opts.target} within ${opts.timeoutMs} ms: ${last}`);
    }
    opts.log.debug('join attempt failed; retrying', { via: opts.target, attempt: n, error: last });
    await new Promise((r) => setTimeout(r, opts.retryMs ?? 300));
  }
}
