// Defaults and validation for RaftConfig. A bad config is a host bug: the constructor throws.

import type { NodeId, RaftConfig, RandomSource } from './types.ts';

/**
 * Defaults sized for a 100 ms tick: elections after 1–2 s of silence, a heartbeat per tick.
 * appendBytesMax must exceed the largest command the state machine accepts (2 MiB).
 */
export function defaultRaftConfig(id: NodeId, random: RandomSource): RaftConfig {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    appendBytesMax: 4 * 1024 * 1024,
    inflightAppendsMax: 256,
    uncommittedEntriesMax: 100_000,
    snapshotChunkBytes: 512 * 1024,
    leaseDriftTicks: 2,
    quiesce: true,
    random,
  };
}

function positiveInt(value: unknown, name: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`RaftConfig.${name} must be a positive integer, got ${String(value)}`);
  }
}

export function validateConfig(c: RaftConfig): void {
  if (typeof c.id !== 'string' || c.id.length === 0) throw new RangeError('RaftConfig.id must be a non-empty string');
  positiveInt(c.electionTicks, 'electionTicks');
  positiveInt(c.heartbeatTicks, 'heartbeatTicks');
  positiveInt(c.appendBytesMax, 'appendBytesMax');
  positiveInt(c.inflightAppendsMax, 'inflightAppendsMax');
  positiveInt(c.uncommittedEntriesMax, 'uncommittedEntriesMax');
  positiveInt(c.snapshotChunkBytes, 'snapshotChunkBytes');
  positiveInt(c.leaseDriftTicks, 'leaseDriftTicks');
  if (c.heartbeatTicks >= c.electionTicks) {
    throw new RangeError('RaftConfig.heartbeatTicks must be below electionTicks');
  }
  // At least one tick of drift: a follower's tick phase can lag the leader's by up to one tick.
  if (c.leaseDriftTicks >= c.electionTicks) {
    throw new RangeError('RaftConfig.leaseDriftTicks must be below electionTicks');
  }
  if (typeof c.quiesce !== 'boolean') throw new RangeError('RaftConfig.quiesce must be a boolean');
  if (typeof c.random?.nextInt !== 'function') throw new RangeError('RaftConfig.random must be a RandomSource');
}
