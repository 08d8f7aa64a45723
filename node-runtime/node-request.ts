// An ApiRequest (worker/api/exchange.ts) over node:http's own parsed request: the router reads
// headers and the URL straight from it and the body from the socket, and no web Request,
// Headers or stream is built (they cost more CPU than a small read itself).
//
// The body is read under a byte cap, with the same rule as worker/api/body.ts: past the cap the
// rest is read and dropped up to DRAIN_BYTES_MAX so the 413 reaches a client still uploading,
// and beyond that budget reading stops. Either way the host closes the connection after the
// answer (`abandoned`), since what is left of the body cannot be trusted to be read.

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ApiRequest } from '../worker/api/exchange.ts';
import { DRAIN_BYTES_MAX } from '../worker/api/body.ts';
import { tooLarge } from '../worker/api/http.ts';

const EMPTY = new Uint8Array(0);

export class NodeRequest implements ApiRequest {
  readonly method: string;
  readonly url: URL;
  /** Set once the body was refused or left unread part-way: close after answering. */
  abandoned = false;
  private readonly req: IncomingMessage;
  /** The server's own cap on any body, whatever a route allows. */
  private readonly bytesCap: number;
  private bodyRead = false;

  /** Throws (TypeError) when the request target is not a valid URL path. */
  constructor(req: IncomingMessage, base: string, bytesCap: number) {
    this.req = req;
    this.method = req.method ?? 'GET';
    const target = req.url ?? '/';
    // An origin-form target is a path, whatever it starts with: new URL('//x', base) would take
    // "x" for a host and serve "/" (the edge, given the same target, keeps the path "//x").
    this.url = new URL(target.startsWith('/') ? new URL(base).origin + target : target, base);
    this.bytesCap = bytesCap;
  }

  /** The connection (a TLSSocket on HTTPS): its client certificate is checked per route. */
  get socket(): Socket {
    return this.req.socket;
  }

  header(name: string): string | null {
    const value = this.req.headers[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  headerPairs(): Array<[string, string]> {
    const raw = this.req.rawHeaders;
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
    return pairs;
  }

  body(bytesMax: number): Promise<Uint8Array> {
    if (this.bodyRead) return Promise.reject(new Error('request body read twice'));
    this.bodyRead = true;
    const limit = Math.min(bytesMax, this.bytesCap);
    const req = this.req;
    if (req.complete && req.readableLength === 0) return Promise.resolve(EMPTY);
    const announcedText = req.headers['content-length'];
    const announced = announcedText !== undefined && /^\d+$/.test(announcedText) ? Number(announcedText) : null;
    return new Promise<Uint8Array>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let total = 0;
      // Bytes still to read and drop once over the limit (-1: not over it).
      let drainLeft = -1;
      const refuse = () =>
        tooLarge(
          announced !== null && announced > limit
            ? `request body is ${announced} bytes, above the limit of ${limit}`
            : `request body is above the limit of ${limit} bytes`,
        );
      const done = (err: Error | null, value?: Uint8Array) => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('close', onClose);
        if (err === null) resolve(value!);
        else reject(err);
      };
      const giveUp = () => {
        this.abandoned = true;
        req.pause();
        done(refuse());
      };
      const onData = (chunk: Buffer) => {
        if (drainLeft >= 0) {
          drainLeft -= chunk.length;
          if (drainLeft < 0) giveUp();
          return;
        }
        total += chunk.length;
        if (total > limit) {
          chunks.length = 0;
          drainLeft = DRAIN_BYTES_MAX;
          return;
        }
        chunks.push(chunk);
      };
      const onEnd = () => {
        if (drainLeft >= 0) {
          this.abandoned = true;
          done(refuse());
          return;
        }
        done(null, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
      };
      const onError = (err: Error) => {
        this.abandoned = true;
        done(err);
      };
      const onClose = () => {
        if (!req.complete) onError(new Error('client closed the connection before the body ended'));
      };
      if (announced !== null && announced > limit) {
        if (announced > DRAIN_BYTES_MAX) {
          giveUp();
          return;
        }
        drainLeft = announced;
      }
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('close', onClose);
      req.resume();
    });
  }

  /** After answering: whether part of the body is still unread on the socket. */
  get bodyUnread(): boolean {
    return !this.req.complete;
  }
}
