// What the routes see of a request and what they answer, without the web Request/Response
// classes. Building a Request (URL, Headers, a body stream) and a Response (another stream, read
// back by the host) cost more CPU than everything a small read does; a host that owns the
// socket (Node) hands the router an ApiRequest over its own parsed request and writes the
// ApiReply straight out. Hosts that speak fetch (the edge) adapt with fromFetchRequest /
// toFetchResponse, so both runtimes run the same routes.

import { readBodyBytes } from './body.ts';

export interface ApiRequest {
  readonly method: string;
  /** Absolute URL (path and query are what the routes read). */
  readonly url: URL;
  /** A header's value (case-insensitive name), repeated ones joined with ", "; null when absent. */
  header(name: string): string | null;
  /** Every header, for forwarding the request to the leader. */
  headerPairs(): Array<[string, string]>;
  /** The body, read at most once, refused past `bytesMax` with ApiError 413 (see body.ts). */
  body(bytesMax: number): Promise<Uint8Array>;
}

export interface ApiReply {
  status: number;
  /** Header names as the router writes them; values are single strings. */
  headers: Record<string, string>;
  /** A stream (a watch's events) is written out as it comes and ends when it closes; a host
   *  cancels it when the client goes away (that frees the watcher). */
  body: string | Uint8Array | ReadableStream<Uint8Array> | null;
}

export function isStreamBody(body: ApiReply['body']): body is ReadableStream<Uint8Array> {
  return typeof body === 'object' && body !== null && !(body instanceof Uint8Array);
}

export function isApiReply(value: unknown): value is ApiReply {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ApiReply).status === 'number' &&
    typeof (value as ApiReply).headers === 'object'
  );
}

export function fromFetchRequest(request: Request): ApiRequest {
  let url: URL | undefined;
  return {
    method: request.method,
    get url() {
      return (url ??= new URL(request.url));
    },
    header: (name) => request.headers.get(name),
    headerPairs: () => [...request.headers],
    body: (bytesMax) => readBodyBytes(request, bytesMax),
  };
}

export function toFetchResponse(reply: ApiReply): Response {
  // A 204/304 may not carry a body, not even an empty one.
  const body = reply.status === 204 || reply.status === 304 ? null : reply.body;
  return new Response(body as ConstructorParameters<typeof Response>[0], { status: reply.status, headers: reply.headers });
}

/** A fetched answer (the leader's, when proxying) as a reply; bodies are small (router-made),
 *  but an event stream (a consistent watch forwarded to the leader) and a backup (GET /snapshot)
 *  are relayed as they come. */
export async function fromFetchResponse(response: Response): Promise<ApiReply> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const type = headers['content-type'] ?? '';
  if (response.body !== null && (type.startsWith('text/event-stream') || type.startsWith('application/octet-stream'))) {
    return { status: response.status, headers, body: response.body as ReadableStream<Uint8Array> };
  }
  const body = response.body === null ? null : new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers, body };
}
