// Concurrent KV histories generated from a real sequential run, for testing the checker: each
// operation takes effect on a KvStateMachine at a random instant between its call and its
// return, so the history is linearizable by construction. Some operations lose their answer
// (output unknown, ret = Infinity) and may or may not have been applied.

import { SeededRandom } from '../../worker/raft/random.ts';
import { KvStateMachine } from '../../worker/kv/index.ts';
import type { KvInput, KvOutput, Operation } from './history.ts';

export interface RandomHistoryOptions {
  seed: number;
  ops: number;
  keys: number;
  clients: number;
  /** Probability (0..1) that an operation's answer is lost. */
  unknownRate: number;
  /** Include deletes (default true). */
  deletes?: boolean;
}

export function randomHistory(o: RandomHistoryOptions): Operation[] {
  const rnd = new SeededRandom(o.seed);
  const sm = new KvStateMachine();
  let index = 0;
  let valueCounter = 0;

  // Each client runs its operations one after another; their effects interleave.
  const planned: Array<{ client: number; call: number; at: number; ret: number; lost: boolean; applied: boolean }> = [];
  const clientFree = new Array<number>(o.clients).fill(0);
  for (let i = 0; i < o.ops; i++) {
    const client = rnd.nextInt(o.clients);
    const call = clientFree[client]! + rnd.nextInt(5);
    const ret = call + 1 + rnd.nextInt(20);
    const at = call + rnd.nextFloat() * (ret - call);
    const lost = rnd.nextFloat() < o.unknownRate;
    planned.push({ client, call, at, ret, lost, applied: !lost || rnd.nextInt(2) === 0 });
    clientFree[client] = ret;
  }
  planned.sort((a, b) => a.at - b.at);

  const history: Operation[] = [];
  for (const p of planned) {
    const key = `k${rnd.nextInt(o.keys)}`;
    const kind = rnd.nextInt(10);
    let input: KvInput;
    if (kind < 4) input = { op: 'get', key };
    else if (kind < 7) input = { op: 'put', key, value: `v${++valueCounter}` };
    else if (kind < 8 && o.deletes !== false) input = { op: 'delete', key };
    else if (kind < 8) input = { op: 'get', key };
    else {
      const actual = sm.get(key)?.modRevision ?? 0;
      const expectModRevision = rnd.nextInt(2) === 0 ? actual : rnd.nextInt(actual + 2);
      input = { op: 'cas', key, expectModRevision, value: `v${++valueCounter}` };
    }
    let output: KvOutput = { kind: 'unknown' };
    if (p.applied) output = run(sm, ++index, input);
    history.push({ client: p.client, input, output: p.lost ? { kind: 'unknown' } : output, call: p.call, ret: p.lost ? Infinity : p.ret });
  }
  return history;
}

function run(sm: KvStateMachine, index: number, input: KvInput): KvOutput {
  switch (input.op) {
    case 'get': {
      const rec = sm.get(input.key);
      return { kind: 'get', value: rec?.value ?? null, modRevision: rec?.modRevision ?? 0 };
    }
    case 'put': {
      const r = sm.apply(index, { op: 'put', pairs: [[input.key, input.value]] });
      if (!r.ok) throw new Error(`put failed: ${JSON.stringify(r)}`);
      return { kind: 'put', revision: r.revision };
    }
    case 'delete': {
      const r = sm.apply(index, { op: 'delete', keys: [input.key] });
      if (!r.ok || r.op !== 'delete') throw new Error(`delete failed: ${JSON.stringify(r)}`);
      return { kind: 'delete', revision: r.revision, deleted: r.deleted };
    }
    case 'cas': {
      const r = sm.apply(index, {
        op: 'put',
        pairs: [[input.key, input.value]],
        compare: { key: input.key, modRevision: input.expectModRevision },
      });
      if (r.ok) return { kind: 'cas', ok: true, revision: r.revision };
      if (r.code !== 'compare-failed') throw new Error(`cas failed oddly: ${JSON.stringify(r)}`);
      return { kind: 'cas', ok: false, revision: r.revision };
    }
  }
}
