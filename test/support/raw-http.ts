// One HTTP/1.1 request through node:http, for tests that need what fetch would not do: send the
// request target exactly as written (no normalising of `//`, `/.` or `..`), or leave from a
// chosen local address (another client on the loopback range).

import { request as httpRequest } from 'node:http';

export interface RawAnswer {
  status: number;
  body: string;
  location: string | undefined;
}

export function rawRequest(
  base: string,
  method: string,
  target: string,
  body = '',
  opts: { localAddress?: string } = {},
): Promise<RawAnswer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path: target, ...opts }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
