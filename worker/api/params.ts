// Validation of what arrives in the URL and headers: query parameters, keys, read levels,
// compare revisions and the idempotency stamp.

import type { ClientStamp } from '../kv/types.ts';
import { utf8Length } from '../kv/utf8.ts';
import { isInternalKey } from '../kv/tokens.ts';
import type { ReadLevel } from '../peer/peer.ts';
import { READ_LEVELS } from '../peer/peer.ts';
import { H, badRequest, tooLarge } from './http.ts';

/** Accepted on every route: hosts use it to pick the peer that serves the request. */
export const COMMON_PARAMS = ['peer'] as const;

/**
 * The query parameters, each at most once, all of them in `allowed` (plus COMMON_PARAMS).
 * Unknown or repeated parameters are a 400: a typo must not silently change a request's meaning.
 */
export function queryParams(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    if (!allowed.includes(name) && !(COMMON_PARAMS as readonly string[]).includes(name)) {
      const accepted = [...allowed, ...COMMON_PARAMS].join(', ');
      throw badRequest(`unknown query parameter ${JSON.stringify(name)}; accepted here: ${accepted}`);
    }
    if (out.has(name)) throw badRequest(`query parameter ${JSON.stringify(name)} given more than once`);
    out.set(name, value);
  }
  return out;
}

export function readLevel(params: Map<string, string>): ReadLevel {
  const level = params.get('level');
  if (level === undefined) return 'default';
  if ((READ_LEVELS as readonly string[]).includes(level)) return level as ReadLevel;
  throw badRequest(`unknown level ${JSON.stringify(level)}; expected one of ${READ_LEVELS.join(', ')}`);
}

/** A key (from a path, already percent-decoded by the router), non-empty and within the key limit. */
export function checkKey(key: string, keyBytesMax: number): string {
  if (key.length === 0) throw badRequest('empty key');
  if (isInternalKey(key)) throw badRequest('keys beginning with U+0001 are reserved for metcd itself');
  // A lone surrogate (-1) is measured as TextEncoder would write it (U+FFFD, 3 bytes).
  const exact = utf8Length(key);
  const bytes = exact >= 0 ? exact : new TextEncoder().encode(key).byteLength;
  if (bytes > keyBytesMax) throw tooLarge(`key is ${bytes} bytes, above the limit of ${keyBytesMax}`);
  return key;
}

/** A non-negative decimal safe integer parameter, or undefined when absent. */
export function intParam(params: Map<string, string>, name: string, min = 0): number | undefined {
  const raw = params.get(name);
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min) {
    throw badRequest(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/**
 * X-Metcd-Client + X-Metcd-Seq: both or neither. The state machine applies a stamped command
 * once and answers a retry of the same (client, seq) with the first answer.
 */
export function clientStamp(header: (name: string) => string | null): ClientStamp | undefined {
  const client = header(H.client);
  const seq = header(H.seq);
  if (client === null && seq === null) return undefined;
  if (client === null || seq === null) throw badRequest(`${H.client} and ${H.seq} go together`);
  if (!/^[\x20-\x7e]{1,64}$/.test(client)) throw badRequest(`${H.client} must be 1..64 printable ASCII characters`);
  if (!/^\d{1,16}$/.test(seq) || !Number.isSafeInteger(Number(seq)) || Number(seq) < 1) {
    throw badRequest(`${H.seq} must be a positive integer`);
  }
  return { client, seq: Number(seq) };
}

/** A member id: what peers are named by (p1, n2, node-a…). */
export function memberId(value: unknown, what = 'id'): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value)) {
    throw badRequest(`${what} must be 1..64 characters of letters, digits, '.', '_' or '-' (starting with a letter or digit)`);
  }
  return value;
}
