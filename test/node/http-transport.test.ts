// The Node host's network pieces in one process: the front door's token and cluster checks
// (nothing reaches the peer on a wrong token), the server's body cap, and the transport's
// batching, headers and bounded per-peer queue.

import { afterEach, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { encodeMessages, decodeMessages } from '../../worker/raft/codec.ts';
import type { Message } from '../../worker/raft/types.ts';
import type { Peer } from '../../worker/peer/peer.ts';
import { createFront } from '../../node-runtime/front.ts';
import { startHttpServer, type RunningServer } from '../../node-runtime/http-server.ts';
import { HttpTransport } from '../../node-runtime/transport.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { waitFor } from '../support/wait.ts';
import { rawRequest } from '../support/raw-http.ts';
import type { ApiReply, ApiRequest } from '../../worker/api/exchange.ts';

const hb = (from: string, to: string, term = 1): Message => ({ type: 'heartbeat', from, to, term, commit: 0 });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function frontServer(routerCalls: ApiRequest[], received: Message[][]): Promise<RunningServer> {
  const peer = {
    receive: (m: Message[]) => received.push(m),
    revision: 7,
    leaderId: 'n2',
  } as unknown as Peer;
  const front = createFront({
    selfId: 'n1',
    clusterId: 'c1',
    token: 's3cret',
    peer: () => peer,
    log: silentLogger,
    raftBodyBytesMax: 1024,
    router: { handle: async (r) => (routerCalls.push(r), { status: 200, headers: {}, body: 'routed' }) },
  });
  const server = await startHttpServer({ host: '127.0.0.1', port: 0, handler: front, bodyBytesMax: 4096, log: silentLogger });
  cleanups.push(() => server.close());
  return server;
}

describe('front door', () => {
  it('delivers a batch only with the right token and cluster, addressed to this node', async () => {
    const routed: ApiRequest[] = [];
    const received: Message[][] = [];
    const s = await frontServer(routed, received);
    const url = `http://127.0.0.1:${s.port}/raft/messages`;
    const body = encodeMessages([hb('n2', 'n1'), hb('n2', 'n9')]);
    const post = (headers: Record<string, string>, b: Uint8Array = body) => fetch(url, { method: 'POST', body: b, headers });
    const noToken = await post({ 'X-Metcd-Cluster': 'c1' });
    expect(noToken.status).toBe(401);
    // A front-door refusal carries the headers of every peer answer.
    expect(noToken.headers.get('X-Metcd-Revision')).toBe('7');
    expect(noToken.headers.get('X-Metcd-Leader')).toBe('n2');
    expect((await post({ authorization: 'Bearer wrong', 'X-Metcd-Cluster': 'c1' })).status).toBe(401);
    expect((await post({ authorization: 'Bearer s3cret', 'X-Metcd-Cluster': 'other' })).status).toBe(403);
    expect(received).toEqual([]);
    expect((await post({ authorization: 'Bearer s3cret', 'X-Metcd-Cluster': 'c1' }, new Uint8Array([9, 9, 9]))).status).toBe(400);
    expect((await post({ authorization: 'Bearer s3cret', 'X-Metcd-Cluster': 'c1' }, new Uint8Array(2048))).status).toBe(413);
    expect((await post({ authorization: 'Bearer s3cret', 'X-Metcd-Cluster': 'c1' })).status).toBe(204);
    expect(received).toEqual([[hb('n2', 'n1')]]); // the one for n9 is not ours
    expect(routed).toEqual([]);
  });

  it('hands every client route to the router, which guards membership and leadership on the route it resolves', async () => {
    const routed: ApiRequest[] = [];
    const s = await frontServer(routed, []);
    const base = `http://127.0.0.1:${s.port}`;
    for (const [method, p] of [
      ['POST', '/join/'],
      ['DELETE', '/members/n2'],
      ['POST', '/transfer-leader'],
      ['GET', '/members'],
      ['PUT', '/hello'],
    ] as const) {
      expect((await fetch(base + p, { method, body: method === 'GET' ? null : '{}' })).status, `${method} ${p}`).toBe(200);
    }
    expect(routed.map((r) => `${r.method} ${r.url.pathname}`)).toEqual([
      'POST /join/',
      'DELETE /members/n2',
      'POST /transfer-leader',
      'GET /members',
      'PUT /hello',
    ]);
  });
});

/** Writes `raw` on a new connection and collects what comes back until the server closes it
 *  (or `waitMs` passes: then `closed` is false). */
function rawExchange(port: number, raw: string, waitMs = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, waitMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on('error', reject);
    socket.write(raw);
  });
}

describe('http server', () => {
  it('slow clients from one address cannot lock others out: a per-address cap, and headers due in time', async () => {
    const s = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      bodyBytesMax: 1000,
      log: silentLogger,
      connectionsPerAddressMax: 50,
      headersTimeoutMs: 4000,
      handler: async () => ({ status: 200, headers: {}, body: 'served' }),
    });
    cleanups.push(() => s.close());
    // 150 connections from 127.0.0.1 that start a request and never finish its headers.
    let closed = 0;
    const slow = Array.from({ length: 150 }, () => {
      const socket = connect(s.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.resume(); // read what the server says (its 408), so its close reaches us
      socket.write('GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      return new Promise<void>((resolve) =>
        socket.on('close', () => {
          closed++;
          resolve();
        }),
      );
    });
    // Past the cap, the address's connections are closed at once; 50 hold their slots…
    await waitFor('the connections over the cap closed', 10_000, async () => (closed >= 100 ? true : undefined));
    expect(closed).toBe(100);
    // …and meanwhile a client from another address is served.
    const other = await rawRequest(`http://127.0.0.1:${s.port}`, 'GET', '/status', '', { localAddress: '127.0.0.2' });
    expect({ status: other.status, body: other.body }).toEqual({ status: 200, body: 'served' });
    expect(closed, 'slow connections still holding their slots while the other client was served').toBe(100);
    // The rest are cut once their headers are overdue, and the address is served again.
    await Promise.all(slow);
    expect(await (await fetch(`http://127.0.0.1:${s.port}/status`)).text()).toBe('served');
  }, 30_000);

  it('answers CONNECT 405 and a request asking to switch protocols 400, and closes: nothing is left hanging', async () => {
    const s = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      bodyBytesMax: 1000,
      log: silentLogger,
      handler: async () => ({ status: 200, headers: {}, body: 'served' }),
    });
    cleanups.push(() => s.close());
    const tunnel = await rawExchange(s.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(tunnel.text).toMatch(/^HTTP\/1\.1 405 /);
    expect(tunnel.text).toContain('"code":"method_not_allowed"');
    expect(tunnel.closed).toBe(true);
    const upgrade = await rawExchange(
      s.port,
      'GET /status HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n' + 'GET /status HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(upgrade.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(upgrade.text).toContain('"code":"bad_request"');
    expect(upgrade.closed).toBe(true);
    // The server still serves everyone else.
    expect(await (await fetch(`http://127.0.0.1:${s.port}/status`)).text()).toBe('served');
  });

  it('streams bodies to the handler under a hard cap and closes the connection after refusing one', async () => {
    const s = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      bodyBytesMax: 1000,
      log: silentLogger,
      handler: async (r) => ({ status: 200, headers: {}, body: String((await r.body(1_000_000)).length) }),
    });
    cleanups.push(() => s.close());
    const ok = await fetch(`http://127.0.0.1:${s.port}/k`, { method: 'PUT', body: 'x'.repeat(1000) });
    expect(await ok.text()).toBe('1000');
    const big = await fetch(`http://127.0.0.1:${s.port}/k`, { method: 'PUT', body: 'x'.repeat(200_000) });
    expect(big.status).toBe(413);
    expect(big.headers.get('connection')).toBe('close');
    expect((await big.json()) as unknown).toMatchObject({ error: { code: 'too_large' } });
  });

  it('sends an answer with Content-Length in one piece, a large one whole', async () => {
    const big = 'y'.repeat(9 * 1024 * 1024);
    const s = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      bodyBytesMax: 1000,
      log: silentLogger,
      handler: async (r): Promise<ApiReply> =>
        r.url.pathname === '/big'
          ? { status: 200, headers: { 'content-length': '1', 'transfer-encoding': 'chunked' }, body: new TextEncoder().encode(big) }
          : { status: 200, headers: { 'content-type': 'application/json' }, body: '{"k":"v"}' },
    });
    cleanups.push(() => s.close());
    const raw = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`http://127.0.0.1:${s.port}/k`, (res) => {
        resolve(`${res.statusCode} ${res.headers['content-length']} ${res.headers['transfer-encoding'] ?? 'no-chunking'}`);
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
    expect(raw).toBe('200 9 no-chunking');
    const res = await fetch(`http://127.0.0.1:${s.port}/big`);
    expect((await res.text()).length).toBe(big.length);
  });

  it('closes a keep-alive connection whose request body the handler left unread', async () => {
    const s = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      bodyBytesMax: 1_000_000,
      log: silentLogger,
      handler: async () => ({ status: 307, headers: { Location: '/elsewhere' }, body: 'moved' }),
    });
    cleanups.push(() => s.close());
    const res = await fetch(`http://127.0.0.1:${s.port}/k`, { method: 'PUT', body: 'x'.repeat(500_000), redirect: 'manual' });
    expect(res.status).toBe(307);
    expect(res.headers.get('connection')).toBe('close');
    await res.text();
    // The server still answers new requests (nothing stuck).
    const again = await fetch(`http://127.0.0.1:${s.port}/k`, { redirect: 'manual' });
    expect(again.status).toBe(307);
  });
});

describe('transport', () => {
  async function peerServer(handle: (req: IncomingMessage, body: Buffer) => number | null): Promise<{ server: Server; url: string }> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = handle(req, Buffer.concat(chunks));
        if (status !== null) res.writeHead(status).end(); // null: never answer (a paused peer)
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  it('batches what queues behind a request, in order, with token, cluster and sender headers', async () => {
    const got: Message[] = [];
    let requests = 0;
    const seen: Array<Record<string, string | string[] | undefined>> = [];
    const { url } = await peerServer((req, body) => {
      requests++;
      seen.push(req.headers);
      got.push(...decodeMessages(body));
      return 204;
    });
    const t = new HttpTransport({
      selfId: 'n1',
      advertise: 'http://me:1',
      clusterId: 'c1',
      token: 'tok',
      addressOf: () => url,
      log: silentLogger,
    });
    cleanups.push(() => t.close());
    for (let i = 1; i <= 200; i++) t.send([hb('n1', 'n2', i)]);
    await expect.poll(() => got.length, { timeout: 5000 }).toBe(200);
    expect(got.map((m) => m.term)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(requests).toBeLessThan(200);
    expect(seen[0]).toMatchObject({
      authorization: 'Bearer tok',
      'x-metcd-cluster': 'c1',
      'x-metcd-from': 'n1',
      'x-metcd-address': 'http://me:1',
    });
  });

  it('bounds the queue of a peer that does not answer, dropping the oldest', async () => {
    const { url } = await peerServer(() => null);
    const t = new HttpTransport({
      selfId: 'n1',
      advertise: 'http://me:1',
      clusterId: 'c1',
      token: '',
      addressOf: () => url,
      log: silentLogger,
      limits: { queueMessagesMax: 100, requestTimeoutMs: 60_000 },
    });
    cleanups.push(() => t.close());
    for (let i = 0; i < 5000; i++) t.send([hb('n1', 'n2', i + 1)]);
    expect(t.counters['dropped.queue-full']).toBeGreaterThanOrEqual(5000 - 100 - 1);
  });

  it('drops messages for a peer with no known address instead of queueing them', () => {
    const t = new HttpTransport({
      selfId: 'n1',
      advertise: 'http://me:1',
      clusterId: 'c1',
      token: '',
      addressOf: () => undefined,
      log: silentLogger,
    });
    t.send([hb('n1', 'n7'), hb('n1', 'n7')]);
    expect(t.counters['dropped.no-address']).toBe(2);
    t.close();
  });
});
