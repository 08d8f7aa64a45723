// The check for stale reads, which are not linearizable by design (any replica answers from
// whatever it has applied) but must still never invent data: a stale read returns null (the
// key absent at some point) or a value written by some put or CAS that was called before the
// read returned. When the read also reports a mod revision that a known write to the key got,
// that write's value is the one it must return (a revision names exactly one write per key).

import type { Operation } from './history.ts';
import { describeOp } from './history.ts';

export type StaleReadResult = { result: 'ok' } | { result: 'illegal'; key: string; explanation: string };

interface KeyWrites {
  /** Earliest call time of a write of each value. */
  firstCallByValue: Map<string, number>;
  /** Value written at each revision, for writes whose revision is known. */
  valueByRevision: Map<number, string>;
}

/**
 * `writes`: every write of the run (other operations in it are ignored; failed CASes are not
 * writes, unknown-outcome ones may be). `reads`: the stale gets to check.
 */
export function checkStaleRead(writes: Operation[], reads: Operation[]): StaleReadResult {
  const byKey = new Map<string, KeyWrites>();
  for (const w of writes) {
    const i = w.input;
    if (i.op !== 'put' && i.op !== 'cas') continue;
    const o = w.output;
    if (o.kind === 'cas' && !o.ok) continue;
    let kw = byKey.get(i.key);
    if (kw === undefined) byKey.set(i.key, (kw = { firstCallByValue: new Map(), valueByRevision: new Map() }));
    const first = kw.firstCallByValue.get(i.value);
    if (first === undefined || w.call < first) kw.firstCallByValue.set(i.value, w.call);
    if (o.kind === 'put' || o.kind === 'cas') kw.valueByRevision.set(o.revision, i.value);
  }

  for (const r of reads) {
    const o = r.output;
    if (r.input.op !== 'get') throw new TypeError(`checkStaleRead: not a get: ${describeOp(r)}`);
    if (o.kind === 'unknown') continue;
    if (o.kind !== 'get') throw new TypeError(`checkStaleRead: output does not answer a get: ${describeOp(r)}`);
    const key = r.input.key;
    const illegal = (why: string): StaleReadResult => ({ result: 'illegal', key, explanation: `${why}: ${describeOp(r)}` });
    if (o.value === null) {
      if (o.modRevision !== 0) return illegal('an absent key read with a non-zero mod revision');
      continue;
    }
    const kw = byKey.get(key);
    const first = kw?.firstCallByValue.get(o.value);
    if (first === undefined) return illegal('read a value no put or CAS ever wrote');
    if (first > r.ret) return illegal(`read a value whose first write was called at ${first}, after the read returned`);
    if (!(o.modRevision > 0)) return illegal('a present key read with mod revision 0');
    const written = kw!.valueByRevision.get(o.modRevision);
    if (written !== undefined && written !== o.value) {
      return illegal(`read mod revision ${o.modRevision}, which wrote ${JSON.stringify(written)}, with another value`);
    }
  }
  return { result: 'ok' };
}
