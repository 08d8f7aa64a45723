// What the scale phase's parts share (scale.ts, scale-reads.ts, scale-join.ts): the cluster they
// drive, the loaded keys and their values, and what /proc and du say about a node.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { LeaderView } from './target.ts';

/** What the phase drives: EtcdCluster and MetcdCluster both fit. */
export interface ScaleCluster {
  readonly system: 'etcd' | 'metcd';
  readonly label: string;
  leader(timeoutMs?: number): Promise<LeaderView>;
  clientUrls(): string[];
  pids(): number[];
  dataDirs(): string[];
  killAll(): Promise<void>;
  restartAll(): void;
  /** Adds a 4th member as a learner and starts it on an empty data dir (absent: not measured). */
  addLearner?(): Promise<JoiningMember>;
}

/** A learner just added and started, to be timed while it catches up, then removed. */
export interface JoiningMember {
  readonly id: string;
  readonly pid: number;
  readonly dataDir: string;
  /** What it must apply to have caught up: the leader's commit index once it was added. */
  readonly targetIndex: number;
  /** The leader's last snapshot when it was added: the learner installs it, then replays the log
   *  from there to targetIndex (null: the system does not say). */
  readonly leaderSnapshotIndex: number | null;
  /** performance.now() at its spawn. */
  readonly spawnedAtMs: number;
  /** Its applied index now; null while it does not answer. */
  applied(): Promise<number | null>;
  /** Out of the membership, the process killed (also when the removal fails), its data dir gone. */
  remove(): Promise<void>;
  logTail(): string;
}

export const scaleKey = (i: number): string => `scale/${String(i).padStart(9, '0')}`;

const VALUE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Key i's value: `bytes` characters of a pseudo-random stream seeded by i (mulberry32), so any
 *  key's value can be checked after a restart without keeping them all. */
export function scaleValue(i: number, bytes: number): string {
  let a = (i + 0x9e3779b9) >>> 0;
  let out = '';
  while (out.length < bytes) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    t = (t ^ (t >>> 14)) >>> 0;
    for (let k = 0; k < 4 && out.length < bytes; k++) out += VALUE_ALPHABET[(t >>> (k * 6)) & 63];
  }
  return out;
}

/** A memory line of /proc/<pid>/status in bytes (the kernel writes kB, meaning KiB): VmRSS the
 *  resident memory now, VmHWM its peak ("high water mark") over the process's life. */
export function parseProcMemoryBytes(status: string, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
  if (m === null) throw new Error(`no ${field} line in the process status`);
  return Number(m[1]) * 1024;
}

/** The byte count of `du -s -B1 DIR` (disk usage in allocated bytes, then a tab and the path). */
export function parseDuBytes(out: string): number {
  const m = /^(\d+)\t/.exec(out);
  if (m === null) throw new Error(`unexpected du output: ${out.slice(0, 100)}`);
  return Number(m[1]);
}

export function rssBytes(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  return parseProcMemoryBytes(readFileSync(`/proc/${pid}/status`, 'utf8'), field);
}

export function diskBytes(dir: string): number {
  const r = spawnSync('du', ['-s', '-B1', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`du ${dir}: ${r.stderr.trim()}`);
  return parseDuBytes(r.stdout);
}

/** A table row for a side (or a part of one) that failed: its label and the error's first line. */
export function failedRow(label: string, error: string): string {
  return `${label.padEnd(15)} FAILED: ${error.split('\n')[0]}`;
}
