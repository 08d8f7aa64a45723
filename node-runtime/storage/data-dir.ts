// The data directory's identity and lock. `metcd.json` records, at creation, which engine,
// node and cluster the directory belongs to; starting with anything else is refused before an
// engine touches the files. `LOCK` holds the owning process id so two processes never run one
// directory (SQLite alone would happily let both write).

import { mkdirSync, readFileSync, readdirSync, writeFileSync, unlinkSync, openSync, closeSync, fsyncSync } from 'node:fs';
import path from 'node:path';
import { writeFileDurable } from './durable-fs.ts';
import type { EngineName } from './engine.ts';
import { DataDirError } from './errors.ts';

export const META_FILE = 'metcd.json';
const LOCK_FILE = 'LOCK';
const FORMAT = 1;

export interface DataDirIdentity {
  engine: EngineName;
  nodeId: string;
  clusterId: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Directories this process holds (a LOCK with our own pid may be a previous life's, e.g. pid 1 in a container). */
const heldHere = new Set<string>();

/** Takes the directory's lock; returns a release function. Stale locks of dead processes are taken over. */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const key = path.resolve(dir);
  if (heldHere.has(key)) throw new DataDirError(`data dir ${dir} is already open in this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      fsyncSync(fd);
      closeSync(fd);
      heldHere.add(key);
      return () => {
        heldHere.delete(key);
        try {
          unlinkSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new DataDirError(`data dir ${dir} is in use by process ${pid} (remove ${file} if that process is not metcd)`);
      }
      unlinkSync(file); // left by a process that died (kill -9): take it over
    }
  }
  throw new DataDirError(`data dir ${dir}: could not take ${file}`);
}

/**
 * Checks the directory's recorded identity against `want`, recording it when the directory is
 * new. Returns true when it was recorded just now.
 */
export async function checkIdentity(dir: string, want: DataDirIdentity): Promise<boolean> {
  const file = path.join(dir, META_FILE);
  let raw: string | undefined;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (raw === undefined) {
    const others = readdirSync(dir).filter((n) => n !== LOCK_FILE && !n.startsWith(`${META_FILE}.tmp`));
    if (others.length > 0) {
      throw new DataDirError(
        `data dir ${dir} is not empty but has no ${META_FILE} (found ${others.slice(0, 3).join(', ')}); refusing to guess whose data it is`,
      );
    }
    await writeFileDurable(file, Buffer.from(JSON.stringify({ format: FORMAT, ...want }, null, 2) + '\n'));
    return true;
  }
  let have: Partial<DataDirIdentity> & { format?: number };
  try {
    have = JSON.parse(raw) as typeof have;
  } catch {
    throw new DataDirError(`${file} is not valid JSON; refusing to start`);
  }
  if (have.format !== FORMAT) throw new DataDirError(`${file} has format ${String(have.format)}, this metcd reads format ${FORMAT}`);
  if (have.engine !== want.engine) {
    throw new DataDirError(
      `data dir ${dir} was created with --engine ${String(have.engine)}, not ${want.engine}; start with --engine ${String(have.engine)} or use another --data-dir`,
    );
  }
  if (have.nodeId !== want.nodeId) {
    throw new DataDirError(`data dir ${dir} belongs to node ${String(have.nodeId)}, not ${want.nodeId}`);
  }
  if (have.clusterId !== want.clusterId) {
    throw new DataDirError(`data dir ${dir} belongs to cluster ${String(have.clusterId)}, not ${want.clusterId}`);
  }
  return false;
}
