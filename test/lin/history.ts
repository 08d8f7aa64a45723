// The record of one client operation in a concurrent history, as the simulator logs it and the
// linearizability checker reads it. Times are whatever the simulator counts in (ticks, steps);
// only their order matters. Two operations whose call and return times touch (one returns at
// t, the other is called at t) are treated as concurrent.
//
// How to fill outputs from the KV state machine's answers (worker/kv/types.ts KvResult):
//   get     value and modRevision of the record read; null and 0 when the key is absent.
//   put     revision = KvResult.revision (the write's revision = the key's new mod revision).
//   delete  revision = KvResult.revision, deleted = KvResult.deleted (0 or 1 for one key).
//   cas     a put (or delete-less write) with compare {key, modRevision: expectModRevision}:
//           ok = true with revision = KvResult.revision when it wrote; ok = false on
//           compare-failed (revision is not checked then: either the store's revision or
//           `actual` is fine).
//   unknown the client never learned the outcome (timeout, crash, leader lost): the operation
//           may or may not have taken effect, at any time after its call. ret is Infinity
//           (the checker treats any unknown output as ret = Infinity).

export type KvInput =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'delete'; key: string }
  | { op: 'cas'; key: string; expectModRevision: number; value: string };

export type KvOutput =
  | { kind: 'get'; value: string | null; modRevision: number } // modRevision 0 when absent
  | { kind: 'put'; revision: number }
  | { kind: 'delete'; revision: number; deleted: number }
  | { kind: 'cas'; ok: boolean; revision: number }
  | { kind: 'unknown' }; // timed out / crashed: may or may not have taken effect

export interface Operation {
  client: number;
  input: KvInput;
  output: KvOutput;
  call: number;
  /** Infinity when the output is unknown. */
  ret: number;
}

function quote(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 42 ? `${q.slice(0, 40)}…"` : q;
}

/** One line describing an operation, for failure explanations. */
export function describeOp(op: Operation): string {
  const i = op.input;
  const args =
    i.op === 'get' || i.op === 'delete'
      ? quote(i.key)
      : i.op === 'put'
        ? `${quote(i.key)}, ${quote(i.value)}`
        : `${quote(i.key)}, expect ${i.expectModRevision}, ${quote(i.value)}`;
  const o = op.output;
  const out =
    o.kind === 'unknown'
      ? '?'
      : o.kind === 'get'
        ? `${o.value === null ? 'null' : quote(o.value)} @${o.modRevision}`
        : o.kind === 'put'
          ? `rev ${o.revision}`
          : o.kind === 'delete'
            ? `deleted ${o.deleted} rev ${o.revision}`
            : `${o.ok ? 'ok' : 'failed'} rev ${o.revision}`;
  return `client ${op.client} ${i.op}(${args}) → ${out} [${op.call}, ${op.ret}]`;
}
