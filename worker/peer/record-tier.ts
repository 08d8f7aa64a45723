// How a peer opens its KV state machine over what its storage loaded: all in memory (the memory
// engine, the edge today), or tiered (LoadedState.tier: the engine's table is the home of the
// key space, and memory holds the unsaved changes and a bounded cache of hot records,
// worker/kv/tiered-records.ts). The cache's budget is the host's (`--cache-bytes` on Node).

import { KvStateMachine } from '../kv/state-machine.ts';
import { HotCache } from '../kv/hot-cache.ts';
import { TieredRecords } from '../kv/tiered-records.ts';
import type { DiskRecords } from '../kv/record-store.ts';
import type { KeyRecord, KvLimits, KvState, RecordSummary } from '../kv/types.ts';
import type { RandomSource } from '../raft/types.ts';

/** The hot cache's budget when the host names none (etcd has no such cache; 64 MiB keeps a
 *  Node peer well under the 300 MB the tiers aim for). */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/** What a cached record is taken to cost in memory: its strings (UTF-16, 2 bytes a unit), the
 *  record object, and the cache's entry, map slot and list links around them. Measured with a
 *  full 64 MiB cache of 1M 14-character keys and 100-character values (heap after a full GC):
 *  572 bytes each, of which 288 are neither the strings nor the record; 160 had been assumed,
 *  so the cache held 1.3 times its budget. */
export const CACHE_ENTRY_OVERHEAD_BYTES = 320;

export function cachedRecordBytes(key: string, record: KeyRecord | null): number {
  return 2 * key.length + (record === null ? 0 : 2 * record.value.length + 56) + CACHE_ENTRY_OVERHEAD_BYTES;
}

export interface TierOptions {
  kvLimits: KvLimits;
  cacheBytes: number;
  random: RandomSource;
}

/** A state machine over `disk` (tiered), with `state`'s revision and sessions. */
export function openTiered(disk: DiskRecords, summary: RecordSummary, state: KvState, o: TierOptions): KvStateMachine {
  const cache = new HotCache<KeyRecord | null>({
    capacityBytes: o.cacheBytes,
    weigh: cachedRecordBytes,
    random: o.random, // the sketch's hash seeds: not guessable by clients
  });
  const store = new TieredRecords(disk, cache, summary);
  const base: KvState = { revision: state.revision, records: [], sessions: state.sessions };
  return new KvStateMachine(o.kvLimits, base, { store, summary });
}
