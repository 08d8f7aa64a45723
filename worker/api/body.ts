// Reading request bodies under a byte limit. The limit is enforced while reading: a client that
// announces or streams more than `bytesMax` gets 413 and the rest of its body is never buffered.
//
// Past the limit the rest of a body is still read and dropped, up to DRAIN_BYTES_MAX: a 413 sent
// while the client is still uploading is often lost, because the server then closes a connection
// with unread input and the client sees a reset instead of the answer. Beyond that budget the
// upload is cut off (the client gets the 413 if it reads before it finishes writing).

import { badRequest, tooLarge } from './http.ts';
import type { ApiContext } from './host.ts';

const EMPTY = new Uint8Array(0);
export const DRAIN_BYTES_MAX = 8 * 1024 * 1024;

/** Read and drop up to `budget` more bytes, then cancel whatever is left. Never throws. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, budget: number): Promise<void> {
  try {
    for (let left = budget; left > 0;) {
      const { done, value } = await reader.read();
      if (done) return;
      left -= value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away: nothing left to drain.
  }
}

export async function readBodyBytes(request: Request, bytesMax: number): Promise<Uint8Array> {
  const announcedText = request.headers.get('Content-Length')?.trim() ?? null;
  const announced = announcedText !== null && /^\d+$/.test(announcedText) ? Number(announcedText) : null;
  if (announced !== null && announced > bytesMax) {
    const reader = request.body?.getReader();
    if (reader !== undefined) {
      await drain(reader, announced <= DRAIN_BYTES_MAX ? announced : 0);
      reader.releaseLock();
    }
    throw tooLarge(`request body is ${announcedText} bytes, above the limit of ${bytesMax}`);
  }
  if (request.body === null) return EMPTY;
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > bytesMax) {
        await drain(reader, DRAIN_BYTES_MAX);
        throw tooLarge(`request body is above the limit of ${bytesMax} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw badRequest(`${what} is not valid UTF-8`);
  }
}

/** The body as a JSON object (not an array, not null). `bytes` when already read. */
export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> {
  const text = decodeUtf8(bytes, 'request body');
  if (text.trim() === '') throw badRequest('request body is empty; expected a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** A 400 naming the first field of `body` that is not in `allowed`. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const name of Object.keys(body)) {
    if (!allowed.includes(name)) throw badRequest(`unknown field ${JSON.stringify(name)}; accepted: ${allowed.join(', ')}`);
  }
}

/** The request's JSON object body (read once, under ctx.bodyBytesMax, and kept for a forward),
 *  holding no field but `fields`. */
export async function jsonFields(ctx: ApiContext, fields: readonly string[]): Promise<Record<string, unknown>> {
  ctx.body ??= await ctx.request.body(ctx.bodyBytesMax);
  const body = parseJsonObject(ctx.body);
  onlyFields(body, fields);
  return body;
}
