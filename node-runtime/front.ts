// The Node server's front door: peer traffic (/raft/messages) is handled here, everything else
// goes to the shared router. The cluster token guards what a stranger must not do: send Raft
// messages, and change membership or leadership. A wrong or missing token is 401 before
// anything is read or applied; a peer of another cluster (X-Metcd-Cluster) is 403.

import { createHash, timingSafeEqual } from 'node:crypto';
import { decodeMessages, RaftCodecError } from '../worker/raft/codec.ts';
import type { Peer } from '../worker/peer/peer.ts';
import type { NodeId } from '../worker/raft/types.ts';
import type { Logger } from './log.ts';
import { CLUSTER_HEADER, RAFT_PATH } from './transport.ts';
import type { Faults } from './faults.ts';
import { errorResponse } from '../worker/api/http.ts';
import { changesCluster } from '../worker/api/router.ts';
import { readBodyBytes } from '../worker/api/body.ts';

/** The body, or null when it is over `bytesMax` (read under the cap; see worker/api/body.ts). */
async function readCapped(request: Request, bytesMax: number): Promise<Uint8Array | null> {
  try {
    return await readBodyBytes(request, bytesMax);
  } catch {
    return null;
  }
}

export interface FrontOptions {
  selfId: NodeId;
  clusterId: string;
  /** '' = no token configured: nothing is checked (the CLI warns loudly). */
  token: string;
  /** Undefined until the peer has opened (requests meanwhile get 503). */
  peer(): Peer | undefined;
  router: { fetch(request: Request): Promise<Response> };
  /** Largest Raft request body read. */
  raftBodyBytesMax: number;
  log: Logger;
  /** Present only with --enable-fault-injection (tests). */
  faults?: Faults;
}

const FAULTS_PATH = '/_metcd/faults';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function tokenMatches(header: string | null, token: string): boolean {
  if (token === '') return true;
  if (header === null || !header.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice('Bearer '.length)), digest(token));
}

const json = errorResponse;



export function createFront(opts: FrontOptions): (request: Request) => Promise<Response> {
  const unauthorized = () =>
    json(401, 'unauthorized', 'missing or wrong cluster token (Authorization: Bearer <token>)', { 'WWW-Authenticate': 'Bearer realm="metcd"' });
  let droppedMisaddressed = 0;

  async function raft(request: Request, peer: Peer): Promise<Response> {
    if (request.method !== 'POST') return json(405, 'method_not_allowed', 'use POST', { Allow: 'POST' });
    if (!tokenMatches(request.headers.get('authorization'), opts.token)) return unauthorized();
    const cluster = request.headers.get(CLUSTER_HEADER);
    if (cluster !== opts.clusterId) {
      return json(403, 'wrong_cluster', `this node belongs to cluster ${opts.clusterId}, not ${String(cluster)}`);
    }
    const body = await readCapped(request, opts.raftBodyBytesMax);
    if (body === null) return json(413, 'too_large', `raft batch above ${opts.raftBodyBytesMax} bytes`, { Connection: 'close' });
    let msgs;
    try {
      msgs = decodeMessages(body);
    } catch (err) {
      if (err instanceof RaftCodecError) return json(400, 'bad_request', `undecodable raft batch: ${err.message}`);
      throw err;
    }
    const faults = opts.faults;
    const mine = msgs.filter((m) => m.to === opts.selfId && !(faults?.dropFrom.has(m.from) ?? false));
    if (mine.length !== msgs.length) {
      droppedMisaddressed += msgs.length - mine.length;
      opts.log.debug('dropped misaddressed raft messages', { count: msgs.length - mine.length, total: droppedMisaddressed });
    }
    peer.receive(mine);
    return new Response(null, { status: 204 });
  }

  async function faultsRoute(request: Request, faults: Faults): Promise<Response> {
    if (!tokenMatches(request.headers.get('authorization'), opts.token)) return unauthorized();
    if (request.method === 'POST') {
      const body = await readCapped(request, 64 * 1024);
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(body ?? new Uint8Array(0)).toString('utf8'));
      } catch {
        return json(400, 'bad_request', 'faults body must be JSON');
      }
      const problem = faults.set(parsed);
      if (problem !== null) return json(400, 'bad_request', problem);
      opts.log.warn('fault injection set', { faults: JSON.stringify(faults) });
    } else if (request.method !== 'GET') {
      return json(405, 'method_not_allowed', 'use GET or POST', { Allow: 'GET, POST' });
    }
    return new Response(JSON.stringify(faults), { status: 200, headers: { 'Content-Type': 'application/json' } });
  }

  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const peer = opts.peer();
    if (peer === undefined) return json(503, 'unavailable', 'node is starting', { 'Retry-After': '1' });
    if (url.pathname === RAFT_PATH) return raft(request, peer);
    if (url.pathname === FAULTS_PATH && opts.faults !== undefined) return faultsRoute(request, opts.faults);
    if (changesCluster(request) && !tokenMatches(request.headers.get('authorization'), opts.token)) {
      return unauthorized();
    }
    return opts.router.fetch(request);
  };
}
