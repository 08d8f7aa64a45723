// PUT /snapshot through the shared router, in process: where the host restores offline (Node)
// it says how; where it restores (the edge), the file is checked whole before the host sees it
// (400 bad_backup), the host's size limit holds (413), and a good file reaches the host with its
// header. The edge's own import is tested in workerd (test/edge/restore.test.ts).

import { afterEach, describe, expect, it } from 'vitest';
import { routersFor } from './routers.ts';
import { TestCluster, addressOf } from '../peer/cluster.ts';
import type { BackupHeader } from '../../worker/backup/format.ts';

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, code: body.error.code, message: body.error.message };
}

describe('PUT /snapshot', () => {
  it('says how to restore where the host restores offline; checks the file before the host sees it', async () => {
    const c = await TestCluster.start({});
    cluster = c;
    const leader = (await c.waitLeader()).id;
    const seen: BackupHeader[] = [];
    const offline = routersFor(c);
    const online = routersFor(c, () => ({
      restore: {
        bytesMax: 64 * 1024,
        run: async (_bytes, header) => {
          seen.push(header);
          return { restored: header.revision };
        },
      },
    }));
    const call = (router: typeof offline, path: string, init?: RequestInit) =>
      c.drive(router(leader).fetch(new Request(`${addressOf(leader)}${path}`, init)));

    await c.drive(offline(leader).fetch(new Request(`${addressOf(leader)}/key/a`, { method: 'PUT', body: '1' })));
    const saved = await call(offline, '/snapshot');
    expect(saved.status).toBe(200);
    const backup = new Uint8Array(await saved.arrayBuffer());

    const there = await errorOf(await call(offline, '/snapshot', { method: 'PUT', body: backup }));
    expect(there).toMatchObject({ status: 404, code: 'not_found' });
    expect(there.message).toMatch(/metcd --restore FILE/);

    const flipped = backup.slice();
    flipped[20]! ^= 0xff;
    expect(await errorOf(await call(online, '/snapshot', { method: 'PUT', body: flipped }))).toMatchObject({
      status: 400,
      code: 'bad_backup',
    });
    expect(await errorOf(await call(online, '/snapshot', { method: 'PUT', body: 'not a backup' }))).toMatchObject({
      status: 400,
      code: 'bad_backup',
      message: 'the backup was refused: not a metcd backup (bad magic: the file does not start with METCDSNP)',
    });
    expect(await errorOf(await call(online, '/snapshot', { method: 'PUT', body: new Uint8Array(64 * 1024 + 1) }))).toMatchObject({
      status: 413,
      code: 'too_large',
    });
    expect(seen).toEqual([]);

    const ok = await call(online, '/snapshot', { method: 'PUT', body: backup });
    expect(ok.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(await ok.json()).toEqual({ restored: seen[0]!.revision });
    expect(seen[0]!.revision).toBeGreaterThan(0);
    expect((await call(online, '/snapshot', { method: 'POST' })).headers.get('Allow')).toBe('GET, PUT');
  });
});
