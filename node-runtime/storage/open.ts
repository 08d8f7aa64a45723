// Opens a node's storage: lock the data dir, check (or record) its identity, open the chosen
// engine in `<data-dir>/<engine>/`, and record the identity in the engine's metadata too, so
// LoadedState.meta says which engine, node and cluster the state belongs to.

import path from 'node:path';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { Logger } from '../log.ts';
import { isFresh } from '../../worker/peer/restart.ts';
import { checkIdentity, lockDataDir, type DataDirIdentity } from './data-dir.ts';
import type { EngineName, EngineStats, StorageEngine } from './engine.ts';
import type { GroupCommitLimits } from './group-commit.ts';
import type { OffLoopReads } from './loop-read-cost.ts';
import { DataDirError } from './errors.ts';
import { LevelDbEngine } from './leveldb-engine.ts';
import { MemoryEngine } from './memory-engine.ts';
import { SqliteEngine } from './sqlite-engine.ts';

export interface OpenStorageOptions extends DataDirIdentity {
  dataDir: string;
  log: Logger;
  groupCommit?: Partial<GroupCommitLimits>;
  /** memory engine: rewrite its log once it exceeds this (and twice the last image). */
  memoryRewriteMinBytes?: number;
  /** sqlite and leveldb: when a client's misses are read off the event loop. */
  offLoopReads?: OffLoopReads;
}

async function openEngine(engine: EngineName, opts: OpenStorageOptions): Promise<StorageEngine> {
  const base = { dir: path.join(opts.dataDir, engine), log: opts.log, groupCommit: opts.groupCommit, offLoopReads: opts.offLoopReads };
  switch (engine) {
    case 'memory':
      return MemoryEngine.open(opts.memoryRewriteMinBytes === undefined ? base : { ...base, rewriteMinBytes: opts.memoryRewriteMinBytes });
    case 'sqlite':
      return SqliteEngine.open(base);
    case 'leveldb':
      return LevelDbEngine.open(base);
  }
}

/** A node's storage: the engine plus the data dir's lock, with the loaded state ready. */
export class NodeStorage implements StorageEngine {
  readonly engine: EngineName;
  readonly fresh: boolean;
  private readonly inner: StorageEngine;
  private readonly release: () => void;
  private state: LoadedState | undefined;

  private constructor(inner: StorageEngine, state: LoadedState, fresh: boolean, release: () => void) {
    this.engine = inner.engine;
    this.inner = inner;
    this.state = state;
    this.fresh = fresh;
    this.release = release;
  }

  static async open(opts: OpenStorageOptions): Promise<NodeStorage> {
    const release = lockDataDir(opts.dataDir);
    let inner: StorageEngine | undefined;
    try {
      await checkIdentity(opts.dataDir, opts);
      inner = await openEngine(opts.engine, opts);
      let state = await inner.load();
      // Fresh = no Raft state yet (also after a crash between creating the dir and the first save).
      const fresh = isFresh(state);
      const identity: Record<string, string> = { engine: opts.engine, nodeId: opts.nodeId, clusterId: opts.clusterId };
      for (const [k, v] of Object.entries(identity)) {
        const have = state.meta[k];
        if (have !== undefined && have !== v) {
          throw new DataDirError(`${opts.dataDir}: the ${opts.engine} store records ${k}=${have}, but ${v} was asked for`);
        }
      }
      if (Object.keys(identity).some((k) => state.meta[k] === undefined)) {
        await inner.save({ meta: identity });
        state = { ...state, meta: { ...state.meta, ...identity } };
      }
      return new NodeStorage(inner, state, fresh, release);
    } catch (err) {
      await inner?.close().catch(() => undefined);
      release();
      throw err;
    }
  }

  async load(): Promise<LoadedState> {
    const s = this.state;
    this.state = undefined;
    return s ?? this.inner.load();
  }

  save(batch: SaveBatch): Promise<void> {
    this.state = undefined;
    return this.inner.save(batch);
  }

  stats(): EngineStats {
    return this.inner.stats();
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      this.release();
    }
  }
}
