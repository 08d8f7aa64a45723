// Key commands: put, get, del, txn, watch, compaction.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Txn, TxnResult } from '../../worker/client/index.ts';
import { UsageError, intArg, intFlag, interrupted, readStdin, table, type Command, type Ctx, type Values } from './command.ts';
import { readTxn } from './txn-syntax.ts';

type Kv = { key: string; value: string; createRevision?: number; modRevision?: number; version?: number };

function leaseOpt(values: Values): { lease?: string } {
  const lease = values['lease'];
  return typeof lease === 'string' && lease !== '0' ? { lease } : {};
}

function printKvs(ctx: Ctx, kvs: Kv[]): void {
  if (ctx.writeOut === 'table') {
    const revisions = kvs.some((kv) => kv.createRevision !== undefined);
    const head = revisions ? ['KEY', 'VALUE', 'CREATE REVISION', 'MOD REVISION', 'VERSION'] : ['KEY', 'VALUE'];
    const rows = kvs.map((kv) =>
      revisions ? [kv.key, kv.value, kv.createRevision ?? '', kv.modRevision ?? '', kv.version ?? ''] : [kv.key, kv.value],
    );
    return table(ctx, head, rows);
  }
  for (const kv of kvs) {
    if (ctx.values['print-value-only'] === true) ctx.out(kv.value);
    else if (ctx.values['keys-only'] === true) ctx.out(kv.key);
    else ctx.out(`${kv.key}\n${kv.value}`);
  }
}

/** etcdctl's simple txn answer: SUCCESS or FAILURE, then each request's answer after a blank line. */
function printTxn(ctx: Ctx, r: TxnResult): void {
  if (ctx.json) return ctx.out(JSON.stringify(r));
  ctx.out(r.succeeded ? 'SUCCESS' : 'FAILURE');
  for (const res of r.results as Array<Record<string, { kvs?: Array<{ key: string; value: string }>; deleted?: number }>>) {
    ctx.out('');
    if (res['put'] !== undefined) ctx.out('OK');
    else if (res['delete'] !== undefined) ctx.out(String(res['delete'].deleted ?? 0));
    else for (const kv of res['get']?.kvs ?? []) ctx.out(`${kv.key}\n${kv.value}`);
  }
}

async function* linesOf(text: string): AsyncGenerator<string> {
  yield* text.split(/\r?\n/);
}

async function* stdinLines(): AsyncGenerator<string> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    yield* rl;
  } finally {
    rl.close();
  }
}

export const KV_COMMANDS: Record<string, Command> = {
  put: {
    usage: 'put KEY [VALUE] [--lease ID]   (VALUE from stdin when omitted)',
    options: { lease: { type: 'string' } },
    async run({ client, values, args, json, out }) {
      if (args.length < 1 || args.length > 2) throw new UsageError('put command needs 1 argument and input from stdin or 2 arguments');
      const value = args[1] ?? readStdin();
      const r = await client.put(args[0]!, value, leaseOpt(values));
      out(json ? JSON.stringify(r) : 'OK');
    },
  },
  get: {
    usage: 'get KEY [END] [--prefix] [--limit N] [--rev N] [--print-value-only] [--keys-only] [--consistency l|s]',
    options: {
      prefix: { type: 'boolean' },
      limit: { type: 'string' },
      rev: { type: 'string' },
      'print-value-only': { type: 'boolean' },
      'keys-only': { type: 'boolean' },
      consistency: { type: 'string' },
    },
    async run(ctx) {
      const { client, values, args } = ctx;
      if (args.length < 1 || args.length > 2)
        throw new UsageError('get command needs one argument as key and an optional argument as range_end');
      const revision = intFlag(values, 'rev');
      const level = values['consistency'] === 's' ? 'stale' : values['consistency'] === 'l' ? 'consistent' : undefined;
      const limit = intFlag(values, 'limit');
      let kvs: Kv[];
      let more = false;
      let storeRevision: number | undefined;
      if (values['prefix'] === true || args[1] !== undefined) {
        const r =
          values['prefix'] === true
            ? await client.range({ prefix: args[0]!, limit, revision, level })
            : await client.range({ start: args[0]!, end: args[1]!, limit, revision, level });
        kvs = r.kvs;
        more = r.more;
        storeRevision = r.revision;
      } else {
        const kv = await client.get(args[0]!, { revision, level });
        kvs = kv === null ? [] : [kv];
      }
      if (ctx.json) {
        ctx.out(JSON.stringify({ ...(storeRevision === undefined ? {} : { revision: storeRevision }), kvs, more, count: kvs.length }));
        return;
      }
      printKvs(ctx, kvs);
    },
  },
  del: {
    usage: 'del KEY [--prefix]',
    options: { prefix: { type: 'boolean' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('del command needs one argument as key');
      const r = await client.delete(args[0]!, { prefix: values['prefix'] === true });
      out(json ? JSON.stringify(r) : String(r.deleted));
    },
  },
  txn: {
    usage:
      'txn [FILE|-] [-i|--interactive]   (etcdctl lines on stdin: compares, blank line, success requests, blank line, failure requests; or metcd /txn JSON from FILE or stdin)',
    options: { interactive: { type: 'boolean', short: 'i' } },
    async run(ctx) {
      const { client, values, args } = ctx;
      if (args.length > 1) throw new UsageError('txn command takes at most one argument (a JSON file)');
      let t: Txn;
      if (values['interactive'] === true) {
        if (args.length > 0) throw new UsageError('txn --interactive reads stdin, not a file');
        const tty = process.stdin.isTTY === true;
        t = await readTxn(stdinLines(), (title) => tty && process.stdout.write(`${title}\n`));
      } else {
        const file = args[0];
        const text = file === undefined || file === '-' ? readStdin() : readFileSync(file, 'utf8');
        if (text.trimStart().startsWith('{')) {
          try {
            t = JSON.parse(text) as Txn;
          } catch (err) {
            throw new UsageError(`txn: the input is not JSON: ${(err as Error).message}`);
          }
        } else {
          t = await readTxn(linesOf(text));
        }
      }
      printTxn(ctx, await client.txn(t));
    },
  },
  watch: {
    usage: 'watch KEY [--prefix] [--rev N]   (until Ctrl-C)',
    options: { prefix: { type: 'boolean' }, rev: { type: 'string' } },
    async run({ client, values, args, json, timeoutMs, out }) {
      if (args.length !== 1) throw new UsageError('watch command needs one argument as key');
      const stop = interrupted();
      const watch = client.watch({
        key: args[0]!,
        prefix: values['prefix'] === true,
        fromRevision: intFlag(values, 'rev'),
        signal: stop.signal,
        timeoutMs,
      });
      for await (const frame of watch) {
        if (json) {
          out(JSON.stringify(frame));
          continue;
        }
        for (const e of frame.events) out(e.type === 'put' ? `PUT\n${e.key}\n${e.value}` : `DELETE\n${e.key}`);
      }
    },
  },
  compaction: {
    usage: 'compaction REVISION',
    async run({ client, args, json, out }) {
      const rev = intArg(args, 0, 'compaction command needs 1 argument');
      const r = await client.compact(rev);
      out(json ? JSON.stringify(r) : `compacted revision ${r.compactRevision}`);
    },
  },
};
