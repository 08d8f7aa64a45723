// Elections, etcd's concurrency.Election over HTTP (the recipe is turns.ts; the leader is the
// contender with the lowest create revision under election/<name>/):
//   POST /election/:name/campaign {"value","ttl"|"lease"} ?wait=30s  blocks until leader → {"key","lease","revision"}
//   GET  /election/:name             the leader → {"key","value","revision","lease"} (404 when none)
//   GET  /election/:name/observe     Server-Sent Events: `event: leader` whenever the leader changes
//   POST /election/:name/proclaim {"key","value"}  the leader changes its value (409 not_elected otherwise)
//   POST /election/:name/resign {"key"}            leaves the election (the next contender leads)
// Rights: campaigning needs write and read under election/<name>/, reading and observing read,
// proclaiming and resigning write on the contender's key.

import type { KeyRecord } from '../kv/types.ts';
import { isRevisionProblem } from '../kv/state-machine.ts';
import { PeerError } from '../peer/errors.ts';
import { jsonFields } from './body.ts';
import { kvRefusalToApi, peerErrorToApi } from './errors.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { ApiError, H, badRequest, jsonReply } from './http.ts';
import { onLeader } from './leader.ts';
import { queryParams } from './params.ts';
import { CONTENDERS_MAX, contenders, holderOf } from './turns.ts';
import { contenderLease, turnErrorToApi, turnName } from './turn-params.ts';
import { enqueueOrLeave, waitOrLeave } from './lock-routes.ts';
import { waitParam } from './watch-route.ts';

const VALUE_CHARS_MAX = 64 * 1024;

export function electionPrefix(name: string): string {
  return `election/${name}/`;
}

function leaderJson(key: string, record: KeyRecord, prefix: string) {
  return { key, value: record.value, revision: record.createRevision, lease: String(parseInt(key.slice(prefix.length), 16)) };
}

function valueField(v: unknown): string {
  if (typeof v !== 'string' || v.length > VALUE_CHARS_MAX)
    throw badRequest(`value must be a string of at most ${VALUE_CHARS_MAX} characters`);
  return v;
}

function keyField(v: unknown, prefix: string): string {
  if (typeof v !== 'string' || !v.startsWith(prefix) || !/^[0-9a-f]{1,14}$/.test(v.slice(prefix.length))) {
    throw badRequest(`key must be a contender's key under ${prefix} (as campaign answered it)`);
  }
  return v;
}

export async function campaign(ctx: ApiContext, rawName: string | undefined): Promise<ApiReply> {
  const params = queryParams(ctx.url, ['wait']);
  const prefix = electionPrefix(turnName(rawName, 'election'));
  ctx.grant.requireWritePrefix(prefix);
  ctx.grant.requireRange({ prefix, start: '', end: '' });
  const waitMs = waitParam(params.get('wait'));
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax + VALUE_CHARS_MAX;
  return onLeader(ctx, async () => {
    const body = await jsonFields(ctx, ['value', 'ttl', 'lease']);
    const value = valueField(body['value']);
    const rawLease = body['lease'];
    if (rawLease !== undefined && typeof rawLease !== 'string') throw badRequest('lease must be a lease id string');
    const lease = await contenderLease(ctx, rawLease, body['ttl']);
    try {
      const ticket = await enqueueOrLeave(ctx, prefix, lease, value);
      await waitOrLeave(ctx, prefix, ticket, lease, waitMs);
      return jsonReply({ key: ticket.key, lease: String(lease.id), revision: ticket.revision }, 200, { [H.lease]: String(lease.id) });
    } catch (err) {
      throw turnErrorToApi(err, `election ${prefix}`);
    }
  });
}

export async function electionLeader(ctx: ApiContext, rawName: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const prefix = electionPrefix(turnName(rawName, 'election'));
  ctx.grant.requireRange({ prefix, start: '', end: '' });
  return onLeader(ctx, async () => {
    const { queue, revision } = await contenders(ctx.peer, prefix);
    const first = queue[0];
    if (first === undefined) throw new ApiError(404, 'not_found', `election ${prefix} has no leader`, { [H.revision]: String(revision) });
    return jsonReply(leaderJson(first[0], first[1], prefix), 200, { [H.revision]: String(revision) });
  });
}

export async function proclaim(ctx: ApiContext, rawName: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const prefix = electionPrefix(turnName(rawName, 'election'));
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax + VALUE_CHARS_MAX;
  return onLeader(ctx, async () => {
    const body = await jsonFields(ctx, ['key', 'value']);
    const key = keyField(body['key'], prefix);
    const value = valueField(body['value']);
    ctx.grant.requireWrite(key);
    const { queue } = await contenders(ctx.peer, prefix);
    const first = queue[0];
    if (first === undefined || first[0] !== key) throw new ApiError(409, 'not_elected', `${key} is not the leader of ${prefix}`);
    const lease = parseInt(key.slice(prefix.length), 16);
    // Only while it still is the leader's key, as written (a compare on its mod revision).
    const result = (await ctx.peer.write({ op: 'put', pairs: [[key, value]], compare: { key, modRevision: first[1].modRevision }, lease }))
      .result;
    if (!result.ok) {
      if (result.code === 'compare-failed' || result.code === 'lease-not-found')
        throw new ApiError(409, 'not_elected', `${key} lost the election`);
      throw kvRefusalToApi(result);
    }
    return jsonReply({ revision: result.revision }, 200, { [H.revision]: String(result.revision) });
  });
}

export async function resign(ctx: ApiContext, rawName: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const prefix = electionPrefix(turnName(rawName, 'election'));
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax;
  return onLeader(ctx, async () => {
    const key = keyField((await jsonFields(ctx, ['key']))['key'], prefix);
    ctx.grant.requireWrite(key);
    const result = (await ctx.peer.write({ op: 'delete', keys: [key] })).result;
    if (!result.ok) throw kvRefusalToApi(result);
    return jsonReply({ deleted: result.op === 'delete' ? result.deleted : 0, revision: result.revision }, 200, {
      [H.revision]: String(result.revision),
    });
  });
}

/** GET /election/:name/observe: the leader now, then every change of leader, from this peer's
 *  applied state (stale, as a watch). */
export async function observe(ctx: ApiContext, rawName: string | undefined): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const prefix = electionPrefix(turnName(rawName, 'election'));
  ctx.grant.requireRange({ prefix, start: '', end: '' });
  const peer = ctx.peer;
  const encoder = new TextEncoder();
  const leaderAt = () => peer.read('stale', (kv) => kv.range({ prefix, limit: CONTENDERS_MAX }));
  const first = await leaderAt();
  let watcher;
  try {
    watcher = peer.watch({ prefix }, { from: first.revision + 1 });
  } catch (err) {
    throw err instanceof PeerError ? peerErrorToApi(err) : err;
  }
  let last = '';
  const frame = (records: Array<[string, KeyRecord]>, revision: number): string | null => {
    const lead = holderOf(records);
    const data = JSON.stringify(lead === undefined ? null : leaderJson(lead[0], lead[1], prefix));
    if (data === last) return null;
    last = data;
    return `event: leader\nid: ${revision}\ndata: ${data}\n\n`;
  };
  const opening = frame(first.value, first.revision) ?? '';
  const w = watcher;
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(encoder.encode(`: observing ${prefix}\n\n${opening}`));
    },
    async pull(controller) {
      for (;;) {
        const f = await w.take();
        if (f === null || f.kind === 'end') {
          if (f !== null)
            controller.enqueue(encoder.encode(`event: ${f.reason}\ndata: ${JSON.stringify({ resumeRevision: f.resume })}\n\n`));
          controller.close();
          return;
        }
        if (f.kind !== 'events') continue;
        // The leader as of this frame's revision (the history), not as of now: every leader shows.
        const at = await peer.read('stale', (kv) => kv.rangeAt({ prefix, limit: CONTENDERS_MAX }, f.revision));
        const records = isRevisionProblem(at.value) ? (await leaderAt()).value : at.value;
        const text = frame(records, f.revision);
        if (text !== null) {
          controller.enqueue(encoder.encode(text));
          return;
        }
      }
    },
    cancel() {
      w.close();
    },
  });
  return { status: 200, headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' }, body };
}
