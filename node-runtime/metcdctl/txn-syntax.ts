// etcdctl's txn input, read into metcd's /txn JSON: compares, a blank line, success requests, a
// blank line, failure requests. A compare is `TARGET("KEY") OP "VALUE"` (TARGET: value|val,
// version|ver, create|c, mod|m, lease; OP: = != < >); a request is `put KEY VALUE [--lease ID]`,
// `del KEY [--prefix]` or `get KEY [--prefix] [--limit N]`, words split as a shell would.

import { parseArgs } from 'node:util';
import type { Txn, TxnCompare, TxnOp } from '../../worker/client/index.ts';
import { UsageError } from './command.ts';

const TARGETS: Record<string, TxnCompare['target']> = {
  value: 'value',
  val: 'value',
  version: 'version',
  ver: 'version',
  create: 'createRevision',
  c: 'createRevision',
  mod: 'modRevision',
  m: 'modRevision',
  lease: 'lease',
};
const OPS: Record<string, TxnCompare['result']> = { '=': '==', '==': '==', '!=': '!=', '<': '<', '>': '>' };

/** Words of a line: white space separates, "…" (with \ escapes) and '…' quote. */
export function argify(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    if (m[1] !== undefined) words.push(JSON.parse(`"${m[1]}"`) as string);
    else words.push(m[2] ?? m[3]!);
  }
  return words;
}

export function parseCompare(line: string): TxnCompare {
  const m = /^\s*(\w+)\(\s*("(?:[^"\\]|\\.)*")\s*\)\s*(!=|==|=|<|>)\s*(.*?)\s*$/.exec(line);
  if (m === null) throw new UsageError(`malformed comparison: ${line}`);
  const target = TARGETS[m[1]!];
  if (target === undefined) throw new UsageError(`malformed comparison: ${line} (unknown target ${m[1]})`);
  const key = JSON.parse(m[2]!) as string;
  const [raw] = argify(m[4]!);
  if (raw === undefined) throw new UsageError(`malformed comparison: ${line}`);
  if (target === 'value') return { key, target, result: OPS[m[3]!]!, value: raw };
  if (!/^\d+$/.test(raw)) throw new UsageError(`invalid txn compare request: ${line}`);
  return { key, target, result: OPS[m[3]!]!, value: Number(raw) };
}

export function parseRequest(line: string): TxnOp {
  const [verb, ...rest] = argify(line);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { prefix: { type: 'boolean' }, lease: { type: 'string' }, limit: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`invalid txn request: ${line} (${(err as Error).message})`);
  }
  const { values, positionals: args } = parsed;
  const prefix = values.prefix === true;
  if (verb === 'put' && args.length === 2 && !prefix && values.limit === undefined) {
    const lease = values.lease !== undefined && values.lease !== '0' ? { lease: values.lease } : {};
    return { put: { key: args[0]!, value: args[1]!, ...lease } };
  }
  if ((verb === 'del' || verb === 'delete') && args.length === 1 && values.lease === undefined && values.limit === undefined)
    return { delete: prefix ? { prefix: args[0]! } : { key: args[0]! } };
  if (verb === 'get' && args.length === 1 && values.lease === undefined) {
    if (values.limit !== undefined && !/^\d+$/.test(values.limit)) throw new UsageError(`invalid txn request: ${line} (--limit)`);
    if (!prefix) return { get: { key: args[0]! } };
    return { get: { prefix: args[0]!, ...(values.limit === undefined ? {} : { limit: Number(values.limit) }) } };
  }
  throw new UsageError(`invalid txn request: ${line}`);
}

/**
 * Reads the three sections from `lines` (a blank line ends each, as does the end of the input);
 * `prompt` is called before each section (etcdctl's interactive prompts).
 */
export async function readTxn(lines: AsyncIterable<string>, prompt: (text: string) => void = () => {}): Promise<Txn> {
  const it = lines[Symbol.asyncIterator]();
  async function section<T>(title: string, parse: (line: string) => T): Promise<T[]> {
    prompt(title);
    const out: T[] = [];
    for (;;) {
      const r = await it.next();
      if (r.done === true) return out;
      const line = r.value.trim();
      if (line === '') return out;
      out.push(parse(line));
    }
  }
  try {
    const compare = await section('compares:', parseCompare);
    const success = await section('success requests (get, put, del):', parseRequest);
    const failure = await section('failure requests (get, put, del):', parseRequest);
    return { compare, success, failure };
  } finally {
    await it.return?.(); // lets go of stdin (a terminal would keep the process alive)
  }
}
