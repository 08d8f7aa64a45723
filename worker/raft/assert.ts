// Internal invariants. A failed invariant is a bug in the core (or a host breaking the API
// contract), never bad input from a peer: peer input is validated and dropped in step().

export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

export function invariant(condition: boolean, what: string): asserts condition {
  if (!condition) throw new RaftInvariantError(`raft invariant violated: ${what}`);
}
