// metcd --restore FILE: the backup a new cluster starts from (worker/backup/format.ts), read and
// checked whole before the node listens or touches its data dir. Every member of the new
// cluster is started with the same file and the new membership (--initial-cluster, or
// --bootstrap for one node): each seeds its empty data dir with the same bootstrap snapshot
// (PeerOptions.initialState), at the backup's applied index. A data dir that holds state is
// refused (node.ts): a restore never overwrites a cluster.

import { readFile } from 'node:fs/promises';
import { BackupFormatError, readBackup, type BackupHeader } from '../worker/backup/format.ts';
import type { InitialState } from '../worker/peer/restart.ts';

export class RestoreError extends Error {
  override name = 'RestoreError';
}

export async function loadRestoreFile(file: string): Promise<{ initialState: InitialState; header: BackupHeader }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new RestoreError(`--restore ${file}: cannot read it (${code})`);
  }
  try {
    const { header, state } = readBackup(bytes);
    return { initialState: { kv: state, index: header.appliedIndex }, header };
  } catch (err) {
    if (err instanceof BackupFormatError) throw new RestoreError(`--restore ${file}: ${err.message}`);
    throw err;
  }
}

/** What the log says about the backup being restored. */
export function restoreFields(h: BackupHeader): Record<string, string | number> {
  return {
    revision: h.revision,
    appliedIndex: h.appliedIndex,
    records: h.recordCount,
    sourceCluster: h.clusterId,
    createdAt: new Date(h.createdAtMs).toISOString(),
  };
}
