// The counts a tiered engine keeps beside its records (RecordSummary, types.ts), for whoever
// must count records given whole: the peer and the engine over the records a snapshot installs,
// the sqlite engine over every stored record once at open when no batch told it. The state
// machine keeps the same counts as it applies (pairBytes, isInternalKey).

import type { KeyRecord, RecordSummary } from './types.ts';
import { pairBytes } from './state-machine.ts';
import { isInternalKey } from './tokens.ts';

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
