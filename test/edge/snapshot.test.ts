// GET /snapshot through the Worker (the edge runtime): a whole, checksummed backup at its stated
// revision, streamed from the leader's peer object while a write lands meanwhile.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from './harness.ts';
import type { EdgeCluster } from './harness.ts';
import { readBackup } from '../../worker/backup/format.ts';

let c: EdgeCluster;
beforeAll(async () => {
  c = await startCluster();
});
afterAll(async () => {
  await c?.close();
});

describe('edge: GET /snapshot', () => {
  it('streams a backup the file checks accept, at its stated revision', async () => {
    const pairs: Record<string, string> = {};
    for (let i = 0; i < 500; i++) pairs[`e/${i}`] = `v${i}`;
    expect((await c.follow('/key', { method: 'POST', body: JSON.stringify(pairs) })).status).toBe(200);
    const res = await c.follow('/snapshot');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const revision = Number(res.headers.get('x-metcd-revision'));
    expect((await c.follow('/e/after', { method: 'PUT', body: 'x' })).status).toBe(204);
    const { header, state } = readBackup(new Uint8Array(await res.arrayBuffer()));
    expect(header.revision).toBe(revision);
    const records = new Map(state.records);
    expect(records.get('e/499')?.value).toBe('v499');
    expect(records.has('e/after')).toBe(false);
  });
});
