// Loading a backup into a new edge cluster (PUT /snapshot: worker/api/restore-route.ts checks
// the file, this file does the rest), the edge's `metcd --restore`: every bootstrap peer's
// Durable Object storage is replaced by a bootstrap snapshot of the backup's state at its
// applied index (PeerOptions.initialState, as node-runtime/restore.ts does for a node), and the
// peer is opened again from it. A cluster that has applied a client command is refused.
//
// The peer that took the request coordinates, over Durable Object RPC, in three phases:
//   1. prepare: each peer stops taking client requests and Raft traffic (memory only, released
//      after IMPORT_HOLD_MS if nothing follows) and says whether its cluster is new: no revision,
//      no records (keys, leases, tokens), no session, no write in flight, the bootstrap
//      membership. With every peer frozen nothing more commits, and an acknowledged write is in
//      the applied state of the leader that acknowledged it, so checking every peer after
//      freezing it misses none. Any peer not new: all are released, 409 cluster_in_use.
//   2. stage: the file goes to each peer in IMPORT_CHUNK_BYTES pieces (under Durable Objects'
//      32 MiB RPC cap and their 2 MB SQLite row limit), kept in an `import_stage` table.
//   3. commit: each peer checks its pieces against the file's SHA-256, closes its Peer, and in
//      ONE SQLite transaction drops every table of its state but the staged file; then opens
//      again: a peer with no Raft state and a staged file starts from the backup
//      (stagedInitialState) and drops the stage. A crash after the transaction does the same on
//      the next start.
// A failure before commit releases every peer and changes nothing. A failure during commit (a
// peer unreachable between two RPCs) can leave some peers seeded and others not: the answer says
// so, and the operator imports again into another CLUSTER_NAME.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { ApiError } from '../api/http.ts';
import { readBackup, type BackupHeader } from '../backup/format.ts';
import type { Peer } from '../peer/peer.ts';
import type { InitialState } from '../peer/restart.ts';
import type { NodeId } from '../raft/types.ts';
import type { DurableStorageLike, SqlLike } from './sql.ts';

/** The largest backup PUT /snapshot takes. The peer that takes it holds the file, and each peer
 *  reads it back from its stage, decodes it and encodes its bootstrap snapshot from it, all in an
 *  isolate of 128 MB: a few copies of the file and its decoded records must fit. A larger state
 *  (the default quota is 64 MiB) is restored on Node with metcd --restore. */
export const RESTORE_BYTES_MAX = 16 * 1024 * 1024;
/** One piece of the file per RPC and per SQLite row (rows are limited to 2 MB). */
export const IMPORT_CHUNK_BYTES = 1024 * 1024;
/** How long a prepared peer waits for the rest of the import before it serves again. */
export const IMPORT_HOLD_MS = 60_000;

const STAGE = 'import_stage';

/** A peer's side of an import (PeerObject's RPC methods, or the coordinator's own object). */
export interface ImportPeer {
  /** Freezes the peer; answers JSON {fresh, reason}. */
  importPrepare(token: string): Promise<string>;
  importChunk(token: string, seq: number, bytes: Uint8Array): Promise<void>;
  importCommit(token: string, chunks: number, sha256Hex: string): Promise<void>;
  importRelease(token: string): Promise<void>;
}

/** Whether `peer` belongs to a cluster nobody has used: '' when new, else why not. */
export function whyNotNew(peer: Peer, bootstrapPeers: readonly NodeId[]): string {
  const status = peer.status();
  if (status.failure !== null) return `peer ${peer.id} has failed: ${status.failure}`;
  const m = peer.membership();
  const voters = [...m.voters].sort().join(',');
  if (m.learners.length > 0 || voters !== [...bootstrapPeers].sort().join(',')) return `its membership changed (${voters})`;
  if (status.pendingProposals > 0) return `${status.pendingProposals} writes in flight`;
  const { view } = peer.backupView();
  try {
    if (view.revision > 0) return `it is at revision ${view.revision}`;
    if (view.recordCount > 0) return `it holds ${view.recordCount} records (leases or tokens)`;
    if (view.sessions.length > 0) return `it holds ${view.sessions.length} client sessions`;
    return '';
  } finally {
    view.close();
  }
}

/** Runs the three phases over `peers` (every bootstrap peer of `cluster`). */
export async function coordinateImport(
  cluster: string,
  peers: ReadonlyArray<{ id: NodeId; rpc: ImportPeer }>,
  backup: Uint8Array,
  header: BackupHeader,
): Promise<Record<string, unknown>> {
  const token = bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
  const releaseAll = () => Promise.all(peers.map((p) => p.rpc.importRelease(token).catch(() => {})));
  let reasons: string[];
  try {
    const answers = await Promise.all(
      peers.map(async (p) => ({ id: p.id, ...(JSON.parse(await p.rpc.importPrepare(token)) as { reason: string }) })),
    );
    reasons = answers.filter((a) => a.reason !== '').map((a) => `${a.id}: ${a.reason}`);
  } catch (err) {
    await releaseAll();
    throw new ApiError(503, 'unavailable', `the import was not started: a peer did not answer (${message(err)})`, { 'Retry-After': '5' });
  }
  if (reasons.length > 0) {
    await releaseAll();
    throw new ApiError(409, 'cluster_in_use', `cluster ${cluster} is in use (${reasons.join('; ')}): import only into a new CLUSTER_NAME`);
  }
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < backup.length; at += IMPORT_CHUNK_BYTES) chunks.push(backup.subarray(at, at + IMPORT_CHUNK_BYTES));
  try {
    for (const p of peers) for (let seq = 0; seq < chunks.length; seq++) await p.rpc.importChunk(token, seq, chunks[seq]!);
  } catch (err) {
    await releaseAll();
    throw new ApiError(503, 'unavailable', `the import was abandoned, nothing changed: staging failed (${message(err)})`, {
      'Retry-After': '5',
    });
  }
  const digest = bytesToHex(sha256(backup));
  const seeded: NodeId[] = [];
  for (const p of peers) {
    try {
      await p.rpc.importCommit(token, chunks.length, digest);
      seeded.push(p.id);
    } catch (err) {
      if (seeded.length === 0) await releaseAll();
      const state = seeded.length === 0 ? 'nothing changed' : `peers ${seeded.join(', ')} were seeded, ${p.id} and after were not`;
      throw new ApiError(
        503,
        'unavailable',
        `the import failed at ${p.id} (${message(err)}): ${state}; import again into a new CLUSTER_NAME`,
      );
    }
  }
  return {
    cluster,
    peers: seeded,
    revision: header.revision,
    appliedIndex: header.appliedIndex,
    records: header.recordCount,
    sourceCluster: header.clusterId,
    createdAt: new Date(header.createdAtMs).toISOString(),
  };
}

/** Keeps piece `seq` of the file being imported. */
export function stageChunk(sql: SqlLike, seq: number, bytes: Uint8Array): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS ${STAGE} (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)`);
  sql.exec(`INSERT OR REPLACE INTO ${STAGE} (seq, data) VALUES (?, ?)`, seq, bytes);
}

export function clearStage(sql: SqlLike): void {
  sql.exec(`DROP TABLE IF EXISTS ${STAGE}`);
}

/** The staged file, whole (null when nothing is staged). */
function readStage(sql: SqlLike): { bytes: Uint8Array; chunks: number } | null {
  if (sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${STAGE}'`).toArray().length === 0) return null;
  const rows = sql.exec(`SELECT seq, data FROM ${STAGE} ORDER BY seq`).toArray();
  const parts = rows.map((r, i) => {
    if (r['seq'] !== i) throw new Error(`import: piece ${i} is missing`);
    return new Uint8Array(r['data'] as ArrayBuffer);
  });
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return { bytes, chunks: parts.length };
}

/** The staged file, checked against what the coordinator sent: `chunks` pieces, this SHA-256. */
export function checkedStage(sql: SqlLike, chunks: number, sha256Hex: string): Uint8Array {
  const staged = readStage(sql);
  if (staged === null || staged.chunks !== chunks) throw new Error(`import: ${staged?.chunks ?? 0} of ${chunks} pieces arrived`);
  if (bytesToHex(sha256(staged.bytes)) !== sha256Hex) throw new Error('import: the staged file does not match its SHA-256');
  return staged.bytes;
}

/** Drops every table of this object's state but the staged file, in one transaction. */
export function wipeKeepingStage(storage: DurableStorageLike): void {
  storage.transactionSync(() => {
    const tables = storage.sql
      .exec(
        `SELECT name FROM sqlite_master WHERE type = 'table' AND name != '${STAGE}'
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'`,
      )
      .toArray()
      .map((r) => r['name'] as string);
    for (const t of tables) storage.sql.exec(`DROP TABLE "${t.replaceAll('"', '""')}"`);
  });
}

/** What a peer with no Raft state starts from: the staged backup's state, or undefined. */
export function stagedInitialState(sql: SqlLike): InitialState | undefined {
  const staged = readStage(sql);
  if (staged === null) return undefined;
  const { header, state } = readBackup(staged.bytes);
  return { kv: state, index: header.appliedIndex };
}

/** An error's message (what a thrown non-Error says of itself). */
export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
