#!/usr/bin/env node
// The `metcdctl` command (package.json "bin"). The CLI is TypeScript run by Node's type stripping
// (Node >= 22.18 / 23.6). On an older Node this launcher re-runs it on the project's own Node
// (the `node` devDependency that `npm install` fetches), passing signals and the exit code on.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const cli = fileURLToPath(new URL('../metcdctl.ts', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
const strips = major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);

if (strips) {
  const { main } = await import(cli);
  process.exitCode = await main(process.argv.slice(2));
} else {
  const root = path.resolve(path.dirname(cli), '..');
  const candidates = [path.join(root, 'node_modules', 'node', 'bin', 'node'), path.join(root, 'node_modules', '.bin', 'node')];
  const node = candidates.find((p) => existsSync(p));
  if (node === undefined) {
    process.stderr.write(`metcdctl: needs Node >= 22.18 (this is ${process.versions.node}); run \`npm install\` in ${root} to fetch one\n`);
    process.exit(1);
  }
  const child = spawn(node, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
