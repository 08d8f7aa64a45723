// The Node server's front door: peer traffic (/raft/messages) is handled here, everything else
// goes to the shared router. The cluster token guards what a stranger must not do: send Raft
// messages (checked here) and change membership or leadership (checked by the router on the
// route it resolves, with the hook node.ts gives it). A wrong or missing token is 401 before
// anything is read or applied; a peer of another cluster (X-Metcd-Cluster) is 403. On HTTPS, a
// route's client certificate is checked first (cert-auth.ts): 401 unauthenticated without one
// the route accepts.

import { decodeMessages, RaftCodecError } from '../worker/raft/codec.ts';
import type { Peer } from '../worker/peer/peer.ts';
import type { NodeId } from '../worker/raft/types.ts';
import type { Logger } from './log.ts';
import { ADDRESS_HEADER, CLUSTER_HEADER, FROM_HEADER, RAFT_PATH } from './transport.ts';
import type { Faults } from './faults.ts';
import { ApiError, errorReply, jsonReply } from '../worker/api/http.ts';
import { withPeerHeaders } from '../worker/api/router.ts';
import { tokenChecker } from './cluster-token.ts';
import type { ApiReply, ApiRequest } from '../worker/api/exchange.ts';
import type { Socket } from 'node:net';
import type { CertAuth } from './cert-auth.ts';

/** The body, or null when it is over `bytesMax` (read under the cap; see node-request.ts). */
async function readCapped(request: ApiRequest, bytesMax: number): Promise<Uint8Array | null> {
  try {
    return await request.body(bytesMax);
  } catch (err) {
    if (err instanceof ApiError) return null;
    throw err;
  }
}

export interface FrontOptions {
  selfId: NodeId;
  clusterId: string;
  /** '' = no token configured: nothing is checked (the CLI warns loudly). */
  token: string;
  /** Undefined until the peer has opened (requests meanwhile get 503). */
  peer(): Peer | undefined;
  router: { handle(request: ApiRequest): Promise<ApiReply> };
  /** Largest Raft request body read. */
  raftBodyBytesMax: number;
  log: Logger;
  /** Present only with --enable-fault-injection (tests). */
  faults?: Faults;
  /** Client certificate checks (--client-cert-auth, --peer-client-cert-auth); none without. */
  certAuth?: CertAuth | null;
  /** A sender whose messages the peer stepped names the address it answers at (X-Metcd-Address). */
  learn?(from: NodeId, address: string): void;
}

/** A request and the connection it came on (node-request.ts). */
export type FrontRequest = ApiRequest & { readonly socket?: Socket };

const FAULTS_PATH = '/_metcd/faults';

const json = errorReply;

/** 401 for a missing or unacceptable client certificate: no WWW-Authenticate (a Bearer token
 *  would not help) and no X-Metcd-* headers (a stranger learns nothing). */
const unauthenticated = (message: string): ApiReply => json(401, 'unauthenticated', message);

const isRaftPath = (path: string) => path === '/raft' || path.startsWith('/raft/');

export function createFront(opts: FrontOptions): (request: FrontRequest) => Promise<ApiReply> {
  const tokenOk = tokenChecker(opts.token);
  const unauthorized = () =>
    json(401, 'unauthenticated', 'missing or wrong cluster token (Authorization: Bearer <token>)', {
      'WWW-Authenticate': 'Bearer realm="metcd"',
    });
  let droppedMisaddressed = 0;

  async function raft(request: ApiRequest, peer: Peer): Promise<ApiReply> {
    if (request.method !== 'POST') return json(405, 'method_not_allowed', 'use POST', { Allow: 'POST' });
    if (!tokenOk(request.header('authorization'))) return unauthorized();
    const cluster = request.header(CLUSTER_HEADER);
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
    const stepped = peer.receive(mine);
    // Only a sender the peer listened to (a member, or a leader it follows) is answered at the
    // address it names: the answers carry the cluster token.
    const from = request.header(FROM_HEADER);
    const address = request.header(ADDRESS_HEADER);
    if (stepped > 0 && from !== null && address !== null && mine.every((m) => m.from === from)) opts.learn?.(from, address);
    return { status: 204, headers: {}, body: null };
  }

  async function faultsRoute(request: ApiRequest, faults: Faults): Promise<ApiReply> {
    if (!tokenOk(request.header('authorization'))) return unauthorized();
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
    return jsonReply(faults);
  }

  return async (request: FrontRequest): Promise<ApiReply> => {
    const url = request.url;
    const refusal = opts.certAuth?.refusal(request.socket, isRaftPath(url.pathname) ? 'peer' : 'client') ?? null;
    if (refusal !== null) return unauthenticated(refusal);
    const peer = opts.peer();
    if (peer === undefined) return json(503, 'unavailable', 'node is starting', { 'Retry-After': '1' });
    if (url.pathname === RAFT_PATH) {
      const reply = await raft(request, peer);
      return reply.status === 204 ? reply : withPeerHeaders(reply, peer); // accepted peer traffic needs none
    }
    // The front door's own answers carry the same X-Metcd-* headers as the router's.
    if (url.pathname === FAULTS_PATH && opts.faults !== undefined) return withPeerHeaders(await faultsRoute(request, opts.faults), peer);
    // Membership and leadership changes are guarded in the router, on the route it resolves
    // (node.ts hands it nodeAuthorizer, access.ts): no spelling of their paths gets past.
    return opts.router.handle(request);
  };
}
