// Reading request bodies under a byte limit. The limit is enforced while reading: a client that
// announces or streams more than `bytesMax` gets 413 and the rest of its body is never buffered.

import { badRequest, tooLarge } from './http.ts';

const EMPTY = new Uint8Array(0);

export async function readBodyBytes(request: Request, bytesMax: number): Promise<Uint8Array> {
  const announced = request.headers.get('Content-Length');
  if (announced !== null && /^\d+$/.test(announced.trim()) && Number(announced.trim()) > bytesMax) {
    throw tooLarge(`request body is ${announced.trim()} bytes, above the limit of ${bytesMax}`);
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
        void reader.cancel().catch(() => {});
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

export async function readText(request: Request, bytesMax: number, what = 'request body'): Promise<string> {
  return decodeUtf8(await readBodyBytes(request, bytesMax), what);
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
