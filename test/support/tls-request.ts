// One HTTPS request as `curl --cacert ca.pem [--cert c.pem --key c.key]` makes it, for the TLS
// tests: a new connection every time (no pool), so each request presents exactly the
// certificate it names.

import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { KeyPair } from './certs.ts';

export interface TlsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface TlsCall {
  method?: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  /** The CA file that verifies the server (as curl --cacert). */
  ca: string;
  /** The client certificate to present (as curl --cert/--key); none when absent. */
  client?: KeyPair;
  timeoutMs?: number;
}

export function tlsRequest(url: string, call: TlsCall): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: call.method ?? 'GET',
        headers: call.headers ?? {},
        agent: false,
        ca: readFileSync(call.ca),
        ...(call.client ? { cert: readFileSync(call.client.cert), key: readFileSync(call.client.key) } : {}),
        timeout: call.timeoutMs ?? 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(call.body);
  });
}
