// Streamed snapshots between real processes, on each engine that holds its key space on disk
// (sqlite, leveldb): a follower behind the leader's compacted log is sent a stream of the leader's table in
// 1 KiB chunks (--snapshot-chunk-bytes), which it stages on disk as they come. The transfer is
// cut by SIGKILL mid-way, of the follower and then of the leader, and must still end with the
// follower holding exactly the cluster's keys. Node output goes to test/artifacts/ on a failure.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProcCluster, followLeader, readPrefix } from './proc-cluster.ts';
import type { ProcNode } from './proc-cluster.ts';
import { parsePromText, requiredSample } from '../support/prom-text.ts';
import { waitFor } from '../support/wait.ts';
import { readBackup } from '../../worker/backup/format.ts';
import type { PeerStatus } from '../../worker/peer/outcomes.ts';

/** The cluster of the engine under test (each describe below starts its own). */
let cluster: ProcCluster;
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`node output: ${cluster.dumpOutputs(`streamed-${ctx.task.name}`)}`);
});

const key = (i: number) => `big/${String(i).padStart(5, '0')}`;
const value = (i: number, round: number) => `value ${i} of round ${round} `.padEnd(100, '~');
/** What the cluster holds: key -> value, as written. */
let expected = new Map<string, string>();

async function writeRound(leader: ProcNode, from: number, to: number, round: number): Promise<void> {
  for (let i = from; i < to; i += 50) {
    const pairs: Record<string, string> = {};
    for (let j = i; j < Math.min(to, i + 50); j++) pairs[key(j)] = value(j, round);
    // Retried while a new leader settles in (the second test kills one).
    await waitFor(`write of ${key(i)}..`, 15_000, async () => {
      const res = await followLeader(leader, '/key', { method: 'POST', body: JSON.stringify(pairs) }).catch(() => undefined);
      if (res === undefined) return undefined;
      await res.arrayBuffer();
      return res.status === 200 ? true : undefined;
    });
    for (const [k, v] of Object.entries(pairs)) expected.set(k, v);
  }
}

async function streamsOf(node: ProcNode): Promise<PeerStatus['snapshotStreams']> {
  const res = await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as Pick<PeerStatus, 'snapshotStreams'>).snapshotStreams;
}

async function metric(node: ProcNode, name: string): Promise<number> {
  return requiredSample(parsePromText(await (await fetch(`${node.url}/metrics`)).text()), name);
}

/**
 * Starts `victim` (behind the compacted log) and waits until it has staged part of the streamed
 * snapshot, then calls `cut`. A transfer that finished before it was seen under way is not the
 * case under test: the victim is stopped, the cluster moves on, and it is tried again.
 */
async function cutMidTransfer(victim: ProcNode, cut: () => Promise<void>): Promise<{ bytes: number; records: number }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    victim.start();
    let seen: { bytes: number; records: number } | null = null;
    await waitFor(`${victim.id} staging a snapshot, or caught up`, 30_000, async () => {
      const s = await streamsOf(victim).catch(() => undefined);
      if (s?.receiving && s.receiving.bytes > 0) return (seen = s.receiving);
      const st = await victim.status().catch(() => undefined);
      const leader = await cluster.leader();
      return st !== undefined && st.applied >= (await leader.status()).commit ? 'caught-up' : undefined;
    });
    if (seen !== null) {
      await cut();
      return seen;
    }
    // Too quick to see: behind again, by more than the log the leader keeps.
    await victim.kill('SIGKILL');
    const leader = await cluster.leader();
    await writeRound(leader, 0, 3000, 100 + attempt);
  }
  throw new Error(`${victim.id}: never seen part-way through a snapshot transfer`);
}

/** `node` holds every key as written, and its whole state — metcd's own records too: the key
 *  history, leases, sessions — is the reference's, record for record (their backups, taken
 *  from each one's own state once both applied the same index). */
async function expectHoldsEverything(node: ProcNode, reference: ProcNode): Promise<void> {
  const got = await readPrefix(node, 'big/');
  expect(got.size, `${node.id} keys`).toBe(expected.size);
  for (const [k, v] of expected) if (got.get(k) !== v) expect(got.get(k), `${node.id} ${k}`).toBe(v);
  await cluster.caughtUp(node, reference);
  await cluster.caughtUp(reference, node);
  const [mine, theirs] = await Promise.all([backupOf(node), backupOf(reference)]);
  expect(mine.header.appliedIndex, 'both backups of the same index').toBe(theirs.header.appliedIndex);
  expect(mine.state.revision).toBe(theirs.state.revision);
  expect(mine.state.records.length, `${node.id} records, metcd's own included`).toBe(theirs.state.records.length);
  expect(mine.state.records).toEqual(theirs.state.records);
  expect(mine.state.sessions).toEqual(theirs.state.sessions);
}

async function backupOf(node: ProcNode): Promise<ReturnType<typeof readBackup>> {
  const res = await fetch(`${node.url}/snapshot?level=stale`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return readBackup(new Uint8Array(await res.arrayBuffer()));
}

describe.each(['sqlite', 'leveldb'] as const)(
  'Node, %s: a snapshot streamed in chunks and staged on disk survives SIGKILL of either end mid-transfer',
  (engine) => {
    const own = new ProcCluster({
      engine,
      snapshotEntries: 20,
      clusterId: `streamed-${engine}`,
      extraArgs: ['--snapshot-chunk-bytes', '1024'],
    });
    beforeAll(async () => {
      cluster = own;
      expected = new Map();
      await own.start();
    }, 60_000);
    afterAll(() => own.stopAll());

    it('the follower killed mid-transfer starts over from a new stream and ends with every key', async () => {
      const leader = await cluster.leader({ all: true });
      const victim = cluster.live().find((n) => n.id !== leader.id)!;
      await writeRound(leader, 0, 3000, 1);
      await cluster.caughtUp(victim, leader);
      await victim.kill('SIGKILL');
      // Far more than 20 entries while it is down: the others compact past it.
      await writeRound(leader, 0, 3000, 2);
      const seen = await cutMidTransfer(victim, () => victim.kill('SIGKILL'));
      // ~380 KB of state in 1 KiB chunks: it was cut with most of it still to come.
      expect(seen.bytes).toBeLessThan(300_000);
      await writeRound(leader, 2000, 3500, 3);
      victim.start();
      const now = await cluster.leader({ all: true });
      await cluster.caughtUp(victim, now);
      await expectHoldsEverything(victim, now);
      expect(await metric(victim, 'metcd_snapshot_installed_staged_total'), 'installed from the staging table').toBeGreaterThanOrEqual(1);
      expect((await streamsOf(victim))?.receiving, 'nothing left half-received').toBeNull();
      // (The restarted follower asks for the transfer from its start: a new stream, or the same
      // one when it had read no further than its first chunk. Either way the install above is
      // this incarnation's: the counter starts at 0 with the process.)
      await waitFor('the leader to close its streams', 10_000, async () => ((await streamsOf(now))?.sending === 0 ? true : undefined));
    });

    it('the leader killed mid-transfer: the next leader streams its own snapshot and the follower discards what it staged', async () => {
      const leader = await cluster.leader({ all: true });
      const victim = cluster.live().find((n) => n.id !== leader.id)!;
      await victim.kill('SIGKILL');
      await writeRound(leader, 0, 3500, 4);
      await cutMidTransfer(victim, () => leader.kill('SIGKILL'));
      const next = await cluster.leader({ not: leader.id, timeoutMs: 30_000 });
      await writeRound(next, 3500, 3600, 5);
      await cluster.caughtUp(victim, next);
      await expectHoldsEverything(victim, next);
      expect(await metric(next, 'metcd_snapshot_streams_opened_total'), 'the new leader streamed it').toBeGreaterThanOrEqual(1);
      leader.start();
      await cluster.caughtUp(leader, next);
      await expectHoldsEverything(leader, next);
    });
  },
);
