// The sequential specification of ONE key, for the linearizability checker. Given the key's
// state and an operation (input + observed output), it returns every state the key can be in
// after the operation takes effect with that output; none means the output is impossible.
//
// Revisions are global in the store, but the checker partitions by key, so per key we only
// know bounds: writes to a key get strictly increasing revisions, and every revision the store
// reports is at least any revision written before. An unknown-outcome write leaves the key's
// mod revision unknown (only a lower bound) until a read or a successful CAS reveals it.

import type { KvInput, KvOutput } from './history.ts';

export interface KeyState {
  /** null: the key is absent (reads answer null, mod revision 0). */
  value: string | null;
  /**
   * Present and `known`: the key's mod revision. Otherwise (absent, or present with an unknown
   * mod revision) an exclusive lower bound: the next write's revision is > rev, and the key's
   * unknown mod revision is > rev.
   */
  rev: number;
  known: boolean;
}

export const INITIAL_KEY_STATE: KeyState = { value: null, rev: 0, known: true };

/** A string that identifies the state exactly (for the checker's cache). */
export function stateKey(s: KeyState): string {
  return `${s.known ? 'k' : 'u'}${s.rev}${s.value === null ? '-' : `+${s.value}`}`;
}

export function describeState(s: KeyState): string {
  if (s.value === null) return `absent (later writes > rev ${s.rev})`;
  return `${JSON.stringify(s.value)} @${s.known ? s.rev : `>${s.rev} (unknown)`}`;
}

function present(value: string, rev: number, known: boolean): KeyState {
  return { value, rev, known };
}

const NONE: KeyState[] = [];

/** The states after applying `input` with `output` to a key in state `s` (empty: impossible). */
export function stepKey(s: KeyState, input: KvInput, output: KvOutput): KeyState[] {
  if (output.kind === 'unknown') return stepUnknown(s, input);
  const absent = s.value === null;
  switch (input.op) {
    case 'get': {
      if (output.kind !== 'get') break;
      const value = s.value;
      if (value === null) return output.value === null && output.modRevision === 0 ? [s] : NONE;
      if (output.value !== value) return NONE;
      if (s.known) return output.modRevision === s.rev ? [s] : NONE;
      return output.modRevision > s.rev ? [present(value, output.modRevision, true)] : NONE;
    }
    case 'put': {
      if (output.kind !== 'put') break;
      return output.revision > s.rev ? [present(input.value, output.revision, true)] : NONE;
    }
    case 'delete': {
      if (output.kind !== 'delete') break;
      if (absent) {
        // Nothing deleted, revision unchanged: it is the store's revision, >= any past write.
        return output.deleted === 0 && output.revision >= s.rev ? [{ value: null, rev: output.revision, known: true }] : NONE;
      }
      return output.deleted === 1 && output.revision > s.rev ? [{ value: null, rev: output.revision, known: true }] : NONE;
    }
    case 'cas': {
      if (output.kind !== 'cas') break;
      const e = input.expectModRevision;
      if (output.ok) {
        if (output.revision <= s.rev || output.revision <= e) return NONE;
        const matches = absent ? e === 0 : s.known ? e === s.rev : e > s.rev;
        return matches ? [present(input.value, output.revision, true)] : NONE;
      }
      // Failed: the key's mod revision (0 when absent) is not e. Nothing was written.
      if (absent) return e !== 0 ? [s] : NONE;
      if (s.known) return e !== s.rev ? [s] : NONE;
      return [s];
    }
  }
  throw new TypeError(`history: output kind ${output.kind} does not answer a ${input.op}`);
}

/** An operation whose outcome is unknown, taking effect here with whatever output it had. */
function stepUnknown(s: KeyState, input: KvInput): KeyState[] {
  switch (input.op) {
    case 'get':
      return [s];
    case 'put':
      return [present(input.value, s.rev, false)];
    case 'delete':
      return s.value === null ? [s] : [{ value: null, rev: s.rev, known: true }];
    case 'cas': {
      const e = input.expectModRevision;
      if (s.value === null) return e === 0 ? [present(input.value, s.rev, false)] : [s];
      if (s.known) return e === s.rev ? [present(input.value, s.rev, false)] : [s];
      // Unknown mod revision: it may be e (then the write happened) or not.
      return e > s.rev ? [present(input.value, e, false), s] : [s];
    }
  }
}
