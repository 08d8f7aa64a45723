// For tests and tools only, never on a peer's path: a LoadedState with its records in
// `kv.records`, read from a tiered engine's disk (every record, into memory), so it can be
// compared with a reference, counted, or sent to another process.

import type { LoadedState } from '../../worker/peer/ports.ts';
import type { KvState } from '../../worker/kv/types.ts';

/** `loaded` with every record in kv.records (key order) and no `tier`; as it is if untiered. */
export function withRecords(loaded: LoadedState): LoadedState {
  if (loaded.tier === undefined) return loaded;
  const records: KvState['records'] = [];
  loaded.tier.disk.walkFrom('', (key, record) => {
    records.push([key, record]);
    return true;
  });
  const out: LoadedState = { ...loaded, kv: { ...loaded.kv, records } };
  delete out.tier;
  return out;
}
