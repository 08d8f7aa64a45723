// Small pieces the client is built from: randomness, sleeping and deadlines under an
// AbortSignal, paths and query strings, JSON answers, error causes.

import { MetcdError } from './errors.ts';
import type { KeepAliveHandle } from './types.ts';

function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(done, ms);
    function done() {
      signal.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(t);
      reject(signal.reason);
    }
    signal.addEventListener('abort', abort, { once: true });
  });
}

/** One exactly-once session: a client id and the last seq it used. */
export interface Session {
  id: string;
  seq: number;
}

/** A deadline and the caller's signal as one AbortSignal; `clear()` drops the deadline. */
export class Deadline {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly unlink: () => void;

  constructor(timeoutMs: number, signal: AbortSignal | undefined) {
    const ctl = this.controller;
    this.timer = setTimeout(() => ctl.abort(new MetcdError(0, 'timeout', `no answer within ${timeoutMs} ms (timeout)`)), timeoutMs);
    const onAbort = () => ctl.abort(new MetcdError(0, 'aborted', 'the request was aborted', {}, { cause: signal?.reason }));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.unlink = () => signal?.removeEventListener('abort', onAbort);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The error to throw once aborted. */
  get reason(): MetcdError {
    const r: unknown = this.controller.signal.reason;
    return r instanceof MetcdError ? r : new MetcdError(0, 'aborted', 'the request was aborted');
  }

  /** Stops the deadline (a stream's connecting is over); the caller's signal still aborts. */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.clear();
    this.unlink();
  }
}

export function newClientId(): string {
  return `metcd-client-${randomHex(12)}`;
}

export function withCause(err: MetcdError, cause: MetcdError): MetcdError {
  return new MetcdError(err.status, err.code, `${err.message}; last: ${cause.message}`, { ...cause.details }, { cause });
}

export function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const code = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
    return typeof code === 'string' ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export function encodePath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

export function queryString(query: Record<string, string | number | undefined> | undefined): string {
  if (query === undefined) return '';
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) q.set(name, String(value));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

export function parseJson<T>(text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new MetcdError(0, 'bad_response', `expected JSON, got ${JSON.stringify(text.slice(0, 200))}`);
  }
}

export function waitMs(wait: string | undefined): number {
  if (wait === undefined) return 30_000;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(wait);
  if (m === null) return 30_000;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export function ignoreNotFound(err: unknown): void {
  if (err instanceof MetcdError && err.status === 404) return;
  throw err;
}

export function lostPromise(loop: KeepAliveHandle | undefined): Promise<MetcdError> {
  if (loop === undefined) return new Promise<MetcdError>(() => {});
  return loop.done.then((e) => (e === undefined ? new Promise<MetcdError>(() => {}) : e));
}
