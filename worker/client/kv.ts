// Keys: get, range, put, delete, transactions and compaction (README, "The key API").

import { errorFromAnswer } from './errors.ts';
import type { Transport } from './transport.ts';
import type { CallOptions, KeyValue, GetOptions, RangeOptions, RangeResult, PutOptions, Txn, TxnResult } from './types.ts';
import { encodePath, parseJson } from './util.ts';

/** The key, or null when it does not exist (at `revision`, when given). */
export async function getKey(t: Transport, key: string, opts: GetOptions): Promise<KeyValue | null> {
  const a = await t.request(
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
export async function range(t: Transport, opts: RangeOptions): Promise<RangeResult> {
  const a = await t.request(
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
export async function putKey(t: Transport, key: string, value: string, opts: PutOptions): Promise<{ revision: number }> {
  const a = await t.request(
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
export async function deleteKey(
  t: Transport,
  key: string,
  opts: CallOptions & { prefix?: boolean },
): Promise<{ deleted: number; revision: number }> {
  if (opts.prefix === true) {
    const r = await txn(t, { success: [{ delete: { prefix: key } }] }, opts);
    const first = r.results[0] as { delete?: { deleted: number } } | undefined;
    return { deleted: first?.delete?.deleted ?? 0, revision: r.revision };
  }
  return t.json({ method: 'DELETE', path: `/key/${encodePath(key)}`, retry: 'session' }, opts);
}

/** An etcd transaction in one revision (README, Transactions), exactly once. */
export function txn(t: Transport, body: Txn, opts?: CallOptions): Promise<TxnResult> {
  return t.json({ method: 'POST', path: '/txn', body: JSON.stringify(body), retry: 'session' }, opts);
}

/** Discards the history below `revision` (admin). */
export function compact(t: Transport, revision: number, opts?: CallOptions): Promise<{ revision: number; compactRevision: number }> {
  return t.json({ method: 'POST', path: '/compact', body: JSON.stringify({ revision }), retry: 'idempotent' }, opts);
}
