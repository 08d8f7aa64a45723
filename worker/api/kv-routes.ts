// The key-value routes, in both styles:
//   hraftd style              POST /key {"k":"v",…}   GET /key/:key → {"k":"v"}   DELETE /key/:key
//                             GET /key?prefix=&start=&end=&limit=  → {"k":"v",…} (sorted, bounded)
//   metcd style               PUT /:key (raw body)    GET /:key → raw value      DELETE /:key
// Writes accept ?ifRevision=N (compare-and-set on the key's mod revision; 0 = must not exist;
// POST /key names the compared key with ?ifKey= when it writes more than one pair). Puts accept
// ?lease=ID (attach) or ?ttl=N (a new lease for them): lease-routes.ts.

import type { KeyRecord, KvCommand, KvResult } from '../kv/types.ts';
import { PeerError } from '../peer/errors.ts';
import type { KvView, ReadLevel, ReadOutcome } from '../peer/peer.ts';
import { parseJsonObject, decodeUtf8 } from './body.ts';
import { kvRefusalToApi, peerErrorToApi } from './errors.ts';
import { isApiReply, type ApiReply } from './exchange.ts';
import { ApiError, H, badRequest, jsonReply, jsonTextReply, pairsJson } from './http.ts';
import { isRevisionProblem, type RevisionProblem } from '../kv/state-machine.ts';
import type { ApiContext } from './host.ts';
import { toLeader } from './leader.ts';
import { checkKey, clientStamp, intParam, queryParams, readLevel } from './params.ts';
import { LEASE_WRITE_PARAMS, writeLease } from './lease-routes.ts';
import { blockUntilChanged } from './watch-route.ts';

const WRITE_PARAMS = ['ifRevision'] as const;
const READ_PARAMS = ['level', 'revision'] as const;
/** A single-key read may block (Consul style, watch-route.ts blockUntilChanged). */
const GET_PARAMS = [...READ_PARAMS, 'waitIndex', 'wait'] as const;

// ---- writes -----------------------------------------------------------------------------------

/** POST /key with a JSON object of one or more pairs, written in one revision. */
export async function postPairs(ctx: ApiContext): Promise<ApiReply> {
  const params = queryParams(ctx.url, [...WRITE_PARAMS, ...LEASE_WRITE_PARAMS, 'ifKey']);
  const leaseHeaders: Record<string, string> = {};
  const limits = ctx.peer.kvLimits;
  ctx.bodyBytesMax = 2 * limits.commandBytesMax; // JSON escaping may double a value's bytes
  const ifRevision = intParam(params, 'ifRevision');
  const ifKeyRaw = params.get('ifKey');
  if (ifKeyRaw !== undefined && ifRevision === undefined) throw badRequest('ifKey needs ifRevision');
  return write(
    ctx,
    async () => {
      const object = parseJsonObject(await body(ctx));
      const pairs: Array<[string, string]> = [];
      for (const [key, value] of Object.entries(object)) {
        checkKey(key, limits.keyBytesMax);
        if (typeof value !== 'string') throw badRequest(`value of ${JSON.stringify(key)} must be a string, got ${jsonType(value)}`);
        ctx.grant.requireWrite(key);
        pairs.push([key, value]);
      }
      if (pairs.length === 0) throw badRequest('request body has no pairs; expected {"key":"value",…}');
      const cmd: KvCommand = { op: 'put', pairs };
      if (ifRevision !== undefined) {
        const key = ifKeyRaw ?? (pairs.length === 1 ? pairs[0]![0] : undefined);
        if (key === undefined) throw badRequest('ifRevision with several pairs needs ifKey naming the compared key');
        cmd.compare = { key: checkKey(key, limits.keyBytesMax), modRevision: ifRevision };
        ctx.grant.requireRead(key); // a failed compare answers the key's mod revision
      }
      // Last: ?ttl= grants a lease (a write of its own), which a refused request must not leave behind.
      const lease = await writeLease(ctx, params, leaseHeaders);
      if (lease !== undefined) cmd.lease = lease;
      return cmd;
    },
    (result) => jsonReply({ revision: result.revision }, 200, { [H.revision]: String(result.revision), ...leaseHeaders }),
  );
}

/** PUT /:key or PUT /key/:key with the raw value as body. */
export async function putRaw(ctx: ApiContext, pathKey: string | undefined): Promise<ApiReply> {
  const params = queryParams(ctx.url, [...WRITE_PARAMS, ...LEASE_WRITE_PARAMS]);
  const leaseHeaders: Record<string, string> = {};
  const limits = ctx.peer.kvLimits;
  const key = checkKey(pathKey ?? '', limits.keyBytesMax);
  const ifRevision = intParam(params, 'ifRevision');
  if (ifRevision !== undefined) ctx.grant.requireRead(key); // a failed compare answers the key's mod revision
  ctx.bodyBytesMax = limits.valueBytesMax;
  return write(
    ctx,
    async () => {
      const value = decodeUtf8(await body(ctx), 'value');
      const cmd: KvCommand = { op: 'put', pairs: [[key, value]] };
      if (ifRevision !== undefined) cmd.compare = { key, modRevision: ifRevision };
      const lease = await writeLease(ctx, params, leaseHeaders);
      if (lease !== undefined) cmd.lease = lease;
      return cmd;
    },
    (result) => ({ status: 204, headers: { [H.revision]: String(result.revision), ...leaseHeaders }, body: null }),
  );
}

/** DELETE /key/:key (JSON answer) or DELETE /:key (204). Deleting a missing key is not an error. */
export async function deleteKey(ctx: ApiContext, pathKey: string | undefined, style: 'json' | 'raw'): Promise<ApiReply> {
  const params = queryParams(ctx.url, WRITE_PARAMS);
  const key = checkKey(pathKey ?? '', ctx.peer.kvLimits.keyBytesMax);
  const ifRevision = intParam(params, 'ifRevision');
  if (ifRevision !== undefined) ctx.grant.requireRead(key); // a failed compare answers the key's mod revision
  return write(
    ctx,
    async () => {
      const cmd: KvCommand = { op: 'delete', keys: [key] };
      if (ifRevision !== undefined) cmd.compare = { key, modRevision: ifRevision };
      return cmd;
    },
    (result) => {
      const headers = { [H.revision]: String(result.revision) };
      const deleted = result.op === 'delete' ? result.deleted : 0;
      return style === 'json' ? jsonReply({ deleted, revision: result.revision }, 200, headers) : { status: 204, headers, body: null };
    },
  );
}

type Written = Extract<KvResult, { ok: true }>;

/** A client write: sent to the leader from a follower (before the body is read), stamped with the
 *  session headers, proposed, and answered once applied; a refusal by the state machine is its error. */
export async function write(ctx: ApiContext, build: () => Promise<KvCommand>, answer: (result: Written) => ApiReply): Promise<ApiReply> {
  // Checked before reading the body: a follower sends the client on without buffering it.
  if (!ctx.peer.isLeader()) {
    const leader = ctx.peer.leaderInfo();
    return toLeader(ctx, leader.id, leader.address);
  }
  const stamp = clientStamp((name) => ctx.request.header(name));
  const cmd = await build();
  if (stamp !== undefined) cmd.stamp = stamp;
  let result: KvResult;
  try {
    result = (await ctx.peer.write(cmd)).result;
  } catch (err) {
    if (err instanceof PeerError && err.code === 'not-leader') return toLeader(ctx, err.leader, err.leaderAddress);
    if (err instanceof PeerError && err.code === 'no-leader') return toLeader(ctx, '', '');
    throw err instanceof PeerError ? peerErrorToApi(err) : err;
  }
  if (!result.ok) {
    const error = kvRefusalToApi(result);
    error.headers[H.revision] = String(result.revision);
    throw error;
  }
  return answer(result);
}

export async function body(ctx: ApiContext): Promise<Uint8Array> {
  ctx.body ??= await ctx.request.body(ctx.bodyBytesMax);
  return ctx.body;
}

// ---- reads ------------------------------------------------------------------------------------

/** GET /key/:key → {"key":"value"} (404 when absent). */
export async function getJson(ctx: ApiContext, pathKey: string | undefined): Promise<ApiReply> {
  return getOne(ctx, pathKey, (key, record, headers) => jsonTextReply(pairsJson([[key, record.value]]), 200, headers));
}

/** GET /:key → the raw value (404 when absent). */
export async function getRaw(ctx: ApiContext, pathKey: string | undefined): Promise<ApiReply> {
  return getOne(ctx, pathKey, (_key, record, headers) => ({
    status: 200,
    headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers },
    body: record.value,
  }));
}

async function getOne(
  ctx: ApiContext,
  pathKey: string | undefined,
  answer: (key: string, record: KeyRecord, headers: Record<string, string>) => ApiReply,
): Promise<ApiReply> {
  const params = queryParams(ctx.url, GET_PARAMS);
  const level = readLevel(params);
  const key = checkKey(pathKey ?? '', ctx.peer.kvLimits.keyBytesMax);
  const revision = intParam(params, 'revision', 1);
  const waitIndex = intParam(params, 'waitIndex');
  if (waitIndex === undefined && params.has('wait')) throw badRequest('wait needs waitIndex');
  if (waitIndex !== undefined && revision !== undefined) throw badRequest('waitIndex and revision do not go together');
  if (waitIndex !== undefined) await blockUntilChanged(ctx, key, waitIndex, params.get('wait'), level === 'stale');
  // The current version is the key's record: fetched off the loop first when not in memory.
  const outcome = await read(
    ctx,
    level,
    (kv) => (revision === undefined ? kv.get(key) : kv.getAt(key, revision)),
    revision === undefined ? [key] : undefined,
  );
  if (isApiReply(outcome)) return outcome;
  const headers = readHeaders(ctx, level, outcome);
  const record = atRevision(outcome.value, revision);
  if (record === undefined) {
    return jsonReply({ error: { code: 'key_not_found', message: `key ${JSON.stringify(key)} not found` } }, 404, headers);
  }
  headers[H.modRevision] = String(record.modRevision);
  headers[H.createRevision] = String(record.createRevision);
  headers[H.version] = String(record.version);
  return answer(key, record, headers);
}

/** GET /key?prefix=&start=&end=&limit= → {"k":"v",…} in key order; when cut, X-Metcd-More: true
 *  and X-Metcd-Next-Start (pass it as ?start= to continue). */
export async function getRange(ctx: ApiContext): Promise<ApiReply> {
  const params = queryParams(ctx.url, [...READ_PARAMS, 'prefix', 'start', 'end', 'limit']);
  const level = readLevel(params);
  const max = ctx.limits.rangeKeysMax;
  const limit = intParam(params, 'limit', 1) ?? max;
  if (limit > max) throw badRequest(`limit must be at most ${max}`);
  const prefix = params.get('prefix');
  const start = params.get('start');
  const end = params.get('end');
  const revision = intParam(params, 'revision', 1);
  ctx.grant.requireRange({ prefix: prefix ?? '', start: start ?? '', end: end ?? '' });
  const outcome = await read(ctx, level, (kv) => {
    const opts: Parameters<KvView['range']>[0] = { limit: limit + 1 };
    if (prefix !== undefined && prefix !== '') opts.prefix = prefix;
    if (start !== undefined && start !== '') opts.start = start;
    if (end !== undefined && end !== '') opts.end = end;
    return revision === undefined ? kv.range(opts) : kv.rangeAt(opts, revision);
  });
  if (isApiReply(outcome)) return outcome;
  const headers = readHeaders(ctx, level, outcome);
  // Cut at `limit` keys or once the answer passes rangeBytesMax (always at least one pair).
  const records = atRevision(outcome.value, revision);
  const shown: Array<[string, string]> = [];
  let bytes = 0;
  for (const [key, record] of records) {
    if (shown.length === limit || (shown.length > 0 && bytes > ctx.limits.rangeBytesMax)) break;
    bytes += utf8Bytes(key) + utf8Bytes(record.value);
    shown.push([key, record.value]);
  }
  const more = shown.length < records.length;
  headers[H.more] = String(more);
  // Where the next page starts (the smallest key after the last one shown), percent-encoded.
  if (more) headers[H.nextStart] = encodeURIComponent(`${shown[shown.length - 1]![0]}\u0000`);
  return jsonTextReply(pairsJson(shown), 200, headers);
}

async function read<T>(
  ctx: ApiContext,
  level: ReadLevel,
  query: (kv: KvView) => T,
  keys?: readonly string[],
): Promise<ReadOutcome<T> | ApiReply> {
  if (level !== 'stale' && !ctx.peer.isLeader()) {
    const leader = ctx.peer.leaderInfo();
    return toLeader(ctx, leader.id, leader.address);
  }
  try {
    return await ctx.peer.read(level, query, keys);
  } catch (err) {
    if (err instanceof PeerError && err.code === 'not-leader') return toLeader(ctx, err.leader, err.leaderAddress);
    if (err instanceof PeerError && err.code === 'no-leader') return toLeader(ctx, '', '');
    throw err instanceof PeerError ? peerErrorToApi(err) : err;
  }
}

function readHeaders(ctx: ApiContext, level: ReadLevel, outcome: ReadOutcome<unknown>): Record<string, string> {
  const headers: Record<string, string> = {
    [H.revision]: String(outcome.revision),
    [H.readLevel]: level,
    [H.appliedIndex]: String(outcome.applied),
  };
  if (level === 'stale') {
    // How far behind this answer may be: who leads, when we last heard from them, what we know
    // is committed (the answer reflects `applied`).
    const s = ctx.peer.staleness();
    headers[H.leader] = s.leader;
    headers[H.commitIndex] = String(s.commit);
    headers[H.lastContact] = s.lastLeaderContactMs === null ? 'never' : String(s.lastLeaderContactMs);
  }
  return headers;
}

/** A read's answer, or the error for a revision that cannot be read (410 compacted, 400 future). */
function atRevision<T>(value: T | RevisionProblem, revision: number | undefined): T {
  if (!isRevisionProblem(value)) return value;
  throw revisionError(value, revision ?? 0);
}

export function revisionError(p: RevisionProblem, revision: number): ApiError {
  if (p.problem === 'compacted') {
    return new ApiError(
      410,
      'compacted',
      `revision ${revision} has been compacted; the oldest readable revision is ${p.compacted}`,
      {},
      {
        compactRevision: p.compacted,
      },
    );
  }
  return badRequest(`revision ${revision} is above the current revision ${p.revision}`);
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** UTF-8 length of a JS string (lone surrogates count as the 3-byte replacement). */
function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
