// The connection pools this node calls other members with, one per scheme. For https:// members
// the agent presents this node's peer certificate (--peer-cert-file, --peer-key-file) and checks
// theirs against --peer-trusted-ca-file (the system's CAs without it). The server's certificate
// is always verified, name included: nothing here turns that off.

import { Agent as HttpAgent, request as httpRequest, type AgentOptions, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';

/** https.Agent's TLS options for calls to members. */
export interface PeerTlsOptions {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

export class PeerAgents {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  /** `pool` applies to both schemes (keep-alive, sockets per member). */
  constructor(tls: PeerTlsOptions, pool: AgentOptions) {
    this.http = new HttpAgent(pool);
    this.https = new HttpsAgent({ ...pool, ...tls });
  }

  /** A request to `url` through the pool of its scheme (http: or https:). */
  request(url: URL, options: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
    if (url.protocol === 'https:') return httpsRequest(url, { ...options, agent: this.https }, onResponse);
    return httpRequest(url, { ...options, agent: this.http }, onResponse);
  }

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}
