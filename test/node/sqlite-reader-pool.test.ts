// The sqlite engine's pool of reader threads (sqlite-reader-pool.ts) when a thread cannot start:
// the failure is logged once, the pool stops growing, and the threads it has go on answering.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteEngine } from '../../node-runtime/storage/sqlite-engine.ts';
import { SQLITE_FILE } from '../../node-runtime/storage/sqlite-schema.ts';
import { SqliteReaderPool } from '../../node-runtime/storage/sqlite-reader-pool.ts';
import { encodeKey } from '../../node-runtime/storage/sqlite-key.ts';
import { silentLogger, type LogFields, type Logger } from '../../node-runtime/log.ts';
import { ABC_AT_1 } from '../support/kv-changes.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metcd-reader-pool-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('sqlite reader pool', () => {
  it('a thread that cannot start is logged, the pool stays at its size, and its threads keep answering', async () => {
    const file = path.join(dir, SQLITE_FILE);
    const engine = await SqliteEngine.open({ dir, log: silentLogger });
    await engine.load();
    await engine.save({ kv: ABC_AT_1 });
    await engine.close();

    const warnings: Array<[string, LogFields | undefined]> = [];
    const log: Logger = { ...silentLogger, warn: (msg, fields) => warnings.push([msg, fields]) };
    const pool = await SqliteReaderPool.start(file, log);
    // The file moves away: the open connection still reads it, a new thread cannot open it.
    renameSync(file, `${file}.moved`);
    const burst = () => Promise.all(['a', 'b', 'c', 'a', 'b', 'c'].map((k) => pool.get(encodeKey(k))));
    for (const rec of await burst()) expect(rec).toBeInstanceOf(Uint8Array);
    await pool.settled();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![0]).toMatch(/reader thread did not start/);
    expect(warnings[0]![1]).toMatchObject({ file, threads: 1 });
    expect(pool.threadsUp).toBe(1);
    // No second attempt: the pool is full at one thread.
    for (const rec of await burst()) expect(rec).toBeInstanceOf(Uint8Array);
    await pool.settled();
    expect(warnings).toHaveLength(1);
    expect(pool.answeredPerThread).toEqual([12]);
    await pool.close();
  });
});
