// Reply building blocks shared by the routes: the stable error shape, JSON bodies, headers.

import type { ApiReply } from './exchange.ts';

/** Response headers metcd sets. */
export const H = {
  revision: 'X-Metcd-Revision',
  leader: 'X-Metcd-Leader',
  client: 'X-Metcd-Client',
  seq: 'X-Metcd-Seq',
  forwarded: 'X-Metcd-Forwarded',
  modRevision: 'X-Metcd-Mod-Revision',
  createRevision: 'X-Metcd-Create-Revision',
  version: 'X-Metcd-Version',
  readLevel: 'X-Metcd-Read-Level',
  appliedIndex: 'X-Metcd-Applied-Index',
  commitIndex: 'X-Metcd-Commit-Index',
  lastContact: 'X-Metcd-Last-Contact-Ms',
  more: 'X-Metcd-More',
  nextStart: 'X-Metcd-Next-Start',
  lease: 'X-Metcd-Lease',
} as const;

/** The stable error codes of `{"error":{"code","message"}}`. */
export type ApiErrorCode =
  | 'bad_request'
  | 'not_found'
  | 'key_not_found'
  | 'member_not_found'
  | 'lease_not_found'
  | 'method_not_allowed'
  | 'compare_failed'
  | 'session_expired'
  | 'member_conflict'
  | 'learner_behind'
  | 'removed'
  | 'compacted'
  | 'lock_wait_elapsed'
  | 'lock_lost'
  | 'not_elected'
  | 'too_large'
  | 'space_exceeded'
  | 'too_many_requests'
  | 'not_leader'
  | 'no_leader'
  | 'busy'
  | 'leadership_lost'
  | 'timeout'
  | 'unavailable'
  | 'unauthenticated'
  | 'permission_denied'
  | 'wrong_cluster'
  | 'bad_backup'
  | 'cluster_in_use'
  | 'internal';

/** A failure decided by the API layer itself (validation, limits, routing). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly headers: Record<string, string>;
  /** Extra numeric fields of the error object beside code and message (learner_behind). */
  readonly details: Readonly<Record<string, number>>;

  constructor(
    status: number,
    code: ApiErrorCode,
    message: string,
    headers: Record<string, string> = {},
    details: Record<string, number> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.details = details;
  }
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'bad_request', message);
}

export function tooLarge(message: string): ApiError {
  return new ApiError(413, 'too_large', message);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The stable error shape as a reply (what the routes answer). `details` are further numeric
 *  fields of the error object, documented per code (never code or message). */
export function errorReply(
  status: number,
  code: ApiErrorCode,
  message: string,
  headers: Record<string, string> = {},
  details: Readonly<Record<string, number>> = {},
): ApiReply {
  return { status, headers: { 'Content-Type': JSON_TYPE, ...headers }, body: JSON.stringify({ error: { ...details, code, message } }) };
}

/** The stable error shape as a web Response (for hosts answering before the router). */
export function errorResponse(status: number, code: ApiErrorCode, message: string, headers: Record<string, string> = {}): Response {
  const reply = errorReply(status, code, message, headers);
  return new Response(reply.body, { status, headers: reply.headers });
}

export function jsonReply(body: unknown, status = 200, headers: Record<string, string> = {}): ApiReply {
  return jsonTextReply(JSON.stringify(body), status, headers);
}

/** For bodies built by hand (key→value objects whose key order and names must survive as is). */
export function jsonTextReply(text: string, status = 200, headers: Record<string, string> = {}): ApiReply {
  return { status, headers: { 'Content-Type': JSON_TYPE, ...headers }, body: text };
}

/**
 * `{"k1":"v1","k2":"v2"}` in the given order. Built as text: a JS object would reorder
 * integer-like keys and treat "__proto__" specially.
 */
export function pairsJson(pairs: Iterable<readonly [string, string]>): string {
  const parts: string[] = [];
  for (const [k, v] of pairs) parts.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
  return `{${parts.join(',')}}`;
}
