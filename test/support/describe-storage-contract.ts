// The storage contract (storage-contract.ts) as vitest tests: one test per case, run in this
// process against `harness`. Hosts that run the cases elsewhere (workerd) list
// STORAGE_CONTRACT's names themselves.

import { describe, it } from 'vitest';
import { STORAGE_CONTRACT, type StorageHarness } from './storage-contract.ts';

export function describeStorageContract(name: string, harness: StorageHarness): void {
  describe(`PeerStorage contract: ${name}`, () => {
    for (const c of STORAGE_CONTRACT) {
      it.skipIf(c.needsRefusal === true && !harness.refusesMalformed)(c.name, () => c.run(harness));
    }
  });
}
