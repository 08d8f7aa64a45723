// Structural validation of what peers send. Used by decodeMessages (the host answers 400) and
// by step() (the message is dropped and counted), so in-memory hosts that skip the codec get
// the same protection. Returns a short reason, or null when the value is well formed.

import { MESSAGE_TYPES } from './types.ts';
import type { Entry, Membership, Message, SnapshotChunk } from './types.ts';

/** Limits on strings, in UTF-16 code units. */
export const NODE_ID_BYTES_MAX = 128;
export const ADDRESS_BYTES_MAX = 2048;
export const CONTEXT_BYTES_MAX = 256;

const MESSAGE_TYPE_SET: ReadonlySet<string> = new Set(MESSAGE_TYPES);

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function validateNodeId(id: unknown): string | null {
  if (typeof id !== 'string' || id.length === 0) return 'node id must be a non-empty string';
  if (id.length > NODE_ID_BYTES_MAX) return 'node id too long';
  return null;
}

export function validateMembership(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'membership must be an object';
  const { voters, learners, addresses } = m as Membership;
  if (!Array.isArray(voters) || !Array.isArray(learners)) return 'membership voters/learners must be arrays';
  if (typeof addresses !== 'object' || addresses === null || Array.isArray(addresses)) return 'membership addresses must be a record';
  const seen = new Set<string>();
  for (const id of [...voters, ...learners]) {
    const bad = validateNodeId(id);
    if (bad !== null) return `membership: ${bad}`;
    if (seen.has(id)) return 'membership lists a node twice';
    seen.add(id);
  }
  for (const id of Object.keys(addresses)) {
    const bad = validateNodeId(id);
    if (bad !== null) return `membership address: ${bad}`;
    const a = addresses[id];
    if (typeof a !== 'string' || a.length > ADDRESS_BYTES_MAX) return 'membership address must be a short string';
  }
  return null;
}

function validateEntry(e: unknown): string | null {
  if (typeof e !== 'object' || e === null) return 'entry must be an object';
  const { term, index, type, data } = e as Entry;
  if (!isUint(term) || term === 0) return 'entry term must be a positive integer';
  if (!isUint(index) || index === 0) return 'entry index must be a positive integer';
  if (type !== 'normal' && type !== 'conf') return 'entry type must be normal or conf';
  if (!(data instanceof Uint8Array)) return 'entry data must be bytes';
  return null;
}

function validateChunk(c: unknown, msgTerm: number): string | null {
  if (typeof c !== 'object' || c === null) return 'snapshot chunk must be an object';
  const { meta, offset, data, done } = c as SnapshotChunk;
  if (typeof meta !== 'object' || meta === null) return 'snapshot meta must be an object';
  if (!isUint(meta.index) || meta.index === 0) return 'snapshot index must be a positive integer';
  if (!isUint(meta.term) || meta.term === 0 || meta.term > msgTerm) return 'snapshot term out of range';
  const bad = validateMembership(meta.membership);
  if (bad !== null) return bad;
  if (!isUint(offset)) return 'snapshot offset must be a non-negative integer';
  if (!(data instanceof Uint8Array)) return 'snapshot data must be bytes';
  if (typeof done !== 'boolean') return 'snapshot done must be a boolean';
  return null;
}

/** Checks every field's type and range, and the fields each message type needs. */
export function validateMessage(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'message must be an object';
  const msg = m as Message;
  if (typeof msg.type !== 'string' || !MESSAGE_TYPE_SET.has(msg.type)) return 'unknown message type';
  let bad = validateNodeId(msg.from);
  if (bad !== null) return `from: ${bad}`;
  bad = validateNodeId(msg.to);
  if (bad !== null) return `to: ${bad}`;
  if (!isUint(msg.term)) return 'term must be a non-negative integer';
  // Optional fields: when present, of the right type.
  if (msg.index !== undefined && !isUint(msg.index)) return 'index must be a non-negative integer';
  if (msg.logTerm !== undefined && !isUint(msg.logTerm)) return 'logTerm must be a non-negative integer';
  if (msg.commit !== undefined && !isUint(msg.commit)) return 'commit must be a non-negative integer';
  if (msg.hintIndex !== undefined && !isUint(msg.hintIndex)) return 'hintIndex must be a non-negative integer';
  if (msg.hintTerm !== undefined && !isUint(msg.hintTerm)) return 'hintTerm must be a non-negative integer';
  if (msg.reject !== undefined && typeof msg.reject !== 'boolean') return 'reject must be a boolean';
  if (msg.transfer !== undefined && typeof msg.transfer !== 'boolean') return 'transfer must be a boolean';
  if (msg.quiesce !== undefined && typeof msg.quiesce !== 'boolean') return 'quiesce must be a boolean';
  if (msg.quiesce === true && msg.type !== 'heartbeat') return 'only a heartbeat quiesces';
  if (msg.context !== undefined && (typeof msg.context !== 'string' || msg.context.length > CONTEXT_BYTES_MAX)) {
    return 'context must be a short string';
  }
  if (msg.entries !== undefined && !Array.isArray(msg.entries)) return 'entries must be an array';
  if (msg.snapshot !== undefined) {
    bad = validateChunk(msg.snapshot, msg.term);
    if (bad !== null) return bad;
  }
  // Required fields per type.
  switch (msg.type) {
    case 'preVote':
    case 'vote':
      if (msg.index === undefined || msg.logTerm === undefined) return `${msg.type} needs index and logTerm`;
      if (msg.term === 0) return `${msg.type} needs a positive term`;
      return null;
    case 'append': {
      if (msg.index === undefined || msg.logTerm === undefined || msg.commit === undefined || msg.entries === undefined) {
        return 'append needs index, logTerm, commit and entries';
      }
      if (msg.logTerm > msg.term) return 'append logTerm above its term';
      let prevTerm = msg.logTerm;
      for (let i = 0; i < msg.entries.length; i++) {
        const e = msg.entries[i];
        bad = validateEntry(e);
        if (bad !== null) return bad;
        const entry = e as Entry;
        if (entry.index !== msg.index + 1 + i) return 'append entries are not contiguous';
        if (entry.term < prevTerm || entry.term > msg.term) return 'append entry terms out of order';
        prevTerm = entry.term;
      }
      return null;
    }
    case 'appendResp':
    case 'snapshotResp':
      if (msg.index === undefined || msg.hintIndex === undefined) return `${msg.type} needs index and hintIndex`;
      return null;
    case 'heartbeat':
      if (msg.commit === undefined) return 'heartbeat needs commit';
      return null;
    case 'snapshot':
      if (msg.snapshot === undefined) return 'snapshot needs a chunk';
      return null;
    case 'removed':
      if (msg.index === undefined || msg.index === 0) return 'removed needs the index of a configuration';
      return null;
    default:
      return null;
  }
}
