// The public surface of the KV state machine layer.

export type { ClientStamp, Compare, KeyRecord, KvChanges, KvCommand, KvLimits, KvResult, KvState, SessionRecord } from './types.ts';
export { DEFAULT_KV_LIMITS } from './types.ts';
export { KvStateMachine } from './state-machine.ts';
export type { RangeOptions } from './state-machine.ts';
export { decodeCommand, decodeState, encodeCommand, encodeState, KvCodecError } from './codec.ts';
export { validateCommand } from './validate.ts';
export type { CommandProblem, ProblemCode } from './validate.ts';
