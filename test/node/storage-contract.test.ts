// The PeerStorage contract against the three Node engines, each hosted in a child process so
// a crash is a real SIGKILL (test/node/storage-host.ts). Engine-specific behaviour (the data
// dir's identity and lock, fsync sharing, torn tails, corruption) is tested beside this:
// storage-open.test.ts, storage-crash.test.ts and the engines' own tests.

import { afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ENGINE_NAMES } from '../../node-runtime/storage/engine.ts';
import { describeStorageContract } from '../support/describe-storage-contract.ts';
import { ChildStorage, stopStorageHosts } from './storage-host.ts';

/** Small, so the memory engine rewrites its log (image + new log) during the longer cases. */
const MEMORY_REWRITE_MIN_BYTES = 16 * 1024;

afterAll(stopStorageHosts);

for (const engine of ENGINE_NAMES) {
  describeStorageContract(`${engine} engine`, {
    ownMeta: { engine, nodeId: 'n1', clusterId: 'c1' },
    refusesMalformed: true,
    mayDeferDerivedState: false,
    async newStore() {
      const dataDir = mkdtempSync(path.join(tmpdir(), `metcd-contract-${engine}-`));
      return {
        open: () => ChildStorage.open(engine, dataDir, MEMORY_REWRITE_MIN_BYTES),
        crash: (storage) => (storage as ChildStorage).kill(),
        dispose: async () => rmSync(dataDir, { recursive: true, force: true }),
      };
    },
  });
}
