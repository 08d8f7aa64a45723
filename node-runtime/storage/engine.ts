// What the three storage engines share: their names, options and the extra surface the node
// runtime uses beyond PeerStorage (write statistics for group-commit checks and metrics).

import type { PeerStorage } from '../../worker/peer/ports.ts';
import type { Logger } from '../log.ts';
import type { GroupCommitLimits } from './group-commit.ts';
import type { OffLoopReads } from './loop-read-cost.ts';

export const ENGINE_NAMES = ['memory', 'sqlite', 'leveldb'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export function isEngineName(v: string): v is EngineName {
  return (ENGINE_NAMES as readonly string[]).includes(v);
}

/** Engines whose table is the home of the key space (LoadedState.tier): the peer keeps only a
 *  cache of hot records in memory. The others load every record at start. */
export function isTieredEngine(engine: EngineName): boolean {
  return engine === 'sqlite' || engine === 'leveldb';
}

export interface EngineOptions {
  /** Directory owned by this engine (created if missing). */
  dir: string;
  log: Logger;
  groupCommit?: Partial<GroupCommitLimits>;
  /** leveldb: how long after open its key filter's first build waits (default 3 s: the build
   *  walks every key, CPU a restart needs more; tests give 0). */
  keyFilterDelayMs?: number;
  /** sqlite and leveldb: when a client's misses are read off the event loop (default auto). */
  offLoopReads?: OffLoopReads;
}

export const DEFAULT_GROUP_COMMIT: GroupCommitLimits = {
  groupItemsMax: 4096,
  queuedItemsMax: 100_000,
};

export interface EngineStats {
  /** Durable writes (fsyncs of the log) performed. */
  syncs: number;
  /** Save batches made durable by those writes. */
  batches: number;
}

export interface StorageEngine extends PeerStorage {
  readonly engine: EngineName;
  stats(): EngineStats;
}
