// Peers under seeded faults: partitions, crashes (losing in-flight saves) and restarts, while
// clients write with idempotency stamps and retry every unknown outcome. Afterwards every
// acknowledged write is on every peer, every command was applied exactly once (each key is
// written by one command only, so its version must be 1), and all peers hold the same state.

import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';
import type { Peer } from '../../worker/peer/peer.ts';
import { TestCluster } from './cluster.ts';

interface Client {
  name: string;
  seq: number;
  /** In flight: on which peer, and whether it settled. */
  attempt: { peer: string; settled: boolean } | null;
  acked: Set<string>;
}

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

async function allRecords(p: Peer): Promise<Array<[string, KeyRecord]>> {
  return (await p.read('stale', (kv) => kv.range({ limit: 1_000_000 }))).value;
}

async function runSeed(seed: number): Promise<void> {
  const rnd = new SeededRandom(seed);
  const c = await TestCluster.start({ seed, limits: { snapshotEveryEntries: 25, requestTimeoutTicks: 30 } });
  cluster = c;
  const ids = ['p1', 'p2', 'p3'];
  const down = new Map<string, number>(); // crashed peer → tick to reopen it
  const clients: Client[] = Array.from({ length: 4 }, (_, i) => ({ name: `client-${i}`, seq: 1, attempt: null, acked: new Set() }));
  const writesPerClient = 15;

  const startWrite = (cl: Client): void => {
    // Clients reach whichever peer believes it leads, even a cut-off one: those writes fail
    // (timeout, leadership lost) with unknown outcome and are retried elsewhere.
    const leaders = [...c.peers.values()].filter((p) => p.isLeader());
    if (leaders.length === 0) return;
    const leader = leaders[rnd.nextInt(leaders.length)]!;
    const key = `${cl.name}/${cl.seq}`;
    const attempt = { peer: leader.id, settled: false };
    cl.attempt = attempt;
    leader
      .write({ op: 'put', pairs: [[key, `v${cl.seq}`]], stamp: { client: cl.name, seq: cl.seq } })
      .then(
        (out) => {
          if (!out.result.ok) throw new Error(`seed ${seed}: ${key} refused: ${JSON.stringify(out.result)}`);
          cl.acked.add(key);
          cl.seq++;
        },
        () => {}, // unknown outcome: retried with the same stamp
      )
      .finally(() => (attempt.settled = true));
  };

  for (let tick = 0; tick < 600; tick++) {
    const faulty = tick < 300;
    // Clients first, faults next: faults then hit writes that are in flight (not yet saved or sent).
    for (const cl of clients) {
      if (cl.attempt !== null && !cl.attempt.settled && !c.peers.has(cl.attempt.peer)) cl.attempt.settled = true; // its peer died
      if ((cl.attempt === null || cl.attempt.settled) && cl.seq <= writesPerClient && rnd.nextInt(4) === 0) startWrite(cl);
    }
    // Half of the faults aim at the leader, where they cost the most.
    const target = (): string => (rnd.nextInt(2) === 0 ? (c.leaderId() ?? ids[rnd.nextInt(3)]!) : ids[rnd.nextInt(3)]!);
    if (faulty && c.isolated.size === 0 && rnd.nextInt(25) === 0) c.isolated.add(target());
    else if (c.isolated.size > 0 && rnd.nextInt(15) === 0) c.isolated.clear();
    if (faulty && down.size === 0 && rnd.nextInt(40) === 0) {
      const victim = target();
      c.crash(victim);
      down.set(victim, tick + 10 + rnd.nextInt(30));
    }
    for (const [id, at] of down) {
      if (tick >= at) {
        down.delete(id);
        await c.open(id);
      }
    }
    if (!faulty) c.isolated.clear();
    await c.tick();
    if (!faulty && clients.every((cl) => cl.seq > writesPerClient && cl.attempt?.settled)) break;
  }

  for (const cl of clients) expect(cl.acked.size, `seed ${seed}: ${cl.name} finished`).toBe(writesPerClient);
  const leader = await c.waitLeader();
  const commit = leader.status().commit;
  await c.until(() => [...c.peers.values()].every((p) => p.status().applied >= commit), 200, `seed ${seed}: convergence`);

  const reference = await allRecords(leader);
  const keys = new Map(reference);
  for (const cl of clients) {
    for (const key of cl.acked) {
      expect(keys.get(key)?.version, `seed ${seed}: ${key} applied exactly once`).toBe(1);
    }
  }
  expect(reference.length).toBe(clients.length * writesPerClient);
  // One revision per command: no retry was applied a second time.
  expect(leader.revision, `seed ${seed}: revisions`).toBe(clients.length * writesPerClient);
  for (const p of c.peers.values()) {
    expect(await allRecords(p), `seed ${seed}: ${p.id} equals the leader`).toEqual(reference);
    expect(p.revision).toBe(leader.revision);
  }
  await c.closeAll();
  cluster = null;
}

describe('peer: seeded faults', () => {
  it('keeps every acknowledged write, applies each command once and converges (partitions, crashes, restarts)', async () => {
    for (let seed = 1; seed <= 10; seed++) await runSeed(seed);
  });
});
