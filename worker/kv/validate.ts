// What makes a command acceptable: its shape, and the limits on keys, values, pairs and bytes.
// Checked twice with the same code: by the API before proposing (validateCommand), and by the
// state machine when applying (commandProblem), so a bad entry that reached the log anyway is
// answered `invalid` on every replica alike instead of wedging them. Limits must therefore be
// the same on every replica of a cluster.

import type { Compare, ClientStamp, KvCommand, KvLimits } from './types.ts';
import { COMMAND_HEADER_BYTES, JSON_COMMAND_HEADER_BYTES } from './codec.ts';
import { TOKEN_ACCESS, TOKEN_HASH_PATTERN, TOKEN_ID_PATTERN, TOKEN_NAME_CHARS_MAX, TOKEN_RULES_MAX, cleanToken } from './tokens.ts';
import { varuintBytes } from './bytes.ts';
import { invalid, isNonNegativeSafeInteger, isObject, keyProblem, tooLarge, valueProblem, type CommandProblem } from './checks.ts';
import { cleanTxn, txnProblem } from './txn.ts';
import { leaseCommandProblem, leaseFieldProblem } from './lease-validate.ts';

export type { CommandProblem, ProblemCode } from './checks.ts';

/** Client ids: 1..64 printable ASCII characters (they travel in HTTP headers). */
export const CLIENT_ID_CHARS_MAX = 64;

export function validateCommand(
  cmd: unknown,
  limits: KvLimits,
): { ok: true; cmd: KvCommand } | { ok: false; code: CommandProblem['code']; message: string } {
  const problem = commandProblem(cmd, limits);
  if (problem !== null) return { ok: false, code: problem.code, message: problem.message };
  return { ok: true, cmd: cleanCopy(cmd as KvCommand) };
}

/** A copy holding only the known fields (no prototype or extra-property baggage). */
function cleanCopy(cmd: KvCommand): KvCommand {
  if (cmd.op === 'token-put') return { op: 'token-put', token: cleanToken(cmd.token) };
  if (cmd.op === 'token-delete') return { op: 'token-delete', id: cmd.id };
  if (cmd.op === 'compact') return { op: 'compact', revision: cmd.revision };
  if (cmd.op === 'txn') {
    const txn: KvCommand = { op: 'txn', ...cleanTxn(cmd) };
    if (cmd.stamp !== undefined) txn.stamp = { client: cmd.stamp.client, seq: cmd.stamp.seq };
    return txn;
  }
  if (cmd.op === 'lease-grant')
    return cmd.owner === undefined ? { op: 'lease-grant', ttl: cmd.ttl } : { op: 'lease-grant', ttl: cmd.ttl, owner: cmd.owner };
  if (cmd.op === 'lease-revoke') return { op: 'lease-revoke', id: cmd.id };
  const out: KvCommand =
    cmd.op === 'put' ? { op: 'put', pairs: cmd.pairs.map(([k, v]): [string, string] => [k, v]) } : { op: 'delete', keys: cmd.keys.slice() };
  if (cmd.compare !== undefined) out.compare = { key: cmd.compare.key, modRevision: cmd.compare.modRevision };
  if (cmd.stamp !== undefined) out.stamp = { client: cmd.stamp.client, seq: cmd.stamp.seq };
  if (cmd.op === 'put' && out.op === 'put' && cmd.lease !== undefined && cmd.lease !== 0) out.lease = cmd.lease;
  return out;
}

/** Problem with the stamp, or null. Exported so apply can refuse a bad stamp before sessions. */
export function stampProblem(stamp: unknown): CommandProblem | null {
  if (!isObject(stamp)) return invalid('stamp must be an object {client, seq}');
  const { client, seq } = stamp as Partial<ClientStamp>;
  if (typeof client !== 'string' || client.length < 1 || client.length > CLIENT_ID_CHARS_MAX) {
    return invalid(`client id must be 1..${CLIENT_ID_CHARS_MAX} printable ASCII characters`);
  }
  for (let i = 0; i < client.length; i++) {
    const c = client.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return invalid(`client id must be 1..${CLIENT_ID_CHARS_MAX} printable ASCII characters`);
  }
  if (!isNonNegativeSafeInteger(seq) || seq < 1) return invalid('stamp seq must be a positive safe integer');
  return null;
}

/**
 * The first problem with `cmd`, or null when it is a well-formed command within `limits`.
 * Allocation-free when the command is fine (apply calls this for every entry). Command bytes
 * are counted exactly as encodeCommand lays them out.
 */
export function commandProblem(cmd: unknown, limits: KvLimits): CommandProblem | null {
  if (!isObject(cmd)) return invalid('command must be an object');
  const op = cmd['op'];
  if (op === 'token-put' || op === 'token-delete') return tokenCommandProblem(cmd, limits);
  if (op === 'txn') {
    const stamp = cmd['stamp'];
    return (stamp === undefined ? null : stampProblem(stamp)) ?? txnProblem(cmd, limits);
  }
  if (op === 'lease-grant' || op === 'lease-revoke') return leaseCommandProblem(cmd);
  if (op === 'compact') {
    if (Object.keys(cmd).some((name) => name !== 'op' && name !== 'revision')) return invalid('compact takes only a revision');
    return isNonNegativeSafeInteger(cmd['revision']) && cmd['revision'] >= 1
      ? null
      : invalid('compact revision must be a positive safe integer');
  }
  let bytes = COMMAND_HEADER_BYTES;

  const stamp = cmd['stamp'];
  if (stamp !== undefined) {
    const p = stampProblem(stamp);
    if (p !== null) return p;
    const s = stamp as unknown as ClientStamp;
    bytes += varuintBytes(s.client.length) + s.client.length + varuintBytes(s.seq);
  }

  const compare = cmd['compare'];
  if (compare !== undefined) {
    if (!isObject(compare)) return invalid('compare must be an object {key, modRevision}');
    const c = compare as Partial<Compare>;
    const k = keyProblem(c.key, limits, 'compare key');
    if (typeof k !== 'number') return k;
    if (!isNonNegativeSafeInteger(c.modRevision)) return invalid('compare modRevision must be a non-negative safe integer');
    bytes += k + varuintBytes(c.modRevision);
  }

  let count: number;
  if (cmd['op'] === 'put') {
    const pairs = cmd['pairs'];
    if (!Array.isArray(pairs)) return invalid('put needs pairs: an array of [key, value]');
    count = pairs.length;
    if (count === 0) return invalid('put needs at least one pair');
    if (count > limits.pairsPerCommandMax) return tooLarge(`put has ${count} pairs, above the limit of ${limits.pairsPerCommandMax}`);
    for (let i = 0; i < count; i++) {
      const pair: unknown = pairs[i];
      if (!Array.isArray(pair) || pair.length !== 2) return invalid('each pair must be [key, value]');
      const k = keyProblem(pair[0], limits, 'key');
      if (typeof k !== 'number') return k;
      const v = valueProblem(pair[1], limits);
      if (typeof v !== 'number') return v;
      bytes += k + v;
    }
    if (count > 1 && hasDuplicate(pairs as Array<[string, string]>, (p) => p[0])) {
      return invalid('a key appears twice in one put');
    }
    const lease = leaseFieldProblem(cmd['lease']);
    if (typeof lease !== 'number') return lease;
    bytes += lease;
  } else if (cmd['op'] === 'delete') {
    const keys = cmd['keys'];
    if (!Array.isArray(keys)) return invalid('delete needs keys: an array of strings');
    count = keys.length;
    if (count === 0) return invalid('delete needs at least one key');
    if (count > limits.pairsPerCommandMax) return tooLarge(`delete has ${count} keys, above the limit of ${limits.pairsPerCommandMax}`);
    for (let i = 0; i < count; i++) {
      const k = keyProblem(keys[i], limits, 'key');
      if (typeof k !== 'number') return k;
      bytes += k;
    }
    if (count > 1 && hasDuplicate(keys as string[], (k) => k)) return invalid('a key appears twice in one delete');
  } else {
    return invalid(`unknown op ${JSON.stringify(String(cmd['op']))}; expected "put" or "delete"`);
  }
  bytes += varuintBytes(count);
  if (bytes > limits.commandBytesMax) return tooLarge(`command is ${bytes} bytes, above the limit of ${limits.commandBytesMax}`);
  return null;
}

/** Token commands carry no stamp or compare; a token's fields are checked one by one. */
function tokenCommandProblem(cmd: Record<string, unknown>, limits: KvLimits): CommandProblem | null {
  for (const name of Object.keys(cmd)) {
    if (!['op', cmd['op'] === 'token-put' ? 'token' : 'id'].includes(name)) return invalid(`${String(cmd['op'])} takes no ${name}`);
  }
  if (cmd['op'] === 'token-delete') return TOKEN_ID_PATTERN.test(String(cmd['id'])) ? null : invalid('token id must be 16 hex digits');
  const t = cmd['token'];
  if (!isObject(t)) return invalid('token must be an object');
  if (typeof t['id'] !== 'string' || !TOKEN_ID_PATTERN.test(t['id'])) return invalid('token id must be 16 lowercase hex digits');
  const name = t['name'];
  if (typeof name !== 'string' || !/^[\x20-\x7e]+$/.test(name) || name.length > TOKEN_NAME_CHARS_MAX) {
    return invalid(`token name must be 1..${TOKEN_NAME_CHARS_MAX} printable ASCII characters`);
  }
  if (typeof t['hash'] !== 'string' || !TOKEN_HASH_PATTERN.test(t['hash'])) return invalid('token hash must be 64 lowercase hex digits');
  const rules = t['rules'];
  if (!Array.isArray(rules)) return invalid('token rules must be an array of {prefix, access}');
  if (rules.length > TOKEN_RULES_MAX) return invalid(`a token has at most ${TOKEN_RULES_MAX} rules`);
  let bytes = JSON_COMMAND_HEADER_BYTES + 512;
  for (const rule of rules as unknown[]) {
    if (!isObject(rule)) return invalid('each rule must be an object {prefix, access}');
    const prefix = rule['prefix'];
    if (typeof prefix !== 'string') return invalid('a rule\'s prefix must be a string ("" for every key)');
    if (prefix !== '') {
      const k = keyProblem(prefix, limits, "a rule's prefix");
      if (typeof k !== 'number') return k;
      bytes += k;
    }
    if (!(TOKEN_ACCESS as readonly unknown[]).includes(rule['access'])) {
      return invalid(`a rule's access must be one of ${TOKEN_ACCESS.join(', ')}`);
    }
  }
  if (typeof t['admin'] !== 'boolean' || typeof t['status'] !== 'boolean') return invalid('token admin and status must be booleans');
  const expiresAt = t['expiresAt'];
  if (expiresAt !== null && (!isNonNegativeSafeInteger(expiresAt) || expiresAt < 1)) {
    return invalid('token expiresAt must be null or a positive safe integer (ms since the epoch)');
  }
  if (!isNonNegativeSafeInteger(t['createdAt'])) return invalid('token createdAt must be a non-negative safe integer');
  if (bytes > limits.commandBytesMax) return tooLarge(`command is about ${bytes} bytes, above the limit of ${limits.commandBytesMax}`);
  return null;
}

function hasDuplicate<T>(items: T[], key: (item: T) => string): boolean {
  if (items.length === 2) return key(items[0]!) === key(items[1]!);
  const seen = new Set<string>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) return true;
    seen.add(k);
  }
  return false;
}

/** Throws RangeError unless every limit is a positive safe integer. */
export function checkLimits(limits: KvLimits): void {
  for (const name of [
    'keyBytesMax',
    'valueBytesMax',
    'pairsPerCommandMax',
    'commandBytesMax',
    'sessionsMax',
    'sessionIdleEntriesMax',
    'tokensMax',
    'txnOpsMax',
    'historyRetention',
    'leasesMax',
    'leaseKeysMax',
    'leasesPerOwnerMax',
  ] as const) {
    const v = limits[name];
    if (!Number.isSafeInteger(v) || v! < 1) throw new RangeError(`KvLimits.${name} must be a positive safe integer, got ${v}`);
  }
}
