// POST /compact {"revision":N}: discard the key history below revision N (etcd's Compact), an
// admin operation. Reads at revisions below N answer 410 compacted afterwards; the state machine
// also compacts on its own, keeping the last `historyRetention` revisions (kv/types.ts).

import { jsonFields } from './body.ts';
import { kvRefusalToApi } from './errors.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { ApiError, H, badRequest, jsonReply } from './http.ts';
import { onLeader } from './leader.ts';
import { queryParams } from './params.ts';

export async function compact(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  ctx.bodyBytesMax = ctx.limits.jsonBodyBytesMax;
  return onLeader(ctx, async () => {
    const body = await jsonFields(ctx, ['revision']);
    const revision = body['revision'];
    if (!Number.isSafeInteger(revision) || (revision as number) < 1) throw badRequest('revision must be a positive integer');
    const at = (await ctx.peer.read('default', (kv) => ({ compacted: kv.compactedRevision, current: kv.revision }))).value;
    if ((revision as number) <= at.compacted) {
      throw new ApiError(
        410,
        'compacted',
        `revision ${String(revision)} is already compacted (up to ${at.compacted})`,
        {},
        {
          compactRevision: at.compacted,
        },
      );
    }
    if ((revision as number) > at.current) throw badRequest(`revision ${String(revision)} is above the current revision ${at.current}`);
    const result = (await ctx.peer.write({ op: 'compact', revision: revision as number })).result;
    if (!result.ok) throw kvRefusalToApi(result);
    const compacted = result.op === 'compact' ? result.compacted : revision;
    return jsonReply({ revision: result.revision, compactRevision: compacted }, 200, { [H.revision]: String(result.revision) });
  });
}
