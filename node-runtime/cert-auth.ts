// Which routes a TLS client may call, decided by the CA that vouches for its certificate.
//
// One listener serves clients and peers, so the handshake cannot pick one CA: the server asks
// every client for a certificate, trusts both CAs, and lets a handshake without an acceptable
// certificate complete (rejectUnauthorized: false), so that a refusal is a 401 in JSON rather
// than a reset connection. The front door then asks, per request, whether the CA this route
// needs issued the certificate:
//   /raft/*        the peer CA (--peer-client-cert-auth)
//   anything else  the client CA or the peer CA (--client-cert-auth): a member forwards its
//                  clients' requests (proxy mode) and asks to join with its peer certificate.
// OpenSSL has verified the chain against both CA files (socket.authorized); what is left is to
// tell which file vouches for it, once per connection: the one holding the certificate's issuer.
// Node does not hand a server the intermediates a client sent, so a certificate issued by an
// intermediate that is in neither file counts for both files only when they hold the same CAs
// (or only one is given); otherwise the intermediate must be added to its file.

import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export type CertRoute = 'client' | 'peer';

export interface CertAuthOptions {
  clientCas: X509Certificate[];
  peerCas: X509Certificate[];
  /** --client-cert-auth */
  requireClient: boolean;
  /** --peer-client-cert-auth */
  requirePeer: boolean;
}

/** What a connection's certificate proves: which CAs issued it, or why none did. */
interface Standing {
  client: boolean;
  peer: boolean;
  /** Why the certificate counts for nothing ('' when some CA issued it). */
  why: string;
}

/** Whether one of `cas` is `cert` itself or signed it. */
export function issuedBy(cert: X509Certificate, cas: readonly X509Certificate[]): boolean {
  return cas.some((ca) => ca.fingerprint256 === cert.fingerprint256 || (cert.checkIssued(ca) && cert.verify(ca.publicKey)));
}

const sameCas = (a: readonly X509Certificate[], b: readonly X509Certificate[]) =>
  a.length === b.length && a.every((ca) => b.some((other) => other.fingerprint256 === ca.fingerprint256));

export class CertAuth {
  private readonly opts: CertAuthOptions;
  private readonly standings = new WeakMap<Socket, Standing>();

  constructor(opts: CertAuthOptions) {
    this.opts = opts;
  }

  /** Null when a request on `socket` may go to `route`; otherwise why not (said in the 401). */
  refusal(socket: Socket | undefined, route: CertRoute): string | null {
    if (route === 'peer' ? !this.opts.requirePeer : !this.opts.requireClient) return null;
    const s = this.standing(socket);
    if (route === 'peer' ? s.peer : s.client || s.peer) return null;
    const because = s.why !== '' ? s.why : 'the client certificate was issued by another CA';
    return route === 'peer'
      ? `/raft/* needs a certificate issued by the peer CA: ${because}`
      : `this node needs a client certificate issued by a CA it trusts: ${because}`;
  }

  private standing(socket: Socket | undefined): Standing {
    if (socket === undefined) return { client: false, peer: false, why: 'not a TLS connection' };
    let s = this.standings.get(socket);
    if (s === undefined) {
      s = this.judge(socket as TLSSocket);
      this.standings.set(socket, s);
    }
    return s;
  }

  private judge(socket: TLSSocket): Standing {
    const leaf = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    if (leaf === undefined) return { client: false, peer: false, why: 'no client certificate presented' };
    if (!socket.authorized) {
      const error = socket.authorizationError as unknown;
      const code = error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.message) : String(error);
      return { client: false, peer: false, why: `the client certificate is not trusted (${code})` };
    }
    const { clientCas, peerCas } = this.opts;
    const client = issuedBy(leaf, clientCas);
    const peer = issuedBy(leaf, peerCas);
    if (client || peer) return { client, peer, why: '' };
    // Verified through an intermediate the client sent: only an unambiguous trust store says whose.
    if (peerCas.length === 0 || sameCas(clientCas, peerCas)) return { client: true, peer: peerCas.length > 0, why: '' };
    if (clientCas.length === 0) return { client: false, peer: true, why: '' };
    return {
      client: false,
      peer: false,
      why: 'its issuing intermediate CA is in neither --trusted-ca-file nor --peer-trusted-ca-file (add it to its file)',
    };
  }
}
