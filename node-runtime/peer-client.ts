// One request from this node to another member outside the Raft transport: --join asking to be
// added, and proxy mode forwarding a client's request to the leader. Through PeerAgents, so an
// https:// member is called with this node's peer certificate (global fetch cannot present
// one), on a keep-alive pool of its own (forwarded requests never wait behind Raft traffic).

import type { IncomingHttpHeaders } from 'node:http';
import { PeerAgents, type PeerTlsOptions } from './peer-agents.ts';

export interface PeerCall {
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  /** The whole exchange, connection included; none by default. */
  timeoutMs?: number;
}

export interface PeerAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** Header name, value, name, value… as received (repeated headers kept apart). */
  rawHeaders: string[];
  body: Buffer;
}

/** Above any answer a member sends (a range read is capped at a few MiB). */
const ANSWER_BYTES_MAX = 64 * 1024 * 1024;

export class PeerClient {
  private readonly agents: PeerAgents;

  constructor(tls: PeerTlsOptions) {
    this.agents = new PeerAgents(tls, { keepAlive: true, keepAliveMsecs: 1000 });
  }

  /** Rejects on a network or TLS failure (the error's `code` says which, e.g. ECONNREFUSED). */
  request(url: URL, call: PeerCall): Promise<PeerAnswer> {
    return new Promise<PeerAnswer>((resolveCall, rejectCall) => {
      let timer: NodeJS.Timeout | undefined;
      const resolve = (answer: PeerAnswer) => {
        clearTimeout(timer);
        resolveCall(answer);
      };
      const reject = (err: Error) => {
        clearTimeout(timer);
        rejectCall(err);
      };
      const headers = { ...call.headers, 'content-length': String(call.body?.byteLength ?? 0) };
      const req = this.agents.request(url, { method: call.method, headers }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > ANSWER_BYTES_MAX) req.destroy(new Error(`answer above ${ANSWER_BYTES_MAX} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks, bytes) }),
        );
        res.on('error', reject);
      });
      if (call.timeoutMs !== undefined) {
        const ms = call.timeoutMs;
        timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
      }
      req.on('error', reject);
      req.end(call.body);
    });
  }

  close(): void {
    this.agents.destroy();
  }
}

/** A member's answer as a web Response (what the router's forward hook returns). */
export function toResponse(answer: PeerAnswer): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < answer.rawHeaders.length; i += 2) headers.append(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!);
  const empty = answer.status === 204 || answer.status === 304 || answer.status === 205;
  return new Response(empty ? null : answer.body, { status: answer.status, headers });
}
