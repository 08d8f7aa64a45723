// POST /txn: etcd's transaction in JSON (kv/txn.ts has the semantics):
//   {"compare":[{"key","target":"value|version|createRevision|modRevision","result":"==|!=|<|>","value"}],
//    "success":[{"put":{"key","value"}} | {"delete":{"key"}|{"prefix"}} | {"get":{"key"}|{"prefix","limit"}}],
//    "failure":[…]}
// → {"succeeded","revision","results":[{"put":{"revision"}} | {"delete":{"deleted"}} |
//    {"get":{"kvs":[{"key","value","createRevision","modRevision","version"}],"more"}}]}
// Applied in one revision, exactly once under the session headers. Authorization is per key:
// a compare or a get needs read (a prefix get, read on the whole prefix), a put or a delete
// write (a prefix delete, write on the whole prefix).

import type { KvCommand, TxnCompare, TxnOpResult } from '../kv/types.ts';
import { onlyFields, parseJsonObject } from './body.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { H, badRequest, jsonReply } from './http.ts';
import { body, write } from './kv-routes.ts';
import { queryParams } from './params.ts';

export async function txn(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  ctx.bodyBytesMax = 2 * ctx.peer.kvLimits.commandBytesMax; // JSON escaping may double a value's bytes
  return write(
    ctx,
    async () => {
      const parsed = parseJsonObject(await body(ctx));
      onlyFields(parsed, ['compare', 'success', 'failure']);
      const cmd = { op: 'txn', compare: parsed['compare'] ?? [], success: parsed['success'] ?? [], failure: parsed['failure'] ?? [] };
      if (!Array.isArray(cmd.compare) || !Array.isArray(cmd.success) || !Array.isArray(cmd.failure)) {
        throw badRequest('compare, success and failure must be arrays');
      }
      authorize(ctx, cmd.compare as unknown[], [...(cmd.success as unknown[]), ...(cmd.failure as unknown[])]);
      return cmd as KvCommand; // the shape is validated by the state machine's rules before it is proposed
    },
    (result) => {
      if (result.op !== 'txn') throw new Error(`a transaction answered ${result.op}`);
      return jsonReply({ succeeded: result.succeeded, revision: result.revision, results: result.results.map(describe) }, 200, {
        [H.revision]: String(result.revision),
      });
    },
  );
}

/** Every key a transaction names, checked against the request's grant (malformed parts are left
 *  to validation, which answers them 400). */
function authorize(ctx: ApiContext, compares: unknown[], ops: unknown[]): void {
  const grant = ctx.grant;
  for (const c of compares) if (typeof (c as TxnCompare)?.key === 'string') grant.requireRead((c as TxnCompare).key);
  for (const o of ops) {
    const op = o as Partial<Record<'put' | 'delete' | 'get', Record<string, unknown>>> | null;
    if (op === null || typeof op !== 'object') continue;
    const target = op.put ?? op.delete ?? op.get;
    if (target === undefined || target === null || typeof target !== 'object') continue;
    const key = target['key'];
    const prefix = target['prefix'];
    if (op.get !== undefined) {
      if (typeof key === 'string') grant.requireRead(key);
      else if (typeof prefix === 'string') grant.requireRange({ prefix, start: '', end: '' });
    } else if (typeof key === 'string') grant.requireWrite(key);
    else if (typeof prefix === 'string') grant.requireWritePrefix(prefix);
  }
}

function describe(r: TxnOpResult): unknown {
  if ('get' in r) {
    const kvs = r.get.kvs.map(([key, rec]) => ({
      key,
      value: rec.value,
      createRevision: rec.createRevision,
      modRevision: rec.modRevision,
      version: rec.version,
    }));
    return { get: { kvs, more: r.get.more } };
  }
  return r;
}
