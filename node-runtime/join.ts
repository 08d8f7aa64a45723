// --join: ask a member to add this node (POST /join), following the member's 307 to the
// leader, retrying while the cluster is busy, electing or unreachable, until a deadline.
// Through the node's PeerClient: an https:// member is asked with this node's peer certificate.

import type { Logger } from './log.ts';
import type { PeerClient } from './peer-client.ts';

export interface JoinOptions {
  target: string;
  id: string;
  /** This node's advertised URL, recorded in the membership. */
  address: string;
  token: string;
  timeoutMs: number;
  log: Logger;
  client: PeerClient;
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
  let url = new URL('/join', opts.target);
  const body = Buffer.from(JSON.stringify({ id: opts.id, address: opts.address }));
  for (let hop = 0; hop <= REDIRECTS_MAX; hop++) {
    const res = await opts.client.request(url, { method: 'POST', headers, body, timeoutMs: ATTEMPT_TIMEOUT_MS });
    const text = res.body.toString('utf8');
    if (res.status === 200) return { done: true };
    const location = res.headers.location;
    if ((res.status === 307 || res.status === 308) && location !== undefined) {
      url = new URL(location, url);
      continue;
    }
    if (res.status === 409 && (await alreadyMember(url, opts))) return { done: true };
    // A token refusal asks for a Bearer token (WWW-Authenticate); a certificate refusal does not.
    if (res.status === 401 && res.headers['www-authenticate'] === undefined) {
      throw new JoinError(`${url} refused our certificate (check --peer-cert-file against its CA)`);
    }
    if (res.status === 401) throw new JoinError(`${url} rejected the cluster token (check --cluster-token)`);
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      throw new JoinError(`${url} refused the join: HTTP ${res.status} ${text.trim()}`);
    }
    return { done: false, why: `HTTP ${res.status} ${text.trim()}` };
  }
  return { done: false, why: 'too many redirects' };
}

/** After a 409: are we already in with our address (a retry after a lost answer)? */
async function alreadyMember(joinUrl: URL, opts: JoinOptions): Promise<boolean> {
  const res = await opts.client.request(new URL('/members', joinUrl), { method: 'GET', headers: {}, timeoutMs: ATTEMPT_TIMEOUT_MS });
  if (res.status !== 200) return false;
  const body = JSON.parse(res.body.toString('utf8')) as { members?: Array<{ id: string; address: string }> };
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
      last = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    }
    if (Date.now() >= deadline) {
      throw new JoinError(`cannot join via ${opts.target} within ${opts.timeoutMs} ms: ${last}`);
    }
    opts.log.debug('join attempt failed; retrying', { via: opts.target, attempt: n, error: last });
    await new Promise((r) => setTimeout(r, opts.retryMs ?? 300));
  }
}
