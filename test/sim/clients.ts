// Simulated clients. Each runs one operation at a time (put, get at each read level, delete,
// CAS), retries it on refusals and timeouts — writes with the SAME client stamp, so a retry
// that Raft commits twice must apply once — and records the history the linearizability
// checker reads. Timestamps are a global event counter, so real-time order is exact.

import type { NodeId } from '../../worker/raft/types.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';
import type { KvCommand, KvResult } from '../../worker/kv/types.ts';
import type { KvInput, KvOutput, Operation } from '../lin/history.ts';
import type { NodeAnswer, NodeRequest, ReadLevel } from './host.ts';
import { violation } from './violation.ts';

export interface ClientEnv {
  /** Nodes a client may talk to (started, not retired). */
  targets(): NodeId[];
  send(target: NodeId, req: NodeRequest): void;
  now(): number;
  /** Next value of the global event counter (call and return stamps). */
  stamp(): number;
  trace(line: string): void;
  readonly tracing: boolean;
}

export interface ClientTiming {
  /** No answer within this many ticks: the attempt is presumed lost, retry elsewhere. */
  attemptTimeoutTicks: number;
  /** During the chaos phase an operation is abandoned after this long (recorded as unknown). */
  giveUpTicks: number;
}

interface PendingOp {
  /** A session's first command (seq 1), a delete of a key no one writes: see `registers`. */
  register: boolean;
  input: KvInput;
  level: ReadLevel | null;
  /** The command for writes: every retry sends the same one (same stamp). */
  data: KvCommand | null;
  call: number;
  startTick: number;
  reqId: number;
  target: NodeId;
  attemptDeadline: number;
  retryAt: number;
  attempts: number;
}

interface ClientState {
  index: number;
  /** The client id of its current session (`c1`, then `c1.2`, … after a session expired). */
  name: string;
  generation: number;
  /** Whether a write of its current session was answered (so the session exists, unless
   *  dropped); where clients register, that is the registration. */
  sessionKnown: boolean;
  seq: number;
  op: PendingOp | null;
  leaderHint: NodeId;
  /** Mod revision this client last saw per key (CAS expectations come from here). */
  seenModRevision: Map<string, number>;
}

export interface ClientStats {
  started: number;
  completed: number;
  abandoned: number;
  attempts: number;
  refused: number;
  timeouts: number;
  /** Writes refused at the space quota (not applied). */
  noSpace: number;
  /** Sessions begun (registrations answered), and writes answered session-expired. */
  registrations: number;
  sessionExpired: number;
}

export class SimClients {
  readonly history: Operation[] = [];
  readonly staleReads: Operation[] = [];
  readonly stats: ClientStats = {
    started: 0,
    completed: 0,
    abandoned: 0,
    attempts: 0,
    refused: 0,
    timeouts: 0,
    noSpace: 0,
    registrations: 0,
    sessionExpired: 0,
  };
  private readonly clients: ClientState[] = [];
  private readonly inflight = new Map<number, ClientState>();
  private readonly random: SeededRandom;
  private readonly env: ClientEnv;
  private readonly keys: string[];
  private readonly timing: ClientTiming;
  private nextReqId = 1;
  /**
   * Whether the session table may drop a client's session (small limits on this run). Then each
   * session begins with a registration — seq 1 is a delete of a key no one writes, harmless if a
   * retry applies it again after its session was dropped — and a write answered session-expired
   * ends the session (its outcome unknown if an earlier attempt may have applied); the client
   * carries on under a new id. Without drops, session-expired means exactly-once broke.
   */
  private readonly registers: boolean;
  /** Whether writes may go as transactions (their JSON entries need room: seeds with tiny entry caps do not). */
  private readonly transactions: boolean;

  constructor(
    random: SeededRandom,
    count: number,
    keyCount: number,
    timing: ClientTiming,
    env: ClientEnv,
    registers = false,
    transactions = false,
  ) {
    this.random = random;
    this.env = env;
    this.timing = timing;
    this.registers = registers;
    this.transactions = transactions;
    this.keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
    for (let i = 0; i < count; i++) {
      this.clients.push({
        index: i,
        name: `c${i}`,
        generation: 1,
        sessionKnown: false,
        seq: 0,
        op: null,
        leaderHint: '',
        seenModRevision: new Map(),
      });
    }
  }

  pendingCount(): number {
    let n = 0;
    for (const c of this.clients) if (c.op !== null) n++;
    return n;
  }

  describePending(): string {
    const now = this.env.now();
    return this.clients
      .filter((c) => c.op !== null)
      .map((c) => {
        const op = c.op!;
        return (
          `${c.name} ${describe(op.input, op.level)} since tick ${op.startTick}, ${op.attempts} attempts, ` +
          (op.reqId !== 0 ? `waiting on ${op.target} until ${op.attemptDeadline}` : `next try at ${op.retryAt}`) +
          ` (now ${now})`
        );
      })
      .join('; ');
  }

  /**
   * One tick: time out lost attempts, send retries, and (when `startPercent` > 0) let idle
   * clients start operations. `canGiveUp` is false once faults healed: from then on every
   * operation must complete.
   */
  tick(startPercent: number, canGiveUp: boolean): void {
    const now = this.env.now();
    for (const c of this.clients) {
      if (c.op === null) {
        if (startPercent > 0 && this.random.nextInt(100) < startPercent) this.start(c);
        else continue;
      }
      const op = c.op!;
      if (op.reqId !== 0 && now >= op.attemptDeadline) {
        this.stats.timeouts++;
        this.inflight.delete(op.reqId);
        op.reqId = 0;
        c.leaderHint = '';
        op.retryAt = now;
      }
      if (canGiveUp && now - op.startTick >= this.timing.giveUpTicks) {
        this.abandon(c);
        continue;
      }
      if (op.reqId === 0 && now >= op.retryAt) this.attempt(c);
    }
  }

  onAnswer(reqId: number, from: NodeId, answer: NodeAnswer): void {
    const c = this.inflight.get(reqId);
    if (c === undefined) return; // an earlier attempt's answer: the client moved on
    const op = c.op!;
    this.inflight.delete(reqId);
    op.reqId = 0;
    const now = this.env.now();
    if (answer.kind === 'refused') {
      this.stats.refused++;
      c.leaderHint = answer.leader !== from ? answer.leader : '';
      // Back off a little more after repeated refusals (an election is likely under way).
      op.retryAt = now + 1 + Math.min(op.attempts, 8);
      return;
    }
    if (answer.kind === 'dropped') {
      c.leaderHint = '';
      op.retryAt = now;
      return;
    }
    if (answer.kind === 'no-space') {
      // Refused before it was proposed; an earlier attempt may still have been: unknown then.
      this.stats.noSpace++;
      if (op.attempts > 1)
        this.history.push({ client: c.index, input: op.input, output: { kind: 'unknown' }, call: op.call, ret: Infinity });
      c.op = null;
      return;
    }
    c.leaderHint = from;
    if (op.register) {
      if (answer.kind !== 'write' || !answer.result.ok) {
        violation('client-session', `${c.name} registration answered ${JSON.stringify(answer)}`);
      }
      c.sessionKnown = true;
      c.op = null;
      this.stats.registrations++;
      if (this.env.tracing) this.env.trace(`${c.name} session begun`);
      return;
    }
    if (answer.kind === 'write') {
      // Session-expired is expected where sessions may drop, and where none of this session's
      // writes was ever answered (its first may never have applied: a session begins at seq 1).
      // Otherwise the session was lost while it had to exist: writeOutput fails the run.
      if (!answer.result.ok && answer.result.code === 'session-expired' && (this.registers || !c.sessionKnown)) {
        this.sessionExpired(c, op);
        return;
      }
      c.sessionKnown = true;
    }
    if (answer.kind === 'keepalive') return; // never asked by a client (lease-actor.ts)
    const output =
      answer.kind === 'read'
        ? { kind: 'get' as const, value: answer.value, modRevision: answer.modRevision }
        : this.writeOutput(c, op, answer.result);
    this.finish(c, output);
  }

  private writeOutput(c: ClientState, op: PendingOp, result: KvResult): KvOutput {
    const input = op.input;
    if (result.ok && result.op === 'txn') {
      const first = result.results[0];
      if (input.op === 'cas') return { kind: 'cas', ok: result.succeeded, revision: result.revision };
      if (input.op === 'put' && first !== undefined && 'put' in first) return { kind: 'put', revision: result.revision };
      if (input.op === 'delete' && first !== undefined && 'delete' in first) {
        return { kind: 'delete', revision: result.revision, deleted: first.delete.deleted };
      }
    }
    if (result.ok) {
      if (result.op === 'put')
        return input.op === 'cas' ? { kind: 'cas', ok: true, revision: result.revision } : { kind: 'put', revision: result.revision };
      if (result.op === 'delete') return { kind: 'delete', revision: result.revision, deleted: result.deleted };
    }
    if (!result.ok && result.code === 'compare-failed' && input.op === 'cas') return { kind: 'cas', ok: false, revision: result.revision };
    // The client never reuses an older stamp after moving on, so its current command can
    // neither be rejected as stale nor as invalid: either means exactly-once is broken.
    return violation('client-session', `${c.name} seq ${c.seq} ${input.op} ${input.key} answered ${JSON.stringify(result)}`);
  }

  /** The session is gone: this write was refused unapplied, an earlier attempt may have applied. */
  private sessionExpired(c: ClientState, op: PendingOp): void {
    this.stats.sessionExpired++;
    if (op.attempts > 1) this.history.push({ client: c.index, input: op.input, output: { kind: 'unknown' }, call: op.call, ret: Infinity });
    if (this.env.tracing)
      this.env.trace(
        `${c.name} session expired at seq ${c.seq}: ${describe(op.input, op.level)} outcome ${op.attempts > 1 ? 'unknown' : 'not applied'}`,
      );
    c.generation++;
    c.name = `c${c.index}.${c.generation}`;
    c.seq = 0;
    c.sessionKnown = false;
    c.op = null;
  }

  /** An operation about to make its first attempt now. */
  private pendingOp(register: boolean, input: KvInput, level: ReadLevel | null, data: KvCommand | null, call: number): PendingOp {
    const now = this.env.now();
    return { register, input, level, data, call, startTick: now, reqId: 0, target: '', attemptDeadline: 0, retryAt: now, attempts: 0 };
  }

  private startRegistration(c: ClientState): void {
    c.seq = 1;
    const input: KvInput = { op: 'delete', key: `_session/${c.name}` };
    // No call stamp: a registration is not part of the checked history.
    c.op = this.pendingOp(true, input, null, toCommand(input, c.name, c.seq), 0);
    if (this.env.tracing) this.env.trace(`${c.name} call register seq=1`);
  }

  private start(c: ClientState): void {
    if (this.registers && !c.sessionKnown) return this.startRegistration(c);
    const key = this.keys[this.random.nextInt(this.keys.length)]!;
    const roll = this.random.nextInt(100);
    let input: KvInput;
    let level: ReadLevel | null = null;
    if (roll < 25) input = { op: 'put', key, value: `${c.name}.${c.seq + 1}` };
    else if (roll < 45) {
      input = { op: 'get', key };
      level = 'consistent';
    } else if (roll < 60) {
      input = { op: 'get', key };
      level = 'default';
    } else if (roll < 70) {
      input = { op: 'get', key };
      level = 'stale';
    } else if (roll < 80) input = { op: 'delete', key };
    else {
      // Usually the mod revision last seen (likely to succeed), sometimes a guess.
      const seen = c.seenModRevision.get(key) ?? 0;
      const expect = this.random.nextInt(4) === 0 ? this.random.nextInt(seen + 3) : seen;
      input = { op: 'cas', key, expectModRevision: expect, value: `${c.name}.${c.seq + 1}` };
    }
    let data: KvCommand | null = null;
    if (level === null) {
      c.seq++;
      // A third of the writes go as single-key transactions (POST /txn): the same checks cover them.
      data = toCommand(input, c.name, c.seq, this.transactions && this.random.nextInt(3) === 0);
    }
    c.op = this.pendingOp(false, input, level, data, this.env.stamp());
    this.stats.started++;
    if (this.env.tracing) this.env.trace(`${c.name} call ${describe(input, level)}${data !== null ? ` seq=${c.seq}` : ''}`);
  }

  private attempt(c: ClientState): void {
    const op = c.op!;
    const targets = this.env.targets();
    if (targets.length === 0) {
      op.retryAt = this.env.now() + 1;
      return;
    }
    // Mostly follow the leader hint; sometimes try anyone (clients with stale or partial views).
    let target = c.leaderHint;
    if (target === '' || !targets.includes(target) || this.random.nextInt(4) === 0) {
      target = targets[this.random.nextInt(targets.length)]!;
    }
    const reqId = this.nextReqId++;
    op.reqId = reqId;
    op.target = target;
    op.attempts++;
    op.attemptDeadline = this.env.now() + this.timing.attemptTimeoutTicks;
    this.inflight.set(reqId, c);
    this.stats.attempts++;
    const req: NodeRequest =
      op.data !== null ? { kind: 'write', reqId, cmd: op.data } : { kind: 'read', reqId, key: op.input.key, level: op.level! };
    this.env.send(target, req);
  }

  private finish(c: ClientState, output: KvOutput): void {
    const op = c.op!;
    const record: Operation = { client: c.index, input: op.input, output, call: op.call, ret: this.env.stamp() };
    if (op.level === 'stale') this.staleReads.push(record);
    else this.history.push(record);
    if (output.kind === 'get') c.seenModRevision.set(op.input.key, output.modRevision);
    if (output.kind === 'put') c.seenModRevision.set(op.input.key, output.revision);
    if (output.kind === 'cas' && output.ok) c.seenModRevision.set(op.input.key, output.revision);
    if (output.kind === 'delete') c.seenModRevision.set(op.input.key, 0);
    c.op = null;
    this.stats.completed++;
    if (this.env.tracing) this.env.trace(`${c.name} ret ${describe(op.input, op.level)} -> ${JSON.stringify(output)}`);
  }

  /** Give up: a write's fate is unknown (it may still apply), a read simply never happened. */
  private abandon(c: ClientState): void {
    const op = c.op!;
    if (op.reqId !== 0) this.inflight.delete(op.reqId);
    if (op.level === null && !op.register) {
      this.history.push({ client: c.index, input: op.input, output: { kind: 'unknown' }, call: op.call, ret: Infinity });
    }
    c.op = null;
    this.stats.abandoned++;
    if (this.env.tracing) this.env.trace(`${c.name} gave up ${describe(op.input, op.level)}`);
  }
}

function toCommand(input: KvInput, client: string, seq: number, asTxn = false): KvCommand {
  const stamp = { client, seq };
  if (asTxn) return toTxn(input, stamp);
  switch (input.op) {
    case 'put':
      return { op: 'put', pairs: [[input.key, input.value]], stamp };
    case 'cas':
      return { op: 'put', pairs: [[input.key, input.value]], compare: { key: input.key, modRevision: input.expectModRevision }, stamp };
    case 'delete':
      return { op: 'delete', keys: [input.key], stamp };
    case 'get':
      throw new Error('reads are not commands');
  }
}

/** The same write as a transaction: a CAS compares the key's mod revision, then puts. */
function toTxn(input: KvInput, stamp: { client: string; seq: number }): KvCommand {
  switch (input.op) {
    case 'put':
      return { op: 'txn', compare: [], success: [{ put: { key: input.key, value: input.value } }], failure: [], stamp };
    case 'cas':
      return {
        op: 'txn',
        compare: [{ key: input.key, target: 'modRevision', result: '==', value: input.expectModRevision }],
        success: [{ put: { key: input.key, value: input.value } }],
        failure: [],
        stamp,
      };
    case 'delete':
      return { op: 'txn', compare: [], success: [{ delete: { key: input.key } }], failure: [], stamp };
    case 'get':
      throw new Error('reads are not commands');
  }
}

function describe(input: KvInput, level: ReadLevel | null): string {
  switch (input.op) {
    case 'get':
      return `get(${level}) ${input.key}`;
    case 'put':
      return `put ${input.key}=${input.value}`;
    case 'delete':
      return `delete ${input.key}`;
    case 'cas':
      return `cas ${input.key}@${input.expectModRevision}=${input.value}`;
  }
}
