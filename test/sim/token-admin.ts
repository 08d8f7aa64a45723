// An administrator who creates and revokes API tokens now and then, on half the seeds whose
// entries may be that large. Tokens
// are commands in the log like any write (worker/kv/tokens.ts): records under metcd's own keys,
// indexed in memory by the digest of their secret and rebuilt from the records on restart and
// snapshot install. The run's convergence check compares every member's token set (host.ts
// stateDigest), so an index that lost or kept a token its records do not say fails the run.
// Answers are not tracked: ids repeat on purpose (a second create of an id is refused, a
// revoke of a missing id deletes nothing), and each replica must answer them alike.

import type { SeededRandom } from '../../worker/raft/random.ts';
import type { KvCommand, TokenRecord } from '../../worker/kv/types.ts';
import type { NodeCounters } from './counters.ts';
import type { SimCluster } from './cluster.ts';

const IDS = 6;
const PER_MILLE = 30;

export function drawTokenAdmin(random: SeededRandom): boolean {
  return random.nextInt(2) === 0;
}

export class TokenAdmin {
  private sent = 0;
  private readonly random: SeededRandom;
  private readonly cluster: SimCluster;
  private readonly counters: NodeCounters;
  private readonly log: (line: string) => void;

  constructor(random: SeededRandom, cluster: SimCluster, counters: NodeCounters, log: (line: string) => void) {
    this.random = random;
    this.cluster = cluster;
    this.counters = counters;
    this.log = log;
  }

  tick(): void {
    if (this.random.nextInt(1000) >= PER_MILLE) return;
    const targets = [...this.cluster.nodes.keys()];
    if (targets.length === 0) return;
    const target = targets[this.random.nextInt(targets.length)]!;
    const n = this.random.nextInt(IDS);
    const id = n.toString(16).padStart(16, '0');
    const cmd: KvCommand = this.random.nextInt(3) === 0 ? { op: 'token-delete', id } : { op: 'token-put', token: this.token(id) };
    this.sent++;
    this.counters.tokenCommands++;
    this.log(`token admin → ${target}: ${cmd.op} ${id}`);
    // Negative request ids: no client waits for them (SimClients ignores unknown ids).
    this.cluster.request(target, { kind: 'write', reqId: -this.sent, cmd });
  }

  private token(id: string): TokenRecord {
    const hash = (this.sent * 7919 + 1).toString(16).padStart(64, '0');
    return {
      id,
      name: `sim-${id.slice(-1)}`,
      hash,
      rules: [{ prefix: `k${this.random.nextInt(4)}`, access: (['read', 'write', 'readwrite'] as const)[this.random.nextInt(3)]! }],
      admin: this.random.nextInt(2) === 0,
      status: false,
      expiresAt: this.random.nextInt(2) === 0 ? null : 1 + this.random.nextInt(1000),
      createdAt: this.sent,
    };
  }
}
