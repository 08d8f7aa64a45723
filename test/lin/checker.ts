// A linearizability checker for KV histories, after Wing & Gong and Lowe, as in Porcupine:
// depth-first search for an order of the operations that respects real time (an operation
// that returned before another was called comes first) and the sequential spec of the key
// (kv-model.ts), with a cache of (set of linearized operations, state) pairs already explored
// so each configuration is searched once. P-compositionality: a history is linearizable iff
// its per-key sub-histories are, so each key is checked on its own (small searches instead of
// one exponential one).
//
// An operation with an unknown outcome has ret = Infinity: it can be placed anywhere after its
// call, including after everything else, which is how "it never took effect" is expressed.
// The model is nondeterministic (an unknown CAS on an unknown mod revision may or may not
// write), so the search state is a set of model states, as in Porcupine's power-set model.
//
// Cost: near-linear for histories where few operations are concurrent, exponential in the
// worst case. Unknown-outcome writes are what hurt (each stays a candidate from its call to
// the end): e.g. 1,000 ops on one key with 10 clients check in ~0.3 s with 10% unknown
// outcomes, but 400 ops with 30 clients and 20% unknown exhaust a million steps. Keep
// unknown outcomes rare (clients retry with their session stamp until they get an answer);
// the step budget turns a too-large search into 'unknown' instead of a hang.

import type { Operation } from './history.ts';
import { describeOp } from './history.ts';
import type { KeyState } from './kv-model.ts';
import { describeState, INITIAL_KEY_STATE, stateKey, stepKey } from './kv-model.ts';

export { checkStaleRead } from './stale-read.ts';
export type { StaleReadResult } from './stale-read.ts';

export type CheckResult = { result: 'ok' } | { result: 'illegal'; key: string; explanation: string } | { result: 'unknown'; key: string };

export interface CheckOptions {
  /** Model steps allowed per key before giving up with 'unknown'. */
  stepBudget?: number;
}

export const DEFAULT_STEP_BUDGET = 1_000_000;

/**
 * Is the history linearizable? Keys are checked in sorted order; an illegal key is reported in
 * preference to one whose search ran out of budget.
 */
export function checkLinearizable(history: Operation[], opts: CheckOptions = {}): CheckResult {
  const stepBudget = opts.stepBudget ?? DEFAULT_STEP_BUDGET;
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    checkShape(op);
    // A read whose answer never arrived changes nothing and constrains nothing.
    if (op.input.op === 'get' && op.output.kind === 'unknown') continue;
    let ops = byKey.get(op.input.key);
    if (ops === undefined) byKey.set(op.input.key, (ops = []));
    ops.push(op);
  }
  let unknownKey: string | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const r = checkKey(byKey.get(key)!, stepBudget);
    if (r === 'ok') continue;
    if (r === 'unknown') {
      unknownKey ??= key;
      continue;
    }
    return { result: 'illegal', key, explanation: r.explanation };
  }
  return unknownKey === undefined ? { result: 'ok' } : { result: 'unknown', key: unknownKey };
}

function checkShape(op: Operation): void {
  const known = op.output.kind !== 'unknown';
  if (!(op.call <= op.ret) || (known && op.ret === Infinity) || Number.isNaN(op.call)) {
    throw new RangeError(`history: bad times on ${describeOp(op)} (need call <= ret, finite ret when the output is known)`);
  }
  if (known && op.output.kind !== op.input.op) {
    throw new TypeError(`history: output kind ${op.output.kind} does not answer a ${op.input.op}`);
  }
}

// ---- the search, for one key ---------------------------------------------------------------

/** A node of the doubly linked list of call and return events, in time order. */
interface Event {
  op: number;
  isCall: boolean;
  /** For a call: its return event. */
  match: Event | null;
  prev: Event | null;
  next: Event | null;
}

type States = KeyState[];

function statesKey(states: States): string {
  if (states.length === 1) return stateKey(states[0]!);
  return JSON.stringify(states.map(stateKey).sort());
}

/** Apply op `i` to every state; the union of the results (deduplicated), empty if impossible. */
function step(states: States, op: Operation): States {
  if (states.length === 1) return stepKey(states[0]!, op.input, op.output);
  const out: States = [];
  const seen = new Set<string>();
  for (const s of states) {
    for (const n of stepKey(s, op.input, op.output)) {
      const k = stateKey(n);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(n);
      }
    }
  }
  return out;
}

function buildEvents(ops: Operation[]): Event {
  const events: Array<{ time: number; ev: Event }> = [];
  ops.forEach((op, i) => {
    const ret: Event = { op: i, isCall: false, match: null, prev: null, next: null };
    const call: Event = { op: i, isCall: true, match: ret, prev: null, next: null };
    // An unknown outcome may take effect at any time after the call.
    events.push({ time: op.call, ev: call }, { time: op.output.kind === 'unknown' ? Infinity : op.ret, ev: ret });
  });
  // Calls before returns at equal times: touching operations count as concurrent.
  events.sort((a, b) => a.time - b.time || (a.ev.isCall === b.ev.isCall ? a.ev.op - b.ev.op : a.ev.isCall ? -1 : 1));
  const head: Event = { op: -1, isCall: false, match: null, prev: null, next: null };
  let last = head;
  for (const { ev } of events) {
    last.next = ev;
    ev.prev = last;
    last = ev;
  }
  return head;
}

/** Take a call and its return out of the list (the op is linearized). */
function lift(call: Event): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Undo lift (in reverse order). */
function unlift(call: Event): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

class Bitset {
  private readonly words: Uint16Array;
  constructor(bits: number) {
    this.words = new Uint16Array(Math.ceil(bits / 16));
  }
  set(i: number): void {
    this.words[i >>> 4]! |= 1 << (i & 15);
  }
  clear(i: number): void {
    this.words[i >>> 4]! &= ~(1 << (i & 15));
  }
  key(): string {
    let s = '';
    for (let i = 0; i < this.words.length; i += 4096) {
      s += String.fromCharCode(...this.words.subarray(i, i + 4096));
    }
    return s;
  }
}

function checkKey(ops: Operation[], stepBudget: number): 'ok' | 'unknown' | { explanation: string } {
  const head = buildEvents(ops);
  const linearized = new Bitset(ops.length);
  const cache = new Set<string>();
  const stack: Array<{ call: Event; states: States }> = [];
  let states: States = [INITIAL_KEY_STATE];
  let steps = 0;
  // The deepest linearization reached, for the explanation.
  let best: { order: number[]; states: States } = { order: [], states };

  // The candidates for the next place are the calls before the first pending return, tried in
  // call order.
  let ev = head.next!;
  while (head.next !== null) {
    if (ev.isCall) {
      if (++steps > stepBudget) return 'unknown';
      const next = step(states, ops[ev.op]!);
      if (next.length > 0) {
        linearized.set(ev.op);
        const key = `${linearized.key()}|${statesKey(next)}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ call: ev, states });
          states = next;
          lift(ev);
          if (stack.length > best.order.length) best = { order: stack.map((f) => f.call.op), states };
          ev = head.next!;
          continue;
        }
        linearized.clear(ev.op);
      }
      ev = ev.next!;
    } else {
      // No candidate works from here (this op must come before everything after its return):
      // backtrack to the previous choice and try the next one.
      const frame = stack.pop();
      if (frame === undefined) return { explanation: explain(ops, best) };
      ev = frame.call;
      states = frame.states;
      linearized.clear(ev.op);
      unlift(ev);
      ev = ev.next!;
    }
  }
  return 'ok';
}

const EXPLAIN_OPS_MAX = 8;

function explain(ops: Operation[], best: { order: number[]; states: States }): string {
  const done = new Set(best.order);
  const rest = ops.filter((_, i) => !done.has(i));
  const firstRet = Math.min(...rest.map((op) => (op.output.kind === 'unknown' ? Infinity : op.ret)));
  const candidates = rest.filter((op) => op.call <= firstRet);
  const lines = [
    `no linearization of the ${ops.length} operations on this key; the longest valid prefix has ${best.order.length}:`,
    ...(best.order.length > EXPLAIN_OPS_MAX ? ['  …'] : []),
    ...best.order.slice(-EXPLAIN_OPS_MAX).map((i) => `  ${describeOp(ops[i]!)}`),
    `leaving the key ${best.states.map(describeState).join(' or ')}, and no order of the rest works from there; the operations that could come next:`,
    ...candidates.slice(0, EXPLAIN_OPS_MAX).map((op) => `  ${describeOp(op)}`),
    ...(candidates.length > EXPLAIN_OPS_MAX ? [`  … and ${candidates.length - EXPLAIN_OPS_MAX} more`] : []),
  ];
  return lines.join('\n');
}
