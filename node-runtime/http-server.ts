// node:http ⇄ standard Request/Response, so the shared router (worker/api/router.ts) serves Node
// exactly as it serves the edge. Bodies stream through a byte cap: a client cannot make the
// server buffer more than `bodyBytesMax`, whatever the route does; a body refused mid-way closes
// the connection after the answer instead of reading the rest.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from './log.ts';

export type FetchHandler = (request: Request) => Promise<Response>;

export interface HttpServerOptions {
  host: string;
  port: number;
  handler: FetchHandler;
  /** Hard cap on any request body this server will read. */
  bodyBytesMax: number;
  log: Logger;
  /** Whole-request deadline (headers + body), against slow clients holding sockets. */
  requestTimeoutMs?: number;
  /** Most concurrent connections. */
  connectionsMax?: number;
}

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
}

/** A web stream over the request body that errors past `bytesMax` and, if the reader gives up
 *  early, stops reading without destroying the socket (so an answer can still be sent). */
function bodyStream(req: IncomingMessage, bytesMax: number, onAbandoned: () => void): ReadableStream<Uint8Array> {
  let total = 0;
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      req.on('data', (chunk: Buffer) => {
        if (done) return;
        total += chunk.length;
        if (total > bytesMax) {
          done = true;
          req.pause();
          onAbandoned();
          controller.error(new BodyTooLargeError(`request body is above the limit of ${bytesMax} bytes`));
          return;
        }
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
        if ((controller.desiredSize ?? 1) <= 0) req.pause();
      });
      req.on('end', () => {
        if (done) return;
        done = true;
        controller.close();
      });
      req.on('error', (err) => {
        if (done) return;
        done = true;
        controller.error(err);
      });
    },
    pull() {
      if (!done) req.resume();
    },
    cancel() {
      if (done) return;
      done = true;
      req.pause();
      onAbandoned();
    },
  }, { highWaterMark: 4 });
}

export function toRequest(req: IncomingMessage, fallbackHost: string, bytesMax: number, onAbandoned: () => void): Request {
  const host = typeof req.headers.host === 'string' && req.headers.host !== '' ? req.headers.host : fallbackHost;
  const url = new URL(req.url ?? '/', `http://${host}`);
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  if (hasBody) {
    init.body = bodyStream(req, bytesMax, onAbandoned);
    init.duplex = 'half';
  } else {
    req.resume(); // drain anything a GET carries
  }
  return new Request(url, init);
}

/** Connection-level headers: they describe one hop (a proxied answer brings the leader's). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** Bodies up to this size are sent with Content-Length in one write (all the router makes:
 *  its largest answer is a range page of rangeBytesMax); larger ones (a proxied answer could
 *  be) are streamed. Piping a web stream costs a chunked encoding and several writes per
 *  answer: a fifth of a node's CPU on small reads. */
const BUFFERED_BODY_BYTES_MAX = 8 * 1024 * 1024;

async function writeResponse(res: ServerResponse, response: Response, closeAfter: boolean): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  });
  if (closeAfter) headers['connection'] = 'close';
  if (response.body === null) {
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  const announced = headers['content-length'];
  if (announced === undefined || Number(announced) <= BUFFERED_BODY_BYTES_MAX) {
    const body = new Uint8Array(await response.arrayBuffer());
    headers['content-length'] = String(body.length);
    res.writeHead(response.status, headers);
    res.end(body);
    return;
  }
  res.writeHead(response.status, headers);
  await new Promise<void>((resolve, reject) => {
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('error', reject);
    res.on('error', reject);
    res.on('finish', resolve);
    res.on('close', resolve);
    body.pipe(res);
  });
}

function plainError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningServer> {
  const fallbackHost = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  const server = createServer({ requestTimeout: opts.requestTimeoutMs ?? 30_000, keepAliveTimeout: 30_000 }, (req, res) => {
    let abandoned = false;
    let request: Request;
    try {
      request = toRequest(req, fallbackHost, opts.bodyBytesMax, () => (abandoned = true));
    } catch (err) {
      plainError(res, 400, 'bad_request', `malformed request: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    opts.handler(request).then(
      // A body the handler left unread (a 307 before reading a PUT) would stall this keep-alive
      // connection: close it after the answer instead.
      (response) => writeResponse(res, response, abandoned || !req.complete),
      (err: unknown) => {
        if (err instanceof BodyTooLargeError) {
          plainError(res, 413, 'too_large', err.message);
        } else {
          opts.log.error('http handler failed', { method: req.method, url: req.url, error: err instanceof Error ? err.message : String(err) });
          plainError(res, 500, 'internal', 'internal error');
        }
      },
    ).catch((err: unknown) => {
      opts.log.debug('http response aborted', { url: req.url, error: String(err) });
      res.destroy();
    });
  });
  server.maxConnections = opts.connectionsMax ?? 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Connections with a request in flight get a moment to answer, then go.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      }),
  };
}
