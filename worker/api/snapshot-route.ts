// GET /snapshot: a backup of the whole KV state (worker/backup/format.ts), an admin operation.
// Consistent: a view of the state as of one applied index, taken after a read barrier at the
// requested level (default: everything acknowledged before the request is in it; a follower
// sends the client to the leader, `level=stale` takes the backup from this peer's own state),
// then streamed a slice at a time while writes go on. X-Metcd-Revision is the backup's revision.
//
// The backup carries everything the state holds: client keys with their revisions and versions,
// key history, leases, client sessions, and API tokens (as SHA-256 digests, never secrets, as
// etcd's snapshot carries its auth store). Keep backups as secret as the cluster's data.

import { BACKUP_CONTENT_TYPE, backupStream } from '../backup/format.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { H } from './http.ts';
import { onPeer } from './leader.ts';
import { queryParams, readLevel } from './params.ts';

export async function snapshotRoute(ctx: ApiContext): Promise<ApiReply> {
  const level = readLevel(queryParams(ctx.url, ['level']));
  return onPeer(ctx, level !== 'stale', async () => {
    await ctx.peer.read(level, () => null);
    const { view, applied, cluster } = ctx.peer.backupView();
    const revision = view.revision;
    const body = backupStream({ view, applied, cluster, nowMs: ctx.peer.nowMs() });
    return {
      status: 200,
      headers: {
        'Content-Type': BACKUP_CONTENT_TYPE,
        'Content-Disposition': `attachment; filename="metcd-${revision}.metcd"`,
        'Cache-Control': 'no-store',
        [H.revision]: String(revision),
        [H.appliedIndex]: String(applied),
        [H.readLevel]: level,
      },
      body,
    };
  });
}
