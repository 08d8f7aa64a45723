// Failed TLS handshakes on the HTTPS listener. A plain-HTTP request (curl http://… to a TLS
// node) is answered in plain HTTP, 400 with the stable JSON error saying to use https://, as
// Go's net/http does for etcd, instead of a closed connection that explains nothing. OpenSSL
// recognises such a request in the first bytes (ERR_SSL_HTTP_REQUEST); the answer goes out on
// the raw TCP socket, which the TLS layer has given up by then, found by its remote address and
// port. Every other failure is only logged (debug): a scanner must not fill the log.

import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { errorReply } from '../worker/api/http.ts';
import type { Logger } from './log.ts';

/** Time the client gets to read the answer before the socket is destroyed. */
const LINGER_MS = 1000;

export function answerFailedHandshakes(server: Server, log: Logger): void {
  const raw = new Map<string, Socket>();
  const key = (address: string | undefined, port: number | undefined) => `${address ?? ''}|${port ?? ''}`;
  server.on('connection', (socket: Socket) => {
    const k = key(socket.remoteAddress, socket.remotePort);
    raw.set(k, socket);
    socket.once('close', () => {
      if (raw.get(k) === socket) raw.delete(k);
    });
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, tlsSocket: TLSSocket) => {
    const socket = raw.get(key(tlsSocket.remoteAddress, tlsSocket.remotePort));
    log.debug('tls handshake failed', { address: tlsSocket.remoteAddress, error: err.code ?? err.message });
    if (err.code !== 'ERR_SSL_HTTP_REQUEST' || socket === undefined || socket.destroyed) return;
    const body = errorReply(400, 'bad_request', 'this node serves HTTPS: use https:// (plain HTTP is not accepted on this port)')
      .body as string;
    const head = [
      'HTTP/1.1 400 Bad Request',
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
}
