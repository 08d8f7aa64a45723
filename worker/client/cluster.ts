// The cluster and its administration: members, leadership, a peer's status and health, API
// tokens and backups.

import { errorFromAnswer } from './errors.ts';
import type { Transport } from './transport.ts';
import type { CallOptions, Members, PeerStatus, EndpointOptions, TokenSpec, TokenInfo } from './types.ts';

export async function members(t: Transport, opts?: CallOptions): Promise<Members> {
  const m = await t.json<Members>({ method: 'GET', path: '/members', retry: 'read' }, opts);
  t.learnAddresses(m.members);
  return m;
}

/** Adds a member (`POST /join`); on Node `address` is the new node's URL. */
export function addMember(t: Transport, member: { id: string; address?: string; learner?: boolean }, opts?: CallOptions): Promise<Members> {
  return t.json({ method: 'POST', path: '/join', body: JSON.stringify(member), retry: 'once' }, opts);
}

export function removeMember(t: Transport, id: string, opts?: CallOptions): Promise<Members> {
  return t.json({ method: 'DELETE', path: `/members/${encodeURIComponent(id)}`, retry: 'once' }, opts);
}

export function promoteMember(t: Transport, id: string, opts?: CallOptions): Promise<Members> {
  return t.json({ method: 'POST', path: `/members/${encodeURIComponent(id)}/promote`, retry: 'once' }, opts);
}

/** Hands leadership to `id`; answers the new leader. */
export function moveLeader(t: Transport, id: string, opts?: CallOptions): Promise<{ leader: string }> {
  return t.json({ method: 'POST', path: '/transfer-leader', body: JSON.stringify({ id }), retry: 'once' }, opts);
}

/** A peer's own status: `endpoint`'s, else the first that answers. */
export function status(t: Transport, opts: EndpointOptions): Promise<PeerStatus> {
  return t.json({ method: 'GET', path: '/status', query: { peer: opts.peer }, retry: 'read', endpoint: opts.endpoint }, opts);
}

/** Whether a peer is healthy (a leader known and caught up): `{ok, reason?}`, never throws on 503. */
export async function health(t: Transport, opts: EndpointOptions): Promise<{ ok: boolean; reason?: string }> {
  const a = await t.request(
    { method: 'GET', path: '/health', query: { peer: opts.peer }, retry: 'read', endpoint: opts.endpoint, ok: [503] },
    opts,
  );
  if (a.status === 200) return { ok: true };
  return { ok: false, reason: errorFromAnswer(a.status, a.text, a.headers).message };
}

/** A backup of the whole state (admin), as a stream; `revision` is the backup's. */
export async function snapshot(t: Transport, opts: EndpointOptions): Promise<{ revision: number; body: ReadableStream<Uint8Array> }> {
  const res = await t.open(
    { method: 'GET', path: '/snapshot', query: { peer: opts.peer }, retry: 'read', stream: true, endpoint: opts.endpoint },
    opts,
  );
  return { revision: Number(res.headers.get('X-Metcd-Revision') ?? 0), body: res.body! };
}

/** API tokens (admin): create answers the secret once. */
export function tokenApi(t: Transport) {
  return {
    create: (spec: TokenSpec, opts?: CallOptions): Promise<TokenInfo & { token: string; revision: number }> =>
      t.json({ method: 'POST', path: '/auth/tokens', body: JSON.stringify(spec), retry: 'once' }, opts),
    list: async (opts?: CallOptions): Promise<TokenInfo[]> =>
      (await t.json<{ tokens: TokenInfo[] }>({ method: 'GET', path: '/auth/tokens', retry: 'read' }, opts)).tokens,
    revoke: (id: string, opts?: CallOptions): Promise<{ revoked: string; revision: number }> =>
      t.json({ method: 'DELETE', path: `/auth/tokens/${encodeURIComponent(id)}`, retry: 'idempotent' }, opts),
  };
}
