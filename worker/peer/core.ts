// The slice of the Raft core (worker/raft/rawnode.ts) the peer drives. Kept as an interface so
// the loop's needs are written down in one place.

import type {
  ConfChange,
  Membership,
  Message,
  NodeId,
  ProposeResult,
  RaftConfig,
  Ready,
  RestartState,
  Status,
} from '../raft/types.ts';

export interface RaftCore {
  tick(): void;
  step(msg: Message): void;
  propose(datas: Uint8Array[]): ProposeResult;
  proposeConfChange(cc: ConfChange): ProposeResult;
  readIndex(ctx: string): boolean;
  leaseRead(): number | null;
  transferLeadership(to: NodeId): boolean;
  campaign(): void;
  compact(index: number, data: Uint8Array): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  status(): Status;
  membership(): Membership;
}

// TEMPORARY until worker/raft/rawnode.ts is committed: loaded by a computed specifier so this
// layer typechecks without it. Becomes a static `new RawNode(config, restart)`.
const RAWNODE_MODULE = '../raft/rawnode.ts';

export async function createCore(config: RaftConfig, restart: RestartState): Promise<RaftCore> {
  const mod = (await import(RAWNODE_MODULE)) as { RawNode: new (c: RaftConfig, r: RestartState) => RaftCore };
  return new mod.RawNode(config, restart);
}
