// CPU time of processes from /proc (Linux), so each result can say how much CPU the cluster
// burned per request: on a 2-core machine shared with the load generator that is what decides
// throughput. Elsewhere (no /proc) it reports nothing rather than a wrong number.

import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on every Linux we run on). */
const USER_HZ = 100;

/** utime + stime of `pid` in seconds, or null when it cannot be read (gone, not Linux). */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after its closing ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / USER_HZ : null;
  } catch {
    return null;
  }
}

/** Total CPU seconds of `pids` (processes that cannot be read count as 0). */
export function totalCpuSeconds(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) sum += cpuSeconds(pid) ?? 0;
  return sum;
}

/** The 1-minute load average, to say whether a measurement ran on a quiet machine. */
export function loadAverage1m(): number | null {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}
