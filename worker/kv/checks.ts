// The small checks every command validation is built from (validate.ts, txn.ts): shapes, keys
// and values within limits, and the problem they report. Sizes are in encoded bytes, as the
// command codec lays them out (varuint length + UTF-8).

import type { KvLimits } from './types.ts';
import { varuintBytes } from './bytes.ts';
import { utf8Length } from './utf8.ts';
import { isInternalKey } from './tokens.ts';

export type ProblemCode = 'invalid' | 'too-large';

export interface CommandProblem {
  code: ProblemCode;
  message: string;
}

export function invalid(message: string): CommandProblem {
  return { code: 'invalid', message };
}

export function tooLarge(message: string): CommandProblem {
  return { code: 'too-large', message };
}

export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function isNonNegativeSafeInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Size in encoded bytes of a key (varuint length + UTF-8), or a problem. Keys are non-empty
 * UTF-8 strings of at most keyBytesMax bytes.
 */
export function keyProblem(key: unknown, limits: KvLimits, what: string): CommandProblem | number {
  if (typeof key !== 'string') return invalid(`${what} must be a string`);
  if (key.length === 0) return invalid(`${what} must not be empty`);
  if (isInternalKey(key)) return invalid(`${what} begins with U+0001, which metcd keeps for its own keys`);
  const n = utf8Length(key);
  if (n < 0) return invalid(`${what} is not valid UTF-8 (lone surrogate)`);
  if (n > limits.keyBytesMax) return tooLarge(`${what} is ${n} bytes, above the limit of ${limits.keyBytesMax}`);
  return varuintBytes(n) + n;
}

export function valueProblem(value: unknown, limits: KvLimits): CommandProblem | number {
  if (typeof value !== 'string') return invalid('value must be a string');
  const n = utf8Length(value);
  if (n < 0) return invalid('value is not valid UTF-8 (lone surrogate)');
  if (n > limits.valueBytesMax) return tooLarge(`value is ${n} bytes, above the limit of ${limits.valueBytesMax}`);
  return varuintBytes(n) + n;
}
