// Transactions, etcd's Txn: compares on keys (value, version, revisions, lease: 0 for none); if every one holds, the success operations, else
// the failure ones, applied in order in ONE revision (the revision moves once, and only if an
// operation wrote). A get sees the writes made before it in the same transaction, as in etcd. A
// missing key has version, createRevision and modRevision 0 and no value: a value compare on it
// is false. A branch may not write one key twice (a put and a delete, or a put inside a deleted
// prefix), as etcd refuses "duplicate key given in txn request".

import type { KeyRecord, KvLimits, KvResult, TxnCompare, TxnOp, TxnOpResult } from './types.ts';
import { invalid, isNonNegativeSafeInteger, isObject, keyProblem, tooLarge, valueProblem, type CommandProblem } from './checks.ts';
import { JSON_COMMAND_HEADER_BYTES } from './codec.ts';
import { utf8Length } from './utf8.ts';

/** Most keys one get of a transaction answers (and its default limit). */
export const TXN_GET_KEYS_MAX = 1000;
const TARGETS: ReadonlyArray<TxnCompare['target']> = ['value', 'version', 'createRevision', 'modRevision', 'lease'];
const RESULTS: ReadonlyArray<TxnCompare['result']> = ['==', '!=', '<', '>'];

/** What a transaction reads and writes: the state machine, at the transaction's revision. */
export interface TxnStore {
  get(key: string): KeyRecord | undefined;
  /** The lease `key` is attached to (0: none). */
  leaseOf(key: string): number;
  /** Why a put may not attach `keys` to `lease` (unknown lease, full), or null. */
  leaseRefusal(lease: number, keys: string[]): KvResult | null;
  /** Client keys starting with `prefix` ('' = all), in order, at most `limit` (+1 to tell more). */
  range(prefix: string, limit: number): Array<[string, KeyRecord]>;
  /** Writes `key`, attached to `lease` (0: detached, as a put without a lease in etcd). */
  put(key: string, value: string, lease: number): void;
  /** false when there was no such key. */
  delete(key: string): boolean;
}

export function compareHolds(c: TxnCompare, record: KeyRecord | undefined, lease: number): boolean {
  let actual: string | number;
  if (c.target === 'value') {
    if (record === undefined) return false;
    actual = record.value;
  } else if (c.target === 'lease') actual = lease;
  else actual = record === undefined ? 0 : record[c.target];
  const expected = c.value;
  switch (c.result) {
    case '==':
      return actual === expected;
    case '!=':
      return actual !== expected;
    case '<':
      return actual < expected;
    case '>':
      return actual > expected;
  }
}

/** Runs a valid transaction against `store`; `wrote` says whether the revision must move. */
export function runTxn(
  cmd: { compare: TxnCompare[]; success: TxnOp[]; failure: TxnOp[] },
  store: TxnStore,
  revision: number,
): { succeeded: boolean; results: TxnOpResult[]; wrote: boolean } | { refused: KvResult } {
  const succeeded = cmd.compare.every((c) => compareHolds(c, store.get(c.key), store.leaseOf(c.key)));
  const branch = succeeded ? cmd.success : cmd.failure;
  // A put to a lease that is not there refuses the whole transaction before anything is written (etcd).
  const byLease = new Map<number, string[]>();
  for (const op of branch)
    if ('put' in op && (op.put.lease ?? 0) !== 0) byLease.set(op.put.lease!, [...(byLease.get(op.put.lease!) ?? []), op.put.key]);
  for (const [lease, keys] of byLease) {
    const refused = store.leaseRefusal(lease, keys);
    if (refused !== null) return { refused };
  }
  const results: TxnOpResult[] = [];
  let wrote = false;
  for (const op of branch) {
    if ('put' in op) {
      store.put(op.put.key, op.put.value, op.put.lease ?? 0);
      wrote = true;
      results.push({ put: { revision } });
    } else if ('delete' in op) {
      const keys = 'key' in op.delete ? [op.delete.key] : store.range(op.delete.prefix, Number.MAX_SAFE_INTEGER).map(([k]) => k);
      let deleted = 0;
      for (const key of keys) if (store.delete(key)) deleted++;
      if (deleted > 0) wrote = true;
      results.push({ delete: { deleted } });
    } else {
      const get = op.get;
      if ('key' in get) {
        const record = store.get(get.key);
        results.push({ get: { kvs: record === undefined ? [] : [[get.key, record]], more: false } });
      } else {
        const limit = get.limit ?? TXN_GET_KEYS_MAX;
        const kvs = store.range(get.prefix, limit + 1);
        results.push({ get: { kvs: kvs.slice(0, limit), more: kvs.length > limit } });
      }
    }
  }
  return { succeeded, results, wrote };
}

/** The first problem with a transaction command, or null. */
export function txnProblem(cmd: Record<string, unknown>, limits: KvLimits): CommandProblem | null {
  for (const name of Object.keys(cmd)) {
    if (!['op', 'compare', 'success', 'failure', 'stamp'].includes(name)) return invalid(`a transaction takes no ${name}`);
  }
  const compare = cmd['compare'];
  if (!Array.isArray(compare)) return invalid('compare must be an array');
  if (compare.length > limits.txnOpsMax) return tooLarge(`${compare.length} compares, above the limit of ${limits.txnOpsMax}`);
  for (const c of compare as unknown[]) {
    const p = compareProblem(c, limits);
    if (p !== null) return p;
  }
  for (const branch of ['success', 'failure'] as const) {
    const ops = cmd[branch];
    if (!Array.isArray(ops)) return invalid(`${branch} must be an array of operations`);
    if (ops.length > limits.txnOpsMax) return tooLarge(`${ops.length} ${branch} operations, above the limit of ${limits.txnOpsMax}`);
    const p = branchProblem(ops as unknown[], limits, branch);
    if (p !== null) return p;
  }
  // Each key and value is within its limit; the whole is bounded as encoded (JSON).
  const bytes = JSON_COMMAND_HEADER_BYTES + utf8Length(JSON.stringify(cmd));
  if (bytes > limits.commandBytesMax) return tooLarge(`transaction is ${bytes} bytes, above the limit of ${limits.commandBytesMax}`);
  return null;
}

function compareProblem(c: unknown, limits: KvLimits): CommandProblem | null {
  if (!isObject(c)) return invalid('each compare must be an object {key, target, result, value}');
  for (const name of Object.keys(c)) if (!['key', 'target', 'result', 'value'].includes(name)) return invalid(`a compare takes no ${name}`);
  const k = keyProblem(c['key'], limits, 'compare key');
  if (typeof k !== 'number') return k;
  const target = c['target'] as TxnCompare['target'];
  if (!TARGETS.includes(target)) return invalid(`compare target must be one of ${TARGETS.join(', ')}`);
  if (!RESULTS.includes(c['result'] as TxnCompare['result'])) return invalid(`compare result must be one of ${RESULTS.join(' ')}`);
  if (target === 'value') {
    const v = valueProblem(c['value'], limits);
    return typeof v === 'number' ? null : v;
  }
  return isNonNegativeSafeInteger(c['value']) ? null : invalid(`a ${target} compare needs a non-negative integer value`);
}

function branchProblem(ops: unknown[], limits: KvLimits, branch: string): CommandProblem | null {
  const written = new Set<string>();
  const deletedPrefixes: string[] = [];
  for (const op of ops) {
    if (!isObject(op) || Object.keys(op).length !== 1) return invalid(`each ${branch} operation must be one of {put}, {delete}, {get}`);
    const [kind, body] = Object.entries(op)[0]!;
    if (!isObject(body)) return invalid(`${kind} must be an object`);
    const fields = Object.keys(body).sort().join(',');
    if (kind === 'put') {
      if (fields !== 'key,value' && fields !== 'key,lease,value') return invalid('put takes {key, value} and an optional lease');
      const lease = body['lease'];
      if (lease !== undefined && !isNonNegativeSafeInteger(lease)) return invalid('a put lease must be a lease id (0: none)');
      const k = keyProblem(body['key'], limits, 'put key');
      if (typeof k !== 'number') return k;
      const v = valueProblem(body['value'], limits);
      if (typeof v !== 'number') return v;
      if (written.has(body['key'] as string)) return invalid(`key ${JSON.stringify(body['key'])} is written twice in one branch`);
      written.add(body['key'] as string);
    } else if (kind === 'delete' || kind === 'get') {
      const byKey = 'key' in body;
      const allowed = byKey ? 'key' : kind === 'get' ? 'limit,prefix' : 'prefix';
      if (!(fields === allowed || (kind === 'get' && !byKey && fields === 'prefix'))) {
        return invalid(`${kind} takes {key} or {prefix${kind === 'get' ? ', limit' : ''}}`);
      }
      if (byKey) {
        const k = keyProblem(body['key'], limits, `${kind} key`);
        if (typeof k !== 'number') return k;
      } else {
        const prefix = body['prefix'];
        if (typeof prefix !== 'string') return invalid(`${kind} prefix must be a string ("" for every key)`);
        if (prefix !== '') {
          const k = keyProblem(prefix, limits, `${kind} prefix`);
          if (typeof k !== 'number') return k;
        }
        const limit = body['limit'];
        if (limit !== undefined && !(isNonNegativeSafeInteger(limit) && limit >= 1 && limit <= TXN_GET_KEYS_MAX)) {
          return invalid(`get limit must be an integer from 1 to ${TXN_GET_KEYS_MAX}`);
        }
      }
      if (kind === 'delete') {
        if (byKey) {
          if (written.has(body['key'] as string)) return invalid(`key ${JSON.stringify(body['key'])} is written twice in one branch`);
          written.add(body['key'] as string);
        } else deletedPrefixes.push(body['prefix'] as string);
      }
    } else return invalid(`unknown operation ${JSON.stringify(kind)}; expected put, delete or get`);
  }
  for (const prefix of deletedPrefixes) {
    for (const key of written) if (key.startsWith(prefix)) return invalid(`key ${JSON.stringify(key)} is also in a deleted prefix`);
  }
  return null;
}

/** A copy of a valid transaction with only the known fields (no extra-property baggage). */
export function cleanTxn(cmd: { compare: TxnCompare[]; success: TxnOp[]; failure: TxnOp[] }): {
  compare: TxnCompare[];
  success: TxnOp[];
  failure: TxnOp[];
} {
  const op = (o: TxnOp): TxnOp => {
    if ('put' in o)
      return {
        put:
          o.put.lease === undefined ? { key: o.put.key, value: o.put.value } : { key: o.put.key, value: o.put.value, lease: o.put.lease },
      };
    if ('delete' in o) return { delete: 'key' in o.delete ? { key: o.delete.key } : { prefix: o.delete.prefix } };
    const g = o.get;
    if ('key' in g) return { get: { key: g.key } };
    return { get: g.limit === undefined ? { prefix: g.prefix } : { prefix: g.prefix, limit: g.limit } };
  };
  return {
    compare: cmd.compare.map((c) => ({ key: c.key, target: c.target, result: c.result, value: c.value })),
    success: cmd.success.map(op),
    failure: cmd.failure.map(op),
  };
}
