// The scale phase's join (issue 14: "a new member joins such a cluster by streamed snapshot with
// bounded memory (state the peak)"): after the reads, a 4th member is added as a learner and
// started on an empty data dir; timed from its spawn until its applied index reaches the
// leader's commit index of the moment it was added. Its resident memory is sampled every
// SAMPLE_MS and its peak (VmHWM, the kernel's high-water mark over the process's life) read
// once it has caught up, with its data dir's size; then it is removed from the membership and
// killed. No target is judged: the peak is stated.

import { performance } from 'node:perf_hooks';
import { diskBytes, failedRow, rssBytes, type JoiningMember, type ScaleCluster } from './scale-common.ts';
import { sleep } from '../support/wait.ts';

const SAMPLE_MS = 100;

export interface ScaleJoinResult {
  member: string;
  /** Spawn → applied index ≥ the leader's commit when it was added. */
  joinMs: number;
  targetIndex: number;
  /** The leader's last snapshot index when the learner was added (null: not reported): what came
   *  by snapshot, against targetIndex - leaderSnapshotIndex entries replayed from the log. */
  leaderSnapshotIndex: number | null;
  /** VmHWM once caught up, and the largest VmRSS sample. */
  peakRssBytes: number;
  maxSampledRssBytes: number;
  rssSamples: number;
  diskBytes: number;
}

/** Samples `m`'s RSS every SAMPLE_MS while polling its applied index, until caught up or `timeoutMs`. */
async function timeCatchUp(m: JoiningMember, timeoutMs: number): Promise<{ joinMs: number; maxRss: number; samples: number }> {
  let maxRss = 0;
  let samples = 0;
  let gone = false;
  const sample = (): void => {
    try {
      maxRss = Math.max(maxRss, rssBytes(m.pid));
      samples++;
    } catch {
      gone = true; // no /proc entry: it exited
    }
  };
  sample();
  // On a timer, not in the poll: a status answer may be slow while it installs a snapshot.
  const sampler = setInterval(sample, SAMPLE_MS);
  try {
    for (;;) {
      const applied = await m.applied();
      if (applied !== null && applied >= m.targetIndex) return { joinMs: Math.round(performance.now() - m.spawnedAtMs), maxRss, samples };
      if (gone) throw new Error(`${m.id} exited while joining: ${m.logTail().slice(-500)}`);
      if (performance.now() - m.spawnedAtMs > timeoutMs) {
        throw new Error(`${m.id} did not catch up within ${timeoutMs} ms (applied ${applied ?? 'unknown'} of ${m.targetIndex})`);
      }
      await sleep(SAMPLE_MS);
    }
  } finally {
    clearInterval(sampler);
  }
}

export async function measureScaleJoin(
  cluster: ScaleCluster,
  timeoutMs: number,
  note: (text: string) => void = () => undefined,
): Promise<ScaleJoinResult | null> {
  if (cluster.addLearner === undefined) return null;
  const m = await cluster.addLearner();
  try {
    const { joinMs, maxRss, samples } = await timeCatchUp(m, timeoutMs);
    const peak = rssBytes(m.pid, 'VmHWM');
    const disk = diskBytes(m.dataDir);
    const how = m.leaderSnapshotIndex === null ? '' : ` (snapshot at ${m.leaderSnapshotIndex}, log to ${m.targetIndex})`;
    note(`${cluster.label}: learner ${m.id} caught up in ${(joinMs / 1000).toFixed(2)} s${how}, peak RSS ${Math.round(peak / 1e6)} MB`);
    return {
      member: m.id,
      joinMs,
      targetIndex: m.targetIndex,
      leaderSnapshotIndex: m.leaderSnapshotIndex,
      peakRssBytes: peak,
      maxSampledRssBytes: maxRss,
      rssSamples: samples,
      diskBytes: disk,
    };
  } finally {
    await m.remove();
  }
}

/** What scaleJoinLines needs of a side's result. */
interface JoinRow {
  label: string;
  join: ScaleJoinResult | null;
  joinError: string | null;
}

/** The join's table. */
export function scaleJoinLines(rows: readonly JoinRow[]): string[] {
  const measured = rows.filter((r) => r.join !== null || r.joinError !== null);
  if (measured.length === 0) return [];
  const out = [
    '',
    "scale join — a learner added, started on an empty data dir: spawn → its applied index at the leader's commit; peak RSS: its VmHWM once caught up",
    '',
    'system          join s  snapshot at / log to  peak RSS MB  max sampled RSS MB  disk MB',
    '--------------- ------ --------------------- ------------ ------------------- --------',
  ];
  for (const r of measured) {
    if (r.join === null) {
      out.push(failedRow(r.label, r.joinError!));
      continue;
    }
    const j = r.join;
    out.push(
      [
        r.label.padEnd(15),
        (j.joinMs / 1000).toFixed(2).padStart(6),
        (j.leaderSnapshotIndex === null ? 'not reported' : `${j.leaderSnapshotIndex} / ${j.targetIndex}`).padStart(19),
        String(Math.round(j.peakRssBytes / 1e6)).padStart(12),
        String(Math.round(j.maxSampledRssBytes / 1e6)).padStart(19),
        String(Math.round(j.diskBytes / 1e6)).padStart(8),
      ].join(' '),
    );
  }
  return out;
}
