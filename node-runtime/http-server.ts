// node:http ⇄ the shared router's ApiRequest/ApiReply (worker/api/exchange.ts), so the router
// serves Node exactly as it serves the edge, without building web Request/Response objects per
// request. Bodies are read through a byte cap (node-request.ts): a client cannot make the server
// buffer more than `bodyBytesMax`, whatever the route does; a body refused or left unread closes
// the connection after the answer instead of reading the rest. CONNECT and requests asking to
// switch protocols (Upgrade) are answered and closed here: metcd speaks plain HTTP/1.1 only,
// over TLS when given a certificate (tls-files.ts).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isStreamBody, type ApiReply } from '../worker/api/exchange.ts';
import { ApiError, errorReply, type ApiErrorCode } from '../worker/api/http.ts';
import type { Logger } from './log.ts';
import { NodeRequest } from './node-request.ts';
import type { ServerTls } from './tls-files.ts';
import { answerFailedHandshakes } from './tls-handshake-errors.ts';

export type ReplyHandler = (request: NodeRequest) => Promise<ApiReply>;

export interface HttpServerOptions {
  host: string;
  port: number;
  handler: ReplyHandler;
  /** Hard cap on any request body this server will read. */
  bodyBytesMax: number;
  log: Logger;
  /** Whole-request deadline (headers + body), against slow clients holding sockets. */
  requestTimeoutMs?: number;
  /** Most concurrent connections. */
  connectionsMax?: number;
  /** Most concurrent connections from one remote address (Consul's http_max_conns_per_client):
   *  one client cannot take every connection slot. */
  connectionsPerAddressMax?: number;
  /** Time a client has to send its request headers (slow-header clients are cut after it). */
  headersTimeoutMs?: number;
  /** Serve HTTPS with these; plain HTTP without. */
  tls?: ServerTls | null;
}

export const CONNECTIONS_PER_ADDRESS_MAX = 200;
export const HEADERS_TIMEOUT_MS = 10_000;
/** How often node:http looks for connections past their headers or request deadline (its own
 *  default, 30 s, lets slow clients hold their slots three times as long as the deadline says). */
const CONNECTIONS_CHECK_INTERVAL_MS = 1000;

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** Connection-level headers: they describe one hop (a proxied answer brings the leader's). The
 *  length is this server's to set. */
const NOT_RELAYED = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'content-length',
]);

/** The whole answer with Content-Length, in one write where node:http can. */
export function writeReply(res: ServerResponse, reply: ApiReply, closeAfter: boolean): void {
  const headers: Record<string, string> = {};
  for (const name in reply.headers) {
    if (!NOT_RELAYED.has(name.toLowerCase())) headers[name] = reply.headers[name]!;
  }
  if (closeAfter) headers['Connection'] = 'close';
  const body = reply.status === 204 || reply.status === 304 ? null : reply.body;
  if (isStreamBody(body)) {
    res.writeHead(reply.status, headers);
    res.flushHeaders();
    void writeStream(res, body);
    return;
  }
  if (body !== null) headers['Content-Length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  res.writeHead(reply.status, headers);
  if (body === null) res.end();
  else res.end(body);
}

/**
 * A streamed body (a watch), chunk by chunk as it comes (chunked encoding), waiting for the
 * socket to drain before taking more, so a slow client leaves events in the peer's watcher
 * (which bounds them) rather than in this process's socket buffers. A client that goes away
 * cancels the stream: that frees its watcher.
 */
async function writeStream(res: ServerResponse, stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.getReader();
  let gone = false;
  const onClose = (): void => {
    gone = true;
    reader.cancel().catch(() => undefined);
  };
  res.once('close', onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || gone) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = (): void => {
            res.off('drain', go);
            res.off('close', go);
            resolve();
          };
          res.on('drain', go);
          res.on('close', go);
        });
      }
    }
  } catch {
    // the stream failed: end the response as it is
  } finally {
    res.off('close', onClose);
    if (!gone) res.end();
  }
}

/** Closes a new connection at once when its remote address already holds `max` (counted, logged
 *  once per address while it is over). */
function limitConnectionsPerAddress(server: Server, max: number, log: Logger): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = open.get(address) ?? 0;
    if (count >= max) {
      if (count === max) log.warn('connections refused: too many from one address', { address, max });
      open.set(address, max + 1); // logged; stays at max + 1 until one closes
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const now = Math.min(open.get(address) ?? 1, max) - 1;
      if (now <= 0) open.delete(address);
      else open.set(address, now);
    });
  });
}

/** An error answered straight on a socket node:http has handed over (CONNECT, Upgrade), then closed. */
function refuseOnSocket(socket: Duplex, status: number, reason: string, code: ApiErrorCode, message: string, allow?: string): void {
  const body = errorReply(status, code, message).body as string;
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(allow === undefined ? [] : [`Allow: ${allow}`]),
    'Connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

function plainError(res: ServerResponse, status: number, code: ApiErrorCode, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  writeReply(res, errorReply(status, code, message), true);
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningServer> {
  const fallbackHost = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  const base = `${opts.tls ? 'https' : 'http'}://${fallbackHost}`;
  const headersTimeout = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const serverOptions = {
    requestTimeout: Math.max(opts.requestTimeoutMs ?? 30_000, headersTimeout),
    headersTimeout,
    keepAliveTimeout: 30_000,
    connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    let request: NodeRequest;
    try {
      request = new NodeRequest(req, base, opts.bodyBytesMax);
    } catch (err) {
      plainError(res, 400, 'bad_request', `malformed request: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    opts
      .handler(request)
      .then(
        // A body the handler left unread (a 307 before reading a PUT) would stall this keep-alive
        // connection: close it after the answer instead.
        (reply) => writeReply(res, reply, request.abandoned || request.bodyUnread),
        (err: unknown) => {
          if (err instanceof ApiError) {
            // A refusal the handler let through (e.g. its body over this server's cap).
            writeReply(res, errorReply(err.status, err.code, err.message, err.headers, err.details), true);
            return;
          }
          opts.log.error('http handler failed', {
            method: req.method,
            url: req.url,
            error: err instanceof Error ? err.message : String(err),
          });
          plainError(res, 500, 'internal', 'internal error');
        },
      )
      .catch((err: unknown) => {
        opts.log.debug('http response aborted', { url: req.url, error: String(err) });
        res.destroy();
      });
  };
  let server: Server;
  if (opts.tls) {
    // A client certificate that is missing or from an unknown CA does not fail the handshake: the
    // front door answers 401 per route (cert-auth.ts). The handshake gets the headers' deadline.
    const https = createHttpsServer(
      { ...serverOptions, ...opts.tls, rejectUnauthorized: false, handshakeTimeout: headersTimeout },
      onRequest,
    );
    answerFailedHandshakes(https, opts.log);
    server = https;
  } else {
    server = createServer(serverOptions, onRequest);
  }
  // Without these listeners node:http closes a CONNECT without a word, and leaves an upgrade
  // request's connection waiting for a protocol switch that never comes.
  server.on('connect', (_req, socket: Duplex) =>
    refuseOnSocket(
      socket,
      405,
      'Method Not Allowed',
      'method_not_allowed',
      'CONNECT is not supported: metcd is not a proxy',
      'GET, PUT, POST, DELETE, HEAD',
    ),
  );
  server.on('upgrade', (_req, socket: Duplex) =>
    refuseOnSocket(socket, 400, 'Bad Request', 'bad_request', 'metcd does not switch protocols; send the request without Upgrade'),
  );
  server.maxConnections = opts.connectionsMax ?? 10_000;
  limitConnectionsPerAddress(server, opts.connectionsPerAddressMax ?? CONNECTIONS_PER_ADDRESS_MAX, opts.log);
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
