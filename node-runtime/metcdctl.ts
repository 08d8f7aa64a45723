// metcdctl: etcdctl's commands for metcd, over the TypeScript client (worker/client/). This file
// reads the global flags, finds the command and runs it; the commands live in metcdctl/ by group
// (kv, lease, turn, cluster, admin) and parse their own flags with util.parseArgs. Global flags:
// --endpoints (a comma list; the client follows the leader itself), --token (or METCDCTL_TOKEN),
// --command-timeout, -w/--write-out simple|json|table, and the TLS flags --cacert, --cert, --key,
// --insecure-skip-tls-verify. As etcdctl: errors are printed `Error: …` on stderr with exit code
// 1; bad arguments exit 128 (etcdctl's ExitBadArgs); `lock NAME COMMAND` exits with COMMAND's.
//
// Differences from etcdctl, kept small: `txn` also reads metcd's /txn JSON; -w json prints
// metcd's own JSON (plain strings, not base64); lease ids are metcd's decimal ids.

import { parseArgs } from 'node:util';
import { createClient } from '../worker/client/index.ts';
import { EXIT_BAD_ARGS, EXIT_ERROR, UsageError, duration, message, type Command, type Options, type Values } from './metcdctl/command.ts';
import { KV_COMMANDS } from './metcdctl/kv-commands.ts';
import { LEASE_COMMANDS } from './metcdctl/lease-commands.ts';
import { TURN_COMMANDS } from './metcdctl/turn-commands.ts';
import { CLUSTER_COMMANDS } from './metcdctl/cluster-commands.ts';
import { ADMIN_COMMANDS } from './metcdctl/admin-commands.ts';
import { tlsFetch } from './metcdctl/tls.ts';

const GLOBAL: Options = {
  endpoints: { type: 'string' },
  token: { type: 'string' },
  'command-timeout': { type: 'string' },
  'write-out': { type: 'string', short: 'w' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'insecure-skip-tls-verify': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const COMMANDS: Record<string, Command> = {
  ...KV_COMMANDS,
  ...LEASE_COMMANDS,
  ...TURN_COMMANDS,
  ...CLUSTER_COMMANDS,
  ...ADMIN_COMMANDS,
};

function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage}`);
  return [
    'Usage: metcdctl [--endpoints URLS] [--token T] [--command-timeout 5s] [-w simple|json|table] [--cacert F --cert F --key F] COMMAND …',
    '',
    'Commands:',
    ...lines,
    '',
    'Global flags:',
    '  --endpoints URLS            comma list of peer URLs (default http://127.0.0.1:3379; env METCDCTL_ENDPOINTS)',
    '  --token T                   bearer token (env METCDCTL_TOKEN)',
    '  --command-timeout D         deadline of each request, e.g. 5s, 500ms (default 5s)',
    '  -w, --write-out F           simple (default), json or table',
    '  --cacert FILE               CA bundle that signed the peers’ certificates (https endpoints)',
    '  --cert FILE, --key FILE     client certificate and key (--client-cert-auth)',
    '  --insecure-skip-tls-verify  accept any server certificate (testing only)',
  ].join('\n');
}

function isFlagWithValue(options: Options, arg: string): boolean {
  if (!arg.startsWith('-') || arg.includes('=')) return false;
  const flag = arg.replace(/^-+/, '');
  const spec = options[flag] ?? Object.values(options).find((o) => o.short === flag);
  return spec?.type === 'string';
}

/** Splits argv into the command's words and the rest (global flags may come first). */
function splitCommand(argv: string[]): { name: string; rest: string[] } {
  const before: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) break;
    before.push(a);
    if (isFlagWithValue(GLOBAL, a)) before.push(argv[++i] ?? '');
  }
  const words: string[] = [];
  for (let n = 1; n <= 3 && i + n <= argv.length; n++) {
    const candidate = argv.slice(i, i + n).join(' ');
    if (COMMANDS[candidate] !== undefined) words.splice(0, words.length, ...argv.slice(i, i + n));
  }
  if (words.length === 0) return { name: argv[i] ?? '', rest: before };
  return { name: words.join(' '), rest: [...before, ...argv.slice(i + words.length)] };
}

/** Cuts off what follows the command's own `count` positionals (or `--`): it is passed through. */
function splitPassThrough(rest: string[], options: Options, count: number | undefined): { own: string[]; passThrough: string[] } {
  let seen = 0;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') return { own: rest.slice(0, i), passThrough: rest.slice(i + 1) };
    if (a.startsWith('-') && a !== '-') {
      if (isFlagWithValue(options, a)) i++;
      continue;
    }
    if (count !== undefined && ++seen > count) return { own: rest.slice(0, i), passThrough: rest.slice(i) };
  }
  return { own: rest, passThrough: [] };
}

export async function main(argv: string[], out: (line: string) => void = (l) => void process.stdout.write(`${l}\n`)): Promise<number> {
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
  const options = { ...GLOBAL, ...command.options };
  const { own, passThrough } = splitPassThrough(rest, options, command.passThroughAfter);
  let values: Values;
  let args: string[];
  try {
    const parsed = parseArgs({ args: own, options, allowPositionals: true, strict: true });
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
  let tls: ReturnType<typeof tlsFetch>;
  try {
    const writeOut = (values['write-out'] as string | undefined) ?? 'simple';
    if (writeOut !== 'simple' && writeOut !== 'json' && writeOut !== 'table')
      throw new UsageError(`unsupported output format ${JSON.stringify(writeOut)} (simple, json or table)`);
    const timeoutMs = duration((values['command-timeout'] as string | undefined) ?? '5s');
    const endpoints = (values['endpoints'] as string | undefined) ?? process.env['METCDCTL_ENDPOINTS'] ?? 'http://127.0.0.1:3379';
    const token = (values['token'] as string | undefined) ?? process.env['METCDCTL_TOKEN'];
    tls = tlsFetch({
      cacert: values['cacert'] as string | undefined,
      cert: values['cert'] as string | undefined,
      key: values['key'] as string | undefined,
      insecureSkipVerify: values['insecure-skip-tls-verify'] === true,
    });
    const client = createClient({
      endpoints,
      timeoutMs,
      ...(token === undefined || token === '' ? {} : { token }),
      ...(tls === undefined ? {} : { fetch: tls.fetch }),
    });
    const code = await command.run({ client, values, args, passThrough, writeOut, json: writeOut === 'json', timeoutMs, out });
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`Error: ${err.message}\n`);
      return EXIT_BAD_ARGS;
    }
    process.stderr.write(`Error: ${message(err)}\n`);
    return EXIT_ERROR;
  } finally {
    await tls?.close().catch(() => {});
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
