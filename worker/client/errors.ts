// The client's one error type. A server refusal carries the HTTP status and the API's error code
// (`{"error":{"code","message",…}}`, worker/api/http.ts) with any extra fields in `details`; a
// failure on the client's side has status 0 and one of the client codes below.

/** Codes the client itself reports (status 0): no answer was had. */
export type ClientErrorCode = 'timeout' | 'aborted' | 'unavailable' | 'bad_response' | 'redirect_hidden';

export class MetcdError extends Error {
  /** The HTTP status, or 0 when no answer was had (timeout, aborted, unreachable). */
  readonly status: number;
  /** The API's error code (`key_not_found`, `compacted`, `session_expired`…) or a client code. */
  readonly code: string;
  /** Any other fields of the error object (`compactRevision`, `learnerMatch`…), and for a
   *  failed compare-and-set `modRevision` from the header. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetcdError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Reads an error answer into a MetcdError (a body that is not the API's shape keeps its text). */
export function errorFromAnswer(status: number, text: string, headers: Headers): MetcdError {
  let code = `http_${status}`;
  let message = text.trim() || `HTTP ${status}`;
  const details: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(text) as { error?: Record<string, unknown> };
    if (parsed !== null && typeof parsed.error === 'object' && parsed.error !== null) {
      for (const [name, value] of Object.entries(parsed.error)) {
        if (name === 'code' && typeof value === 'string') code = value;
        else if (name === 'message' && typeof value === 'string') message = value;
        else details[name] = value;
      }
    }
  } catch {
    // not JSON: keep the text
  }
  const mod = headers.get('X-Metcd-Mod-Revision');
  if (mod !== null && details['modRevision'] === undefined) details['modRevision'] = Number(mod);
  return new MetcdError(status, code, message, details);
}
