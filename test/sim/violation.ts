// A broken safety or liveness property. Thrown by the checkers, caught by the run, which turns
// it into a failure report carrying the seed and the exact replay command.

export class SimViolation extends Error {
  readonly invariant: string;

  constructor(invariant: string, detail: string) {
    super(`${invariant}: ${detail}`);
    this.name = 'SimViolation';
    this.invariant = invariant;
  }
}

export function violation(invariant: string, detail: string): never {
  throw new SimViolation(invariant, detail);
}
