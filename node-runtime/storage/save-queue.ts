// What every engine's save()/load() shares: the state read at open is handed to the first
// load() (so a start reads storage once), every batch is checked against the stored log's
// bounds (LogBounds) and against what the engine can stage (checkStaging) before it is
// queued, and queued batches are written in groups, one
// durable write each (GroupCommit). An engine supplies only how a group is written.

import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import { DEFAULT_GROUP_COMMIT, type EngineStats } from './engine.ts';
import { GroupCommit, type GroupCommitLimits } from './group-commit.ts';
import { LogBounds } from './log-bounds.ts';

export class SaveQueue {
  private loaded: LoadedState | undefined;
  private readonly bounds: LogBounds;
  private readonly commits: GroupCommit<SaveBatch>;

  /** Whether the engine keeps a staging area for a snapshot's records (SaveBatch.stage). */
  private readonly staging: boolean;

  constructor(
    loaded: LoadedState,
    writeGroup: (batches: SaveBatch[]) => void | Promise<void>,
    limits: Partial<GroupCommitLimits> = {},
    opts: { staging?: boolean } = {},
  ) {
    this.loaded = loaded;
    this.staging = opts.staging ?? false;
    const snapshotIndex = loaded.snapshot.meta.index;
    const lastIndex = loaded.entries.length > 0 ? loaded.entries[loaded.entries.length - 1]!.index : snapshotIndex;
    this.bounds = new LogBounds(snapshotIndex, lastIndex, loaded.applied);
    this.commits = new GroupCommit(writeGroup, { ...DEFAULT_GROUP_COMMIT, ...limits });
  }

  /** The state read at open, once; undefined afterwards or after any save (read it again). */
  takeLoaded(): LoadedState | undefined {
    const s = this.loaded;
    this.loaded = undefined;
    return s;
  }

  /** Check `batch` against the log's bounds, then queue it; resolves once it is durable. */
  save(batch: SaveBatch): Promise<void> {
    this.loaded = undefined;
    try {
      checkStaging(batch, this.staging);
      this.bounds.admit(batch);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.commits.submit(batch);
  }

  stats(): EngineStats {
    return { syncs: this.commits.writes, batches: this.commits.itemsWritten };
  }

  /** Resolves when every queued batch has been written. */
  idle(): Promise<void> {
    return this.commits.idle();
  }
}

/** A batch's staged records are for an engine with a staging area, and a staged install
 *  carries its records there, none in `kv` (worker/peer/ports.ts SaveBatch). */
export function checkStaging(batch: SaveBatch, staging: boolean): void {
  const install = batch.installSnapshot;
  const staged = install?.staged !== undefined;
  if (!staging && (batch.stage !== undefined || staged)) {
    throw new Error('staged snapshot records (SaveBatch.stage, installSnapshot.staged) need a tiered engine: this one keeps none');
  }
  if (staged && install!.kv.records.length > 0) {
    throw new Error(`a staged snapshot install carries ${install!.kv.records.length} records in kv: they belong in the staging area`);
  }
}
