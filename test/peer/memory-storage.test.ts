// The peer tests' memory storage meets the same PeerStorage contract as the real backends.

import { describeStorageContract } from '../support/describe-storage-contract.ts';
import { MemoryDisk, MemoryStorage } from './memory-storage.ts';

describeStorageContract('test/peer MemoryStorage', {
  ownMeta: {},
  refusesMalformed: true,
  mayDeferDerivedState: false,
  async newStore() {
    const disk = new MemoryDisk();
    return {
      open: async () => new MemoryStorage(disk),
      crash: async (storage) => (storage as MemoryStorage).crash(),
      dispose: async () => {},
    };
  },
});
