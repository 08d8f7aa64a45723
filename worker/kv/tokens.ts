// API tokens in the replicated state. They live in the KV map itself, as records under metcd's
// own key namespace (INTERNAL_KEY_PREFIX, which no client key may begin with: validate.ts), so
// every engine, snapshot and restore carries them with no storage change of its own. The
// TokenTable is the index the authorizer looks a presented token up in (by the SHA-256 of its
// secret); the state machine rebuilds it from those records when it is restored.

import type { TokenRecord, TokenRule } from './types.ts';

/** The first character of every key metcd keeps for itself; client keys may not begin with it. */
export const INTERNAL_KEY_PREFIX = '\u0001';
const TOKEN_KEY_PREFIX = `${INTERNAL_KEY_PREFIX}auth/token/`;

export const TOKEN_ID_PATTERN = /^[0-9a-f]{16}$/;
export const TOKEN_HASH_PATTERN = /^[0-9a-f]{64}$/;
export const TOKEN_NAME_CHARS_MAX = 128;
export const TOKEN_RULES_MAX = 64;
export const TOKEN_ACCESS = ['read', 'write', 'readwrite'] as const;

export function isInternalKey(key: string): boolean {
  return key.charCodeAt(0) === 1;
}

export function isTokenKey(key: string): boolean {
  return key.startsWith(TOKEN_KEY_PREFIX);
}

export function tokenKey(id: string): string {
  return TOKEN_KEY_PREFIX + id;
}

/** A copy with exactly the known fields, in a fixed order (so the stored JSON is canonical). */
export function cleanToken(t: TokenRecord): TokenRecord {
  return {
    id: t.id,
    name: t.name,
    hash: t.hash,
    rules: t.rules.map((r): TokenRule => ({ prefix: r.prefix, access: r.access })),
    admin: t.admin,
    status: t.status,
    expiresAt: t.expiresAt,
    createdAt: t.createdAt,
  };
}

/** The record's value: canonical JSON (the same token gives the same bytes on every replica). */
export function encodeToken(t: TokenRecord): string {
  return JSON.stringify(cleanToken(t));
}

/** A stored token back; a value that is not one means the state is corrupt (thrown). */
export function decodeToken(key: string, value: string): TokenRecord {
  let t: TokenRecord;
  try {
    t = JSON.parse(value) as TokenRecord;
  } catch {
    throw new Error(`KV state: token record ${JSON.stringify(key)} is not JSON`);
  }
  if (typeof t !== 'object' || t === null || key !== tokenKey(String(t.id)) || !TOKEN_HASH_PATTERN.test(String(t.hash))) {
    throw new Error(`KV state: token record ${JSON.stringify(key)} is not a token`);
  }
  return cleanToken(t);
}

/** The tokens the state holds, by id and by the digest of their secret. */
export class TokenTable {
  private readonly byId = new Map<string, TokenRecord>();
  private readonly byDigest = new Map<string, TokenRecord>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): TokenRecord | undefined {
    return this.byId.get(id);
  }

  /** The token whose secret has this SHA-256 (lowercase hex). */
  byHash(hash: string): TokenRecord | undefined {
    return this.byDigest.get(hash);
  }

  /** Every token, by id. */
  list(): TokenRecord[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  add(t: TokenRecord): void {
    if (this.byId.has(t.id) || this.byDigest.has(t.hash)) throw new Error(`token ${t.id} or its hash is already held`);
    this.byId.set(t.id, t);
    this.byDigest.set(t.hash, t);
  }

  remove(id: string): TokenRecord | undefined {
    const t = this.byId.get(id);
    if (t === undefined) return undefined;
    this.byId.delete(id);
    this.byDigest.delete(t.hash);
    return t;
  }
}

/** What the peer lets the API see of the tokens (the applied state's). */
export interface TokenView {
  readonly size: number;
  get(id: string): TokenRecord | undefined;
  byHash(hash: string): TokenRecord | undefined;
  list(): TokenRecord[];
}
