// From what went wrong to the HTTP answer: PeerError codes and KV refusals to status + code.
// not-leader is not here: it becomes a redirect or a forward (leader.ts).

import type { KvResult } from '../kv/types.ts';
import type { PeerError } from '../peer/errors.ts';
import { ApiError } from './http.ts';
import type { ApiErrorCode } from './http.ts';

/** Seconds a client should wait before retrying a 503 / 429. Elections settle within ~2 s. */
export const RETRY_AFTER_SECONDS = 1;

const retry = { 'Retry-After': String(RETRY_AFTER_SECONDS) };

export function peerErrorToApi(err: PeerError): ApiError {
  const s = (status: number, code: ApiErrorCode, headers: Record<string, string> = {}): ApiError =>
    new ApiError(status, code, err.message, headers, { ...err.details });
  switch (err.code) {
    case 'not-leader':
      // Reached only when no redirect is possible (unknown leader address, a forwarded request).
      return s(503, 'not_leader', { ...retry, ...(err.leader === '' ? {} : { 'X-Metcd-Leader': err.leader }) });
    case 'no-leader':
      return s(503, 'no_leader', retry);
    case 'busy':
      return s(503, 'busy', retry);
    case 'leadership-lost':
      return s(503, 'leadership_lost', retry);
    case 'timeout':
      return s(503, 'timeout', retry);
    case 'too-many-pending':
      return s(429, 'too_many_requests', retry);
    case 'too-large':
      return s(413, 'too_large');
    case 'no-space':
      return s(507, 'space_exceeded');
    case 'invalid':
      return s(400, 'bad_request');
    case 'member-not-found':
      return s(404, 'member_not_found');
    case 'member-conflict':
      return s(409, 'member_conflict');
    case 'learner-behind':
      return s(409, 'learner_behind');
    case 'removed':
      // Gone for good: no retry here makes it come back (a client should ask a member).
      return s(410, 'removed');
    case 'closed':
      return s(503, 'unavailable', retry);
    case 'failed':
      return s(503, 'unavailable', { 'Retry-After': '5' });
  }
}

/** A state machine refusal (the command reached the log and was applied as a no-op). */
export function kvRefusalToApi(result: Extract<KvResult, { ok: false }>): ApiError {
  switch (result.code) {
    case 'compare-failed':
      return new ApiError(409, 'compare_failed', `compare failed: the key's mod revision is ${result.actual}`, {
        'X-Metcd-Mod-Revision': String(result.actual),
      });
    case 'session-expired':
      return new ApiError(409, 'session_expired', result.message);
    case 'invalid':
      return new ApiError(400, 'bad_request', result.message);
    case 'lease-not-found':
      return new ApiError(404, 'lease_not_found', result.message);
  }
}
