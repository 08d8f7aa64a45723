// Raft messages between Node peers: per destination, a bounded queue and one HTTP request in
// flight on a keep-alive connection; everything queued while a request is out leaves together
// in the next one, encoded with the core's binary codec (worker/raft/codec.ts).
//
// Fire-and-forget, as PeerTransport says: a dead, slow or paused peer only costs its own queue,
// which drops its OLDEST messages when full (newer heartbeats and appends supersede them; Raft
// retransmits what matters). Every request carries the cluster token and cluster id; to an
// https:// member it goes over TLS with this node's peer certificate (peer-agents.ts).

import { encodeMessages } from '../worker/raft/codec.ts';
import type { Message, NodeId } from '../worker/raft/types.ts';
import type { PeerTransport } from '../worker/peer/ports.ts';
import { Outbox } from '../worker/peer/outbox.ts';
import type { OutboxLimits } from '../worker/peer/outbox.ts';
import type { Logger } from './log.ts';
import type { Faults } from './faults.ts';
import { PeerAgents, type PeerTlsOptions } from './peer-agents.ts';

export const RAFT_PATH = '/raft/messages';
export const CLUSTER_HEADER = 'X-Metcd-Cluster';
export const FROM_HEADER = 'X-Metcd-From';
/** The sender's advertised URL, so a member that does not know it yet (a joining node) can answer. */
export const ADDRESS_HEADER = 'X-Metcd-Address';

/** Queue bounds per destination (worker/peer/outbox.ts); batchBytesMax bounds one request. */
export interface TransportLimits extends OutboxLimits {
  /** A request not answered in this long is abandoned (a paused peer must not hold the queue). */
  requestTimeoutMs: number;
  /** Pause after a failed request before the next one to that peer. */
  retryDelayMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  queueMessagesMax: 4096,
  queueBytesMax: 64 * 1024 * 1024,
  batchBytesMax: 16 * 1024 * 1024,
  requestTimeoutMs: 2000,
  retryDelayMs: 50,
};

export interface TransportOptions {
  selfId: NodeId;
  /** This node's advertised URL. */
  advertise: string;
  clusterId: string;
  /** Sent as `Authorization: Bearer <token>`; '' sends none. */
  token: string;
  /** The advertised URL of a member, from the current membership. */
  addressOf(id: NodeId): string | undefined;
  log: Logger;
  limits?: Partial<TransportLimits>;
  /** Present only with --enable-fault-injection (tests). */
  faults?: Faults;
  /** For https:// members: the certificate to present and the CA to verify them with. */
  tls?: PeerTlsOptions;
}

/** How much of a refusal's body is read to find its error code. */
const REFUSAL_CHARS_MAX = 1024;

/** A peer's non-204 answer in a log line. Both refusals are 401: a token one asks for a Bearer
 *  token (WWW-Authenticate), a certificate one does not. */
function refusal(status: number, bearer: boolean, body: string): string {
  if (status === 401 && bearer) return 'peer rejected our cluster token (401)';
  if (status === 401) return 'peer refused our certificate (401): check --peer-cert-file against its --peer-trusted-ca-file';
  let code: unknown;
  try {
    code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    code = undefined;
  }
  return typeof code === 'string' ? `HTTP ${status} ${code}` : `HTTP ${status}`;
}

interface Destination {
  outbox: Outbox;
  busy: boolean;
  /** Rate-limits failure logs: one line per failure streak. */
  failing: boolean;
}

export class HttpTransport implements PeerTransport {
  private readonly opts: TransportOptions;
  private readonly limits: TransportLimits;
  private readonly agents: PeerAgents;
  private readonly outboxes = new Map<NodeId, Destination>();
  private closed = false;
  /** Counters, by reason, for /status-like diagnostics and tests. */
  readonly counters: Record<string, number> = { sent: 0, requests: 0 };

  constructor(opts: TransportOptions) {
    this.opts = opts;
    this.limits = { ...DEFAULT_TRANSPORT_LIMITS, ...opts.limits };
    this.agents = new PeerAgents(opts.tls ?? {}, { keepAlive: true, maxSockets: 4, keepAliveMsecs: 1000 });
  }

  send(messages: Message[]): void {
    if (this.closed) return;
    const touched = new Set<NodeId>();
    for (const m of messages) {
      if (m.to === this.opts.selfId) continue;
      if (this.opts.faults?.dropTo.has(m.to)) {
        this.count('dropped.fault');
        continue;
      }
      let box = this.outboxes.get(m.to);
      if (box === undefined) {
        box = { outbox: new Outbox(this.limits), busy: false, failing: false };
        this.outboxes.set(m.to, box);
      }
      const dropped = box.outbox.push(m);
      if (dropped > 0) this.count('dropped.queue-full', dropped);
      touched.add(m.to);
    }
    for (const to of touched) this.pump(to);
  }

  private count(reason: string, n = 1): void {
    this.counters[reason] = (this.counters[reason] ?? 0) + n;
  }

  private pump(to: NodeId): void {
    const box = this.outboxes.get(to);
    if (box === undefined || box.busy || box.outbox.length === 0 || this.closed) return;
    const address = this.opts.addressOf(to);
    if (address === undefined || address === '') {
      this.count('dropped.no-address', box.outbox.clear());
      return;
    }
    const batch = box.outbox.takeBatch();
    box.busy = true;
    this.post(to, address, batch).then(
      (ok) => {
        if (ok) {
          this.count('sent', batch.length);
          if (box.failing) this.opts.log.info('peer reachable again', { peer: to });
          box.failing = false;
          box.busy = false;
          this.pump(to);
        } else {
          this.count('dropped.send-failed', batch.length);
          setTimeout(() => {
            box.busy = false;
            this.pump(to);
          }, this.limits.retryDelayMs).unref();
        }
      },
      () => undefined,
    );
  }

  /** One POST of a batch; resolves true when the peer accepted it. Never rejects. */
  private post(to: NodeId, address: string, batch: Message[]): Promise<boolean> {
    const box = this.outboxes.get(to)!;
    const fail = (why: string): false => {
      if (!box.failing) this.opts.log.warn('cannot deliver to peer', { peer: to, address, error: why });
      box.failing = true;
      return false;
    };
    let url: URL;
    try {
      url = new URL(RAFT_PATH, address);
    } catch {
      return Promise.resolve(fail(`bad address ${JSON.stringify(address)}`));
    }
    const body = encodeMessages(batch);
    this.count('requests');
    return new Promise<boolean>((resolve) => {
      const headers: Record<string, string | number> = {
        'content-type': 'application/octet-stream',
        'content-length': body.length,
        [CLUSTER_HEADER]: this.opts.clusterId,
        [FROM_HEADER]: this.opts.selfId,
        [ADDRESS_HEADER]: this.opts.advertise,
      };
      if (this.opts.token !== '') headers['authorization'] = `Bearer ${this.opts.token}`;
      const req = this.agents.request(url, { method: 'POST', headers, timeout: this.limits.requestTimeoutMs }, (res) => {
        // A refusal's JSON error code says which check failed (cluster, size…).
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < REFUSAL_CHARS_MAX) text += chunk;
        });
        res.on('end', () => {
          if (res.statusCode === 204) return resolve(true);
          resolve(fail(refusal(res.statusCode ?? 0, res.headers['www-authenticate'] !== undefined, text)));
        });
        res.on('error', (err) => resolve(fail(err.message)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.limits.requestTimeoutMs} ms`)));
      req.on('error', (err) => resolve(fail((err as NodeJS.ErrnoException).code ?? err.message)));
      req.end(body);
    });
  }

  close(): void {
    this.closed = true;
    this.outboxes.clear();
    this.agents.destroy();
  }
}
