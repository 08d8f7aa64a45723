// The counts a tiered engine keeps beside its records (RecordSummary, worker/kv/types.ts), for
// when the engine must count them itself: the records a snapshot installs, or every stored
// record once at open when no batch told it (the state machine computes them the same way:
// pairBytes, isInternalKey).

import type { KeyRecord, RecordSummary } from '../../worker/kv/types.ts';
import { pairBytes } from '../../worker/kv/state-machine.ts';
import { isInternalKey } from '../../worker/kv/tokens.ts';

export const emptySummary = (): RecordSummary => ({ records: 0, internalRecords: 0, bytes: 0 });

/** Counts one more record into `s`. */
export function countRecord(s: RecordSummary, key: string, record: KeyRecord): void {
  s.records++;
  if (isInternalKey(key)) s.internalRecords++;
  s.bytes += pairBytes(key, record.value);
}

export function summarize(records: Iterable<readonly [string, KeyRecord]>): RecordSummary {
  const s = emptySummary();
  for (const [key, record] of records) countRecord(s, key, record);
  return s;
}
