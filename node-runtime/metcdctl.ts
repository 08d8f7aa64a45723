// metcdctl: etcdctl's commands for metcd, over the TypeScript client (worker/client/). Global
// flags --endpoints (a comma list; the client follows the leader itself), --token (or
// METCDCTL_TOKEN), --command-timeout, -w/--write-out json|simple. Each command parses its own
// arguments with util.parseArgs. As etcdctl: errors are printed `Error: …` on stderr with exit
// code 1; bad arguments exit 128 (etcdctl's ExitBadArgs).
//
// Differences from etcdctl, kept small: `txn` reads metcd's /txn JSON (a file, or stdin), not
// etcdctl's interactive format; -w json prints metcd's own JSON (plain strings, not base64);
// lease ids are metcd's decimal ids.

import { createWriteStream, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createClient, MetcdError, type MetcdClient, type Txn } from '../worker/client/index.ts';
import { readBackup, BackupFormatError } from '../worker/backup/format.ts';

const EXIT_ERROR = 1;
const EXIT_BAD_ARGS = 128;

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

const GLOBAL: Options = {
  endpoints: { type: 'string' },
  token: { type: 'string' },
  'command-timeout': { type: 'string' },
  'write-out': { type: 'string', short: 'w' },
  help: { type: 'boolean', short: 'h' },
};

class UsageError extends Error {}

interface Ctx {
  client: MetcdClient;
  values: Values;
  args: string[];
  json: boolean;
  timeoutMs: number;
  out: (line: string) => void;
}

interface Command {
  usage: string;
  options?: Options;
  run(ctx: Ctx): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
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
    async run({ client, values, args, json, out }) {
      if (args.length < 1 || args.length > 2)
        throw new UsageError('get command needs one argument as key and an optional argument as range_end');
      const revision = intFlag(values, 'rev');
      const level = values['consistency'] === 's' ? 'stale' : values['consistency'] === 'l' ? 'consistent' : undefined;
      const limit = intFlag(values, 'limit');
      let kvs: Array<{ key: string; value: string; createRevision?: number; modRevision?: number; version?: number }>;
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
      if (json) {
        out(JSON.stringify({ ...(storeRevision === undefined ? {} : { revision: storeRevision }), kvs, more, count: kvs.length }));
        return;
      }
      for (const kv of kvs) {
        if (values['print-value-only'] === true) out(kv.value);
        else if (values['keys-only'] === true) out(kv.key);
        else out(`${kv.key}\n${kv.value}`);
      }
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
    usage: 'txn [FILE|-]   (metcd /txn JSON: {"compare":[…],"success":[…],"failure":[…]}; stdin when omitted)',
    async run({ client, args, json, out }) {
      const file = args[0];
      const text = file === undefined || file === '-' ? readStdin() : readFileSync(file, 'utf8');
      let t: Txn;
      try {
        t = JSON.parse(text) as Txn;
      } catch (err) {
        throw new UsageError(`txn: the input is not JSON: ${(err as Error).message}`);
      }
      const r = await client.txn(t);
      if (json) return out(JSON.stringify(r));
      out(r.succeeded ? 'SUCCESS' : 'FAILURE');
      for (const res of r.results as Array<Record<string, { kvs?: Array<{ key: string; value: string }>; deleted?: number }>>) {
        out('');
        if (res['put'] !== undefined) out('OK');
        else if (res['delete'] !== undefined) out(String(res['delete'].deleted ?? 0));
        else for (const kv of res['get']?.kvs ?? []) out(`${kv.key}\n${kv.value}`);
      }
    },
  },
  watch: {
    usage: 'watch KEY [--prefix] [--rev N] [--progress]   (until Ctrl-C)',
    options: { prefix: { type: 'boolean' }, rev: { type: 'string' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('watch command needs one argument as key');
      const stop = interrupted();
      const watch = client.watch({
        key: args[0]!,
        prefix: values['prefix'] === true,
        fromRevision: intFlag(values, 'rev'),
        signal: stop.signal,
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
  'lease grant': {
    usage: 'lease grant TTL',
    async run({ client, args, json, out }) {
      const ttl = intArg(args, 0, 'lease grant command needs TTL argument');
      const l = await client.lease.grant(ttl);
      out(json ? JSON.stringify(l) : `lease ${l.id} granted with TTL(${l.ttl}s)`);
    },
  },
  'lease revoke': {
    usage: 'lease revoke ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('lease revoke command needs 1 argument');
      const r = await client.lease.revoke(args[0]!);
      out(json ? JSON.stringify(r) : `lease ${args[0]} revoked`);
    },
  },
  'lease timetolive': {
    usage: 'lease timetolive ID [--keys]',
    options: { keys: { type: 'boolean' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('lease timetolive command needs lease ID as argument');
      const l = await client.lease.timeToLive(args[0]!);
      if (json) return out(JSON.stringify(l));
      const keys = values['keys'] === true ? `, attached keys([${l.keys.join(' ')}])` : '';
      out(`lease ${l.id} granted with TTL(${l.grantedTtl}s), remaining(${l.ttl}s)${keys}`);
    },
  },
  'lease keep-alive': {
    usage: 'lease keep-alive ID [--once]   (every ttl/3 until Ctrl-C)',
    options: { once: { type: 'boolean' } },
    async run({ client, values, args, json, timeoutMs, out }) {
      if (args.length !== 1) throw new UsageError('lease keep-alive command needs lease ID as argument');
      const stop = interrupted();
      for (;;) {
        const l = await client.lease.keepAlive(args[0]!, { signal: stop.signal, timeoutMs });
        out(json ? JSON.stringify(l) : `lease ${l.id} keepalived with TTL(${l.ttl})`);
        if (values['once'] === true) return;
        if (!(await pause(Math.max(500, (l.ttl * 1000) / 3), stop.signal))) return;
      }
    },
  },
  lock: {
    usage: 'lock NAME [--ttl S] [--wait DURATION]   (holds until Ctrl-C; prints the key and the fencing token)',
    options: { ttl: { type: 'string' }, wait: { type: 'string' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('lock command needs lock name as argument');
      const stop = interrupted();
      const ttl = intFlag(values, 'ttl') ?? 60;
      const wait = typeof values['wait'] === 'string' ? values['wait'] : '5m';
      const held = await client.lock(args[0]!, { ttl, wait, signal: stop.signal });
      out(
        json
          ? JSON.stringify({ key: held.key, lease: held.lease, revision: held.revision })
          : `${held.key}\nfencing token ${held.revision}`,
      );
      const lost = await Promise.race([held.lost, untilAborted(stop.signal)]);
      if (lost instanceof MetcdError) throw new MetcdError(lost.status, lost.code, `lock lost: ${lost.message}`);
      await held.release({ timeoutMs: 5000 });
    },
  },
  elect: {
    usage: 'elect NAME VALUE [--ttl S]   (campaigns, then holds leadership until Ctrl-C)',
    options: { ttl: { type: 'string' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 2) throw new UsageError('elect command needs election name and proposal as arguments');
      const stop = interrupted();
      const ttl = intFlag(values, 'ttl') ?? 60;
      const led = await client.campaign(args[0]!, args[1]!, { ttl, wait: '5m', signal: stop.signal, timeoutMs: 6 * 60_000 });
      out(json ? JSON.stringify({ key: led.key, lease: led.lease, revision: led.revision }) : `${led.key}\n${args[1]}`);
      const lost = await Promise.race([led.lost, untilAborted(stop.signal)]);
      if (lost instanceof MetcdError) throw new MetcdError(lost.status, lost.code, `leadership lost: ${lost.message}`);
      await led.resign({ timeoutMs: 5000 });
    },
  },
  'member list': {
    usage: 'member list',
    async run({ client, json, out }) {
      const m = await client.members();
      if (json) return out(JSON.stringify(m));
      for (const x of m.members) out(`${x.id}, ${x.voter ? 'voter' : 'learner'}, ${x.address}, ${x.id === m.leader}`);
    },
  },
  'member add': {
    usage: 'member add ID --peer-urls URL [--learner]',
    options: { 'peer-urls': { type: 'string' }, learner: { type: 'boolean' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('member name not provided');
      const address = typeof values['peer-urls'] === 'string' ? values['peer-urls'] : undefined;
      const m = await client.addMember({
        id: args[0]!,
        ...(address === undefined ? {} : { address }),
        learner: values['learner'] === true,
      });
      out(json ? JSON.stringify(m) : `Member ${args[0]} added to cluster`);
    },
  },
  'member remove': {
    usage: 'member remove ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('member ID is not provided');
      const m = await client.removeMember(args[0]!);
      out(json ? JSON.stringify(m) : `Member ${args[0]} removed from cluster`);
    },
  },
  'member promote': {
    usage: 'member promote ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('member ID is not provided');
      const m = await client.promoteMember(args[0]!);
      out(json ? JSON.stringify(m) : `Member ${args[0]} promoted in cluster`);
    },
  },
  'endpoint status': {
    usage: 'endpoint status [--cluster]   (each endpoint: id, role, term, leader, revision, commit, applied)',
    options: { cluster: { type: 'boolean' } },
    async run(ctx) {
      const rows: unknown[] = [];
      let failed = false;
      for (const endpoint of await endpointsOf(ctx)) {
        try {
          const s = await ctx.client.status({ endpoint });
          rows.push({ endpoint, ...s });
          if (!ctx.json)
            ctx.out(
              `${endpoint}, ${s.id}, ${s.role}, term ${s.term}, leader ${s.leader || '-'}, revision ${s.revision}, commit ${s.commit}, applied ${s.applied}`,
            );
        } catch (err) {
          failed = true;
          process.stderr.write(`Failed to get the status of endpoint ${endpoint} (${message(err)})\n`);
        }
      }
      if (ctx.json) ctx.out(JSON.stringify(rows));
      if (failed) throw new MetcdError(0, 'unavailable', 'failed to get the status of every endpoint');
    },
  },
  'endpoint health': {
    usage: 'endpoint health [--cluster]',
    options: { cluster: { type: 'boolean' } },
    async run(ctx) {
      const rows: Array<{ endpoint: string; health: boolean; took: string; error?: string }> = [];
      for (const endpoint of await endpointsOf(ctx)) {
        const t0 = performance.now();
        const h = await ctx.client.health({ endpoint }).catch((err: unknown) => ({ ok: false, reason: message(err) }));
        const took = `${(performance.now() - t0).toFixed(1)}ms`;
        rows.push({ endpoint, health: h.ok, took, ...(h.ok ? {} : { error: h.reason ?? '' }) });
        if (ctx.json) continue;
        if (h.ok) ctx.out(`${endpoint} is healthy: successfully answered /health: took = ${took}`);
        else process.stderr.write(`${endpoint} is unhealthy: failed to answer /health: ${h.reason ?? ''}\n`);
      }
      if (ctx.json) ctx.out(JSON.stringify(rows));
      if (rows.some((r) => !r.health)) throw new MetcdError(0, 'unavailable', 'unhealthy cluster');
    },
  },
  'move-leader': {
    usage: 'move-leader ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('move-leader command needs 1 argument');
      const r = await client.moveLeader(args[0]!);
      out(json ? JSON.stringify(r) : `Leadership transferred to ${r.leader}`);
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
  'snapshot save': {
    usage: 'snapshot save FILE',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('snapshot save expects one argument');
      const file = args[0]!;
      const part = `${file}.part`;
      const snap = await client.snapshot();
      const sink = createWriteStream(part, { mode: 0o600 });
      try {
        for await (const chunk of snap.body) if (!sink.write(chunk)) await once(sink, 'drain');
        sink.end();
        await once(sink, 'finish');
        readBackup(readFileSync(part)); // a cut-short download is refused here, not later
      } catch (err) {
        sink.destroy();
        rmSync(part, { force: true });
        throw err;
      }
      renameSync(part, file);
      out(
        json
          ? JSON.stringify({ file, revision: snap.revision, bytes: statSync(file).size })
          : `Snapshot saved at ${file} (revision ${snap.revision})`,
      );
    },
  },
  'snapshot status': {
    usage: 'snapshot status FILE   (verifies the checksum)',
    async run({ args, json, out }) {
      if (args.length !== 1) throw new UsageError('snapshot status requires exactly one argument');
      const bytes = readFileSync(args[0]!);
      const { header, state } = readBackup(bytes);
      const row = {
        revision: header.revision,
        totalKey: state.records.length,
        totalSize: bytes.length,
        appliedIndex: header.appliedIndex,
        clusterId: header.clusterId,
        takenAt: new Date(header.createdAtMs).toISOString(),
        version: header.version,
      };
      if (json) return out(JSON.stringify(row));
      out(`${row.revision}, ${row.totalKey}, ${row.totalSize}, ${row.clusterId}, ${row.takenAt}`);
    },
  },
  'auth token create': {
    usage: 'auth token create NAME [--rule PREFIX=read|write|readwrite]… [--admin] [--status] [--ttl S]',
    options: {
      rule: { type: 'string', multiple: true },
      admin: { type: 'boolean' },
      status: { type: 'boolean' },
      ttl: { type: 'string' },
    },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('auth token create needs a token name');
      const rules = ((values['rule'] as string[] | undefined) ?? []).map((r) => {
        const eq = r.lastIndexOf('=');
        const access = r.slice(eq + 1);
        if (eq < 0 || !['read', 'write', 'readwrite'].includes(access))
          throw new UsageError(`--rule ${r}: expected PREFIX=read|write|readwrite`);
        return { prefix: r.slice(0, eq), access: access as 'read' | 'write' | 'readwrite' };
      });
      const ttl = intFlag(values, 'ttl');
      const t = await client.tokens.create({
        name: args[0]!,
        rules,
        admin: values['admin'] === true,
        status: values['status'] === true,
        ...(ttl === undefined ? {} : { ttl }),
      });
      out(json ? JSON.stringify(t) : `Token ${t.id} created\n${t.token}`);
    },
  },
  'auth token list': {
    usage: 'auth token list',
    async run({ client, json, out }) {
      const list = await client.tokens.list();
      if (json) return out(JSON.stringify(list));
      for (const t of list) {
        const rules = t.rules.map((r) => `${r.prefix}=${r.access}`).join(' ');
        const flags = [t.admin ? 'admin' : '', t.status ? 'status' : '', t.expired ? 'expired' : ''].filter((f) => f !== '').join(' ');
        out(`${t.id}, ${t.name}, [${rules}]${flags === '' ? '' : `, ${flags}`}`);
      }
    },
  },
  'auth token revoke': {
    usage: 'auth token revoke ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('auth token revoke needs a token id');
      const r = await client.tokens.revoke(args[0]!);
      out(json ? JSON.stringify(r) : `Token ${args[0]} revoked`);
    },
  },
};

function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage}`);
  return [
    'Usage: metcdctl [--endpoints URLS] [--token T] [--command-timeout 5s] [-w simple|json] COMMAND …',
    '',
    'Commands:',
    ...lines,
    '',
    'Global flags:',
    '  --endpoints URLS         comma list of peer URLs (default http://127.0.0.1:3379; env METCDCTL_ENDPOINTS)',
    '  --token T                bearer token (env METCDCTL_TOKEN)',
    '  --command-timeout D      deadline of one command, e.g. 5s, 500ms (default 5s)',
    '  -w, --write-out F        simple (default) or json',
  ].join('\n');
}

/** Splits argv into the command's words and the rest (global flags may come first). */
function splitCommand(argv: string[]): { name: string; rest: string[] } {
  const before: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) break;
    before.push(a);
    const flag = a.replace(/^-+/, '').split('=')[0]!;
    const spec = GLOBAL[flag] ?? Object.values(GLOBAL).find((o) => o.short === flag);
    if (spec?.type === 'string' && !a.includes('=')) before.push(argv[++i] ?? '');
  }
  const words: string[] = [];
  for (let n = 1; n <= 3 && i + n <= argv.length; n++) {
    const candidate = argv.slice(i, i + n).join(' ');
    if (COMMANDS[candidate] !== undefined) words.splice(0, words.length, ...argv.slice(i, i + n));
  }
  if (words.length === 0) return { name: argv[i] ?? '', rest: before };
  return { name: words.join(' '), rest: [...before, ...argv.slice(i + words.length)] };
}

export async function main(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const { name, rest } = splitCommand(argv);
  const command = COMMANDS[name];
  if (command === undefined) {
    if (name === '' || argv.includes('--help') || argv.includes('-h')) {
      out(usage());
      return name === '' && !argv.includes('--help') && !argv.includes('-h') ? EXIT_BAD_ARGS : 0;
    }
    process.stderr.write(`Error: unknown command "${name}" for "metcdctl"\nRun 'metcdctl --help' for usage.\n`);
    return EXIT_BAD_ARGS;
  }
  let values: Values;
  let args: string[];
  try {
    const parsed = parseArgs({ args: rest, options: { ...GLOBAL, ...command.options }, allowPositionals: true, strict: true });
    values = parsed.values as Values;
    args = parsed.positionals;
  } catch (err) {
    process.stderr.write(`Error: ${message(err)}\nUsage: metcdctl ${command.usage}\n`);
    return EXIT_BAD_ARGS;
  }
  if (values['help'] === true) {
    out(`Usage: metcdctl ${command.usage}`);
    return 0;
  }
  try {
    const writeOut = (values['write-out'] as string | undefined) ?? 'simple';
    if (writeOut !== 'simple' && writeOut !== 'json')
      throw new UsageError(`unsupported output format ${JSON.stringify(writeOut)} (simple or json)`);
    const timeoutMs = duration((values['command-timeout'] as string | undefined) ?? '5s');
    const endpoints = (values['endpoints'] as string | undefined) ?? process.env['METCDCTL_ENDPOINTS'] ?? 'http://127.0.0.1:3379';
    const token = (values['token'] as string | undefined) ?? process.env['METCDCTL_TOKEN'];
    const client = createClient({ endpoints, timeoutMs, ...(token === undefined || token === '' ? {} : { token }) });
    await command.run({ client, values, args, json: writeOut === 'json', timeoutMs, out });
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`Error: ${err.message}\n`);
      return EXIT_BAD_ARGS;
    }
    process.stderr.write(`Error: ${message(err)}\n`);
    return EXIT_ERROR;
  }
}

function message(err: unknown): string {
  if (err instanceof MetcdError) {
    if (err.code === 'timeout') return `context deadline exceeded (${err.message})`;
    return err.status === 0 ? err.message : `${err.message} (${err.status} ${err.code})`;
  }
  if (err instanceof BackupFormatError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

function leaseOpt(values: Values): { lease?: string } {
  const lease = values['lease'];
  return typeof lease === 'string' && lease !== '0' ? { lease } : {};
}

function intFlag(values: Values, name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(v);
}

function intArg(args: string[], at: number, missing: string): number {
  const v = args[at];
  if (v === undefined) throw new UsageError(missing);
  if (!/^\d+$/.test(v)) throw new UsageError(`bad argument ${JSON.stringify(v)}: expected a non-negative integer`);
  return Number(v);
}

/** '5s', '500ms', '1m', or a bare number of seconds. */
function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text);
  if (m === null) throw new UsageError(`bad duration ${JSON.stringify(text)} (e.g. 5s, 500ms)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : m[2] === 'h' ? n * 3_600_000 : n * 1000;
}

/** The endpoints to report on: the given ones, or with --cluster every member's address. */
async function endpointsOf(ctx: Ctx): Promise<string[]> {
  if (ctx.values['cluster'] !== true) return [...ctx.client.endpoints];
  const m = await ctx.client.members();
  return m.members.map((x) => x.address).filter((a) => /^https?:\/\//.test(a));
}

/** A signal aborted by Ctrl-C or SIGTERM. */
function interrupted(): AbortController {
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return ctl;
}

function untilAborted(signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(undefined);
    signal.addEventListener('abort', () => resolve(undefined), { once: true });
  });
}

/** Waits `ms`; false when interrupted first. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => resolve(true), ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve(false);
      },
      { once: true },
    );
  });
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
