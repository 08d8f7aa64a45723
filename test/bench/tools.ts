// The external programs the benchmark drives, found on the PATH. A missing one is reported with
// the exact command that installs it, and the part that needs it is skipped (never faked).

import { spawnSync } from 'node:child_process';

export interface Tool {
  name: string;
  /** Absolute path, or null when not installed. */
  path: string | null;
  version: string;
  install: string;
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const out = r.stdout.trim();
  return r.status === 0 && out !== '' ? out : null;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim();
}

export function findEtcd(): Tool {
  const path = which('etcd');
  return {
    name: 'etcd',
    path,
    version: path === null ? '' : firstLine(path, ['--version']),
    install: 'apt-get install -y etcd-server   # Debian/Ubuntu package of etcd 3.4',
  };
}

export function findWrk(): Tool {
  const path = which('wrk');
  // `wrk -v` prints its version and exits non-zero.
  return {
    name: 'wrk',
    path,
    version: path === null ? '' : firstLine(path, ['-v']),
    install: 'apt-get install -y wrk',
  };
}
