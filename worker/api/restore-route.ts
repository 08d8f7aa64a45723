// PUT /snapshot: load a backup (GET /snapshot's file) into a new cluster, an admin operation: the
// edge's counterpart of `metcd --restore FILE` (etcd's `snapshot restore`). The whole file is
// read (the host's limit: 413 past it) and checked before anything is touched: magic, version,
// trailer, SHA-256, then the state itself (400 bad_backup, with the reason, otherwise). The host
// then seeds every peer with it, refusing a cluster that has applied a client command (409
// cluster_in_use): a restore never overwrites data. Where restoring is offline (Node), 404 says
// how to restore there.

import { BackupFormatError, readBackup } from '../backup/format.ts';
import type { ApiReply } from './exchange.ts';
import type { ApiContext } from './host.ts';
import { ApiError, jsonReply } from './http.ts';
import { queryParams } from './params.ts';

export async function restoreRoute(ctx: ApiContext): Promise<ApiReply> {
  queryParams(ctx.url, []);
  const restorer = ctx.host.restore;
  if (restorer === undefined) {
    throw new ApiError(
      404,
      'not_found',
      'this runtime restores offline: start new nodes with metcd --restore FILE (README, Backup and restore)',
    );
  }
  const bytes = await ctx.request.body(restorer.bytesMax);
  let header;
  try {
    header = readBackup(bytes).header;
  } catch (err) {
    if (err instanceof BackupFormatError) throw new ApiError(400, 'bad_backup', `the backup was refused: ${err.message}`);
    throw err;
  }
  return jsonReply(await restorer.run(bytes, header));
}
