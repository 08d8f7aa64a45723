// `npm run cluster`: a local 3-node cluster (like raftexample's Procfile), each node's log
// prefixed with its id, all stopped by Ctrl-C. Data lives in ./data/n1..n3 and survives
// restarts; the cluster token (peers' credential) and the root token (clients' credential:
// Authorization: Bearer …) are generated once, kept in ./data/.cluster-token and
// ./data/.root-token (mode 0600), and printed at start.
//
//   npm run cluster                               sqlite, ports 3379 3380 3381
//   npm run cluster -- --engine leveldb           another engine (fresh data dirs: wipe ./data)
//   npm run cluster -- --base-port 13379 --tick-ms 20 --data-root /tmp/metcd

import { spawn, type ChildProcess } from 'node:child_process';
import { nodeProcess } from './process-tuning.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';

const CLI = new URL('./cli.ts', import.meta.url).pathname;
const SIZE = 3;

function fail(message: string): never {
  process.stderr.write(`cluster: ${message}\n`);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      engine: { type: 'string', default: 'sqlite' },
      'base-port': { type: 'string', default: '3379' },
      'data-root': { type: 'string', default: './data' },
      'tick-ms': { type: 'string', default: '100' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (err) {
  fail(
    `${err instanceof Error ? err.message.split('\n')[0] : String(err)} (flags: --engine --base-port --data-root --tick-ms --log-level)`,
  );
}
if (values['help']) {
  process.stdout.write(
    'usage: npm run cluster [-- --engine sqlite|memory|leveldb --base-port 3379 --data-root ./data --tick-ms 100 --log-level info]\n',
  );
  process.exit(0);
}
const basePort = Number(values['base-port']);
if (!Number.isInteger(basePort) || basePort < 1 || basePort + SIZE - 1 > 65535)
  fail(`--base-port ${String(values['base-port'])} is not a port`);
const root = path.resolve(String(values['data-root']));
mkdirSync(root, { recursive: true });

/** A secret kept in `file` under the data root, made on first use. */
function secret(file: string): { path: string; value: string } {
  const at = path.join(root, file);
  if (!existsSync(at)) writeFileSync(at, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
  return { path: at, value: readFileSync(at, 'utf8').trim() };
}
const clusterToken = secret('.cluster-token');
const rootToken = secret('.root-token');

const ids = Array.from({ length: SIZE }, (_, k) => `n${k + 1}`);
const url = (k: number) => `http://127.0.0.1:${basePort + k}`;
const initialCluster = ids.map((id, k) => `${id}=${url(k)}`).join(',');
const children = new Map<string, ChildProcess>();
let stopping = false;

function prefixLines(id: string, stream: NodeJS.ReadableStream, out: NodeJS.WriteStream): void {
  createInterface({ input: stream }).on('line', (line) => out.write(`[${id}] ${line}\n`));
}

ids.forEach((id, k) => {
  const node = nodeProcess(CLI, [
    '--id',
    id,
    '--http',
    `127.0.0.1:${basePort + k}`,
    '--data-dir',
    path.join(root, id),
    '--engine',
    String(values['engine']),
    '--initial-cluster',
    initialCluster,
    '--cluster-token',
    clusterToken.value,
    '--root-token-file',
    rootToken.path,
    '--tick-ms',
    String(values['tick-ms']),
    '--log-level',
    String(values['log-level']),
  ]);
  const child = spawn(process.execPath, node.argv, { stdio: ['ignore', 'pipe', 'pipe'], env: node.env });
  children.set(id, child);
  prefixLines(id, child.stdout!, process.stdout);
  prefixLines(id, child.stderr!, process.stderr);
  child.on('exit', (code, signal) => {
    children.delete(id);
    process.stdout.write(`[cluster] ${id} exited (${signal ?? `code ${code}`})${stopping ? '' : '; the other nodes keep running'}\n`);
    if (children.size === 0) process.exit(stopping ? 0 : 1);
  });
});
process.stdout.write(`[cluster] ${SIZE} nodes: ${ids.map((id, k) => `${id} ${url(k)}`).join(', ')}; data in ${root}; Ctrl-C stops all\n`);
process.stdout.write(`[cluster] root token in ${rootToken.path}, cluster token in ${clusterToken.path} (mode 0600; never printed)\n`);
const relative = path.relative(process.cwd(), rootToken.path);
const auth = `-H "Authorization: Bearer $(cat ${relative.startsWith('..') ? rootToken.path : relative})"`;
process.stdout.write(
  `[cluster] try: curl --location-trusted ${auth} ${url(0)}/hello -XPUT -d world && curl --location-trusted ${auth} ${url(1)}/hello\n`,
);

function stopAll(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`[cluster] stopping all nodes\n`);
  // Ctrl-C already reached the children (same process group); SIGTERM from elsewhere did not.
  for (const child of children.values()) child.kill(signal === 'SIGINT' ? 'SIGTERM' : signal);
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
  }, 20_000).unref();
}
process.on('SIGINT', () => stopAll('SIGINT'));
process.on('SIGTERM', () => stopAll('SIGTERM'));
