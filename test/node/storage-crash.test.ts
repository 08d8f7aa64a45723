// kill -9 durability, torn tails and corruption, for every engine, with real child processes:
// a writer acknowledges batches on stdout only after save() resolved; after SIGKILL every
// acknowledged batch must be on disk, and the reloaded state must be an exact prefix.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NodeStorage } from '../../node-runtime/storage/open.ts';
import { withRecords } from '../../node-runtime/storage/loaded-records.ts';
import { ENGINE_NAMES, type EngineName } from '../../node-runtime/storage/engine.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';
import type { Logger, LogFields } from '../../node-runtime/log.ts';
import { prefixLength } from './storage-crash-batches.ts';

const WRITER = new URL('./fixtures/storage-writer.ts', import.meta.url).pathname;
const children = new Set<ChildProcess>();
const dirs: string[] = [];

afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(tag: string): string {
  const d = mkdtempSync(path.join(tmpdir(), `metcd-crash-${tag}-`));
  dirs.push(d);
  return d;
}

/** Runs the writer until `stop(acks, line)` says so, SIGKILLs it, returns the highest ack. */
function runWriterAndKill(args: string[], stop: (acks: number, line: string) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let acks = 0;
    let buffered = '';
    let stderr = '';
    let killed = false;
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const m = /^ack (\d+)$/.exec(line);
        if (m) acks = Math.max(acks, Number(m[1]));
        if (!killed && stop(acks, line)) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (signal === 'SIGKILL') resolve(acks);
      else reject(new Error(`writer exited early (code ${code}): ${stderr}`));
    });
  });
}

function recordingLogger(): Logger & { warnings: LogFields[] } {
  const warnings: LogFields[] = [];
  return { warnings, debug() {}, info() {}, error() {}, warn: (msg, f) => warnings.push({ msg, ...f }) };
}

async function reload(engine: EngineName, dataDir: string, log: Logger = recordingLogger()) {
  const s = await NodeStorage.open({ dataDir, engine, nodeId: 'n1', clusterId: 'c1', log });
  try {
    return withRecords(await s.load()); // every record read (and its seal checked)
  } finally {
    await s.close();
  }
}

/** The engine's write-ahead log file in a crashed data dir (the newest one). */
function walFile(engine: EngineName, dataDir: string): string {
  const dir = path.join(dataDir, engine);
  const names = readdirSync(dir);
  const pick = (re: RegExp) => {
    const found = names.filter((n) => re.test(n)).sort();
    if (found.length === 0) throw new Error(`no log file in ${dir}: ${names.join(', ')}`);
    return path.join(dir, found[found.length - 1]!);
  };
  if (engine === 'memory') return pick(/^wal-\d+\.log$/);
  if (engine === 'sqlite') return pick(/^metcd\.db-wal$/);
  return pick(/^\d+\.log$/);
}

/** An offset inside the first write's payload of each engine's log format. */
const FIRST_RECORD_PAYLOAD: Record<EngineName, number> = { memory: 8 + 8 + 2, sqlite: 32 + 24 + 100, leveldb: 7 + 2 };

function flipByte(file: string, offset: number): void {
  const buf = readFileSync(file);
  buf[offset] = buf[offset]! ^ 0x5a;
  writeFileSync(file, buf);
}

describe.each(ENGINE_NAMES)('crash safety of %s', (engine: EngineName) => {
  it('kill -9 under concurrent writes loses no acknowledged batch', async () => {
    const dataDir = tempDir(engine);
    // memory: a small rewrite threshold so the kill also lands around log rewrites.
    const acked = await runWriterAndKill([engine, dataDir, 'stream', String(32 * 1024)], (acks) => acks >= 400);
    expect(acked).toBeGreaterThanOrEqual(400);
    if (engine === 'memory') {
      // The kill landed after log rewrites: the state came from an image plus a log.
      expect(readdirSync(path.join(dataDir, engine)).some((f) => /^image-0*[1-9]\d*\.bin$/.test(f))).toBe(true);
    }
    const n = prefixLength(await reload(engine, dataDir));
    expect(n).toBeGreaterThanOrEqual(acked);
    // And it keeps working after the crash: a second run continues on top of the first.
    const acked2 = await runWriterAndKill([engine, dataDir, 'stream', String(32 * 1024)], (acks) => acks >= n + 100);
    expect(prefixLength(await reload(engine, dataDir))).toBeGreaterThanOrEqual(acked2);
  });

  describe('after a crash with 40 sequential writes in the log', () => {
    let crashed: string;
    it('reloads all 40', async () => {
      crashed = tempDir(engine);
      await runWriterAndKill([engine, crashed, 'sequential', '40'], (_acks, line) => line === 'done');
      const copy = tempDir(engine); // reopening rewrites logs (checkpoint, memtable flush): keep `crashed` as it died
      cpSync(crashed, copy, { recursive: true });
      expect(prefixLength(await reload(engine, copy))).toBe(40);
    });

    it('truncates a torn tail record at start, logging it, and loses only that write', async () => {
      const dataDir = tempDir(engine);
      cpSync(crashed, dataDir, { recursive: true });
      const file = walFile(engine, dataDir);
      truncateSync(file, statSync(file).size - 5);
      const log = recordingLogger();
      expect(prefixLength(await reload(engine, dataDir, log))).toBe(39);
      expect(log.warnings).toEqual([expect.objectContaining({ msg: 'torn tail truncated', file })]);
      const again = recordingLogger();
      expect(prefixLength(await reload(engine, dataDir, again))).toBe(39);
      expect(again.warnings).toEqual([]);
    });

    it('refuses to start on corruption before the tail, naming file and offset', async () => {
      const dataDir = tempDir(engine);
      cpSync(crashed, dataDir, { recursive: true });
      const file = walFile(engine, dataDir);
      flipByte(file, FIRST_RECORD_PAYLOAD[engine]);
      const err = await reload(engine, dataDir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StorageCorruptError);
      expect((err as StorageCorruptError).file).toBe(file);
      expect((err as StorageCorruptError).offset).toBeGreaterThanOrEqual(0);
      expect((err as Error).message).toContain(`${file} at offset`);
    });
  });

  it('refuses to start when a stored value was damaged at rest', async () => {
    const dataDir = tempDir(engine);
    const s = await NodeStorage.open({ dataDir, engine, nodeId: 'n1', clusterId: 'c1', log: recordingLogger(), memoryRewriteMinBytes: 1 });
    await s.load();
    await s.save({
      entries: [{ index: 1, term: 1, type: 'normal', data: new Uint8Array(0) }],
      kv: {
        revision: 1,
        upserts: [['marker', { value: 'MARKER-VALUE-0123456789', createRevision: 1, modRevision: 1, version: 1 }]],
        deletes: [],
        sessionUpserts: [],
        sessionDeletes: [],
      },
      applied: 1,
    });
    for (let i = 2; i <= 30; i++) await s.save({ entries: [{ index: i, term: 1, type: 'normal', data: new Uint8Array(8) }] });
    await s.close();
    // Find the marker's bytes in whatever file the engine keeps them (image, table, page).
    let hits = 0;
    const dir = path.join(dataDir, engine);
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      const buf = readFileSync(file);
      const at = buf.indexOf('MARKER-VALUE-0123456789');
      if (at >= 0) {
        flipByte(file, at + 3);
        hits++;
      }
    }
    expect(hits).toBeGreaterThan(0);
    await expect(reload(engine, dataDir)).rejects.toBeInstanceOf(StorageCorruptError);
  });
});
