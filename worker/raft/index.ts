// The public surface of the Raft core.

export { RawNode } from './rawnode.ts';
export { encodeMessages, decodeMessages, encodeConfChange, decodeConfChange, RaftCodecError } from './codec.ts';
export { SeededRandom } from './random.ts';
export { defaultRaftConfig } from './config.ts';
export { RaftInvariantError } from './assert.ts';
export { emptyMembership } from './membership.ts';
export { READS_PENDING_MAX } from './readonly.ts';
export type * from './types.ts';
