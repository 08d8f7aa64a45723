// Simulated distance between regions, for tests only: with TEST_REGION_RTT_MS set (and
// LOCATION_HINTS placing the peers), every RPC call from one peer to another waits half the
// configured round trip of their two regions before it is delivered and half again before its
// answer (which carries the replies) is handed back, as a call across that distance would. It
// lets a test on one machine show the edge's latency model: a write costs the round trip from
// the leader to the nearest majority, not to the farthest peer.
//
// A deployment refuses it: the variable is accepted only together with METCD_AUTH=open (local
// development and tests), and a deployment that sets it answers every request 500 naming it.

import type { NodeId } from '../raft/types.ts';
import type { DeliverTarget } from './transport.ts';

/** Round trip in ms between two regions, keyed "a-b" with a <= b. */
export type RegionRtts = Record<string, number>;

export const REGION_RTT_MS_MAX = 4_000;

/** `wnam-weur=80,weur-apac=150` → { 'weur-wnam': 80, 'apac-weur': 150 }. `isRegion` says which names are regions. */
export function parseRegionRtts(spec: string, isRegion: (name: string) => boolean): RegionRtts {
  const out: RegionRtts = {};
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = /^([a-z]+)-([a-z]+)=(\d+)$/.exec(item);
    if (m === null || !isRegion(m[1]!) || !isRegion(m[2]!) || Number(m[3]) > REGION_RTT_MS_MAX) {
      throw new Error(`item ${JSON.stringify(item)}: expected <region>-<region>=<round trip ms, at most ${REGION_RTT_MS_MAX}>`);
    }
    out[pairKey(m[1]!, m[2]!)] = Number(m[3]);
  }
  return out;
}

function pairKey(a: string, b: string): string {
  return a <= b ? `${a}-${b}` : `${b}-${a}`;
}

/** The one-way delay from peer `from` to peer `to`: half their regions' round trip (0 when either has no region or the pair is not listed). */
export function oneWayMs(rtts: RegionRtts, regions: Record<NodeId, string>, from: NodeId, to: NodeId): number {
  const a = regions[from];
  const b = regions[to];
  if (a === undefined || b === undefined) return 0;
  return (rtts[pairKey(a, b)] ?? 0) / 2;
}

/** `target` with each call delayed `oneWay` ms each way (the answer carries the replies). */
export function delayedTarget(target: DeliverTarget, oneWay: number): DeliverTarget {
  if (oneWay <= 0) return target;
  const wait = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, oneWay));
  return {
    deliver: async (batch) => {
      await wait();
      const answer = await target.deliver(batch);
      await wait();
      return answer;
    },
  };
}
