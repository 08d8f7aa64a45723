// What a caller may do. Every route declares what it needs (Need, in the route table of
// router.ts); the authorizer (authorize.ts) turns the request's credential into a Grant and
// checks the route's need against it before the handler runs. What only a body or a query names
// (the keys of a multi-key write, a range) the handler checks against the same Grant, through
// ctx.grant, before it proposes or reads anything.
//
// Ranges: a range read is allowed only when the token may read the WHOLE range (as etcd's
// range permission check), else 403, never a silently filtered answer; a prefix read is within
// a rule when it starts with the rule's prefix.

import type { TokenRule } from '../kv/types.ts';
import { ApiError } from './http.ts';

/** What a route needs, judged on the route the router resolved (method, pattern, decoded params). */
export type Need =
  /** Anyone, with or without a credential (GET /health). */
  | 'open'
  /** Any valid credential: answers that touch no data (404, 405, a bad request). */
  | 'authenticated'
  /** read / write on the route's `key` parameter. */
  | 'read-key'
  | 'write-key'
  /** Keys the handler names from the body or the query: it checks each one (ctx.grant). */
  | 'keys'
  /** GET /status, GET /members: the topology. */
  | 'status'
  /** Tokens: the cluster's access control itself. */
  | 'admin'
  /** Membership and leadership changes: admin, or the peers' own credential (Node's cluster
   *  token, which a joining node presents to /join). */
  | 'cluster';

export interface Rights {
  /** Every key, tokens, status (root, or a cluster in open mode); membership changes only
   *  with `admin` or `cluster` as well. */
  all: boolean;
  rules: readonly TokenRule[];
  admin: boolean;
  status: boolean;
  /** May change membership and leadership (admin, or the cluster token). */
  cluster: boolean;
}

const NO_RIGHTS: Rights = { all: false, rules: [], admin: false, status: false, cluster: false };

/** The rights a request was granted, and who it was granted to (for messages: a token's name). */
export class Grant {
  readonly who: string;
  /** Whether a credential was checked (false: an anonymous caller of an open route). */
  readonly authenticated: boolean;
  /** The API token's id when an API token was shown: what is counted per token (its leases). */
  readonly tokenId: string | undefined;
  private readonly rights: Rights;

  constructor(who: string, rights: Partial<Rights>, authenticated = true, tokenId?: string) {
    this.who = who;
    this.rights = { ...NO_RIGHTS, ...rights };
    this.authenticated = authenticated;
    this.tokenId = tokenId;
  }

  static everything(who: string): Grant {
    return new Grant(who, { all: true, admin: true, status: true, cluster: true });
  }

  static anonymous(): Grant {
    return new Grant('anonymous', {}, false);
  }

  mayRead(key: string): boolean {
    return this.rights.all || this.rights.rules.some((r) => r.access !== 'write' && key.startsWith(r.prefix));
  }

  mayWrite(key: string): boolean {
    return this.rights.all || this.rights.rules.some((r) => r.access !== 'read' && key.startsWith(r.prefix));
  }

  /** Whether every key of [start, end) that starts with `prefix` may be read ('' end = no bound). */
  mayReadRange(range: { prefix: string; start: string; end: string }): boolean {
    return this.covers('write', range);
  }

  /** Whether every key starting with `prefix` may be written (a transaction's prefix delete). */
  mayWritePrefix(prefix: string): boolean {
    return this.covers('read', { prefix, start: '', end: '' });
  }

  /** Whether the rules whose access is not `excluded` cover the whole range. */
  private covers(excluded: 'read' | 'write', range: { prefix: string; start: string; end: string }): boolean {
    if (this.rights.all) return true;
    const lo = range.start > range.prefix ? range.start : range.prefix;
    const hi = minEnd(prefixEnd(range.prefix), range.end === '' ? null : range.end);
    if (hi !== null && lo >= hi) return true; // an empty range touches nothing
    const allowed = this.rights.rules
      .filter((r) => r.access !== excluded)
      .map((r): [string, string | null] => [r.prefix, prefixEnd(r.prefix)])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    // Sweep the allowed intervals in order, extending what is covered from lo.
    let covered: string | null = lo; // covered: [lo, covered); null = to the end of keys
    for (const [from, to] of allowed) {
      if (covered === null) break;
      if (from > covered) break;
      if (to === null || to > covered) covered = to;
    }
    return covered === null || (hi !== null && covered >= hi);
  }

  requireRead(key: string): void {
    if (!this.mayRead(key)) throw this.denied(`read on key ${JSON.stringify(key)}`);
  }

  requireWrite(key: string): void {
    if (!this.mayWrite(key)) throw this.denied(`write on key ${JSON.stringify(key)}`);
  }

  requireWritePrefix(prefix: string): void {
    if (!this.mayWritePrefix(prefix)) throw this.denied(`write on every key under prefix ${JSON.stringify(prefix)}`);
  }

  requireRange(range: { prefix: string; start: string; end: string }): void {
    if (!this.mayReadRange(range)) {
      const what = range.prefix !== '' ? `prefix ${JSON.stringify(range.prefix)}` : 'range';
      throw this.denied(`read on every key of the requested ${what} (a range is answered only when wholly readable)`);
    }
  }

  /** null when the grant covers `need` for a route with these params, else the 403 to answer. */
  refusal(need: Need, params: Readonly<Record<string, string>>): ApiError | null {
    switch (need) {
      case 'open':
      case 'authenticated':
      case 'keys':
        return null;
      case 'read-key':
        return this.mayRead(params['key'] ?? '') ? null : this.denied(`read on key ${JSON.stringify(params['key'])}`);
      case 'write-key':
        return this.mayWrite(params['key'] ?? '') ? null : this.denied(`write on key ${JSON.stringify(params['key'])}`);
      case 'status':
        return this.rights.all || this.rights.status || this.rights.admin ? null : this.denied('status');
      case 'admin':
        return this.rights.all || this.rights.admin ? null : this.denied('admin');
      case 'cluster':
        // Not implied by `all` alone: open mode grants everything but this without the cluster token.
        return this.rights.admin || this.rights.cluster ? null : this.denied('admin');
    }
  }

  private denied(right: string): ApiError {
    return new ApiError(403, 'permission_denied', `${this.who} lacks the right: ${right}`);
  }
}

/** The smallest string above every string starting with `prefix`; null when there is none. */
export function prefixEnd(prefix: string): string | null {
  let end = prefix.length;
  while (end > 0 && prefix.charCodeAt(end - 1) === 0xffff) end--;
  if (end === 0) return null;
  return prefix.slice(0, end - 1) + String.fromCharCode(prefix.charCodeAt(end - 1) + 1);
}

function minEnd(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}
