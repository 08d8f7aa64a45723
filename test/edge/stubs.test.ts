// Peers are reached by name, in the region configured for them.

import { describe, expect, it } from 'vitest';
import { readConfig } from '../../worker/edge/config.ts';
import { peerStubOf } from '../../worker/edge/stubs.ts';

function fakeNamespace() {
  const calls: Array<{ name: string; options?: { locationHint?: string } }> = [];
  return {
    calls,
    idFromName: (name: string) => ({ name }),
    get(id: never, options?: { locationHint?: string }) {
      const call = { name: (id as { name: string }).name, ...(options ? { options } : {}) };
      calls.push(call);
      return call;
    },
  };
}

describe('peer stubs', () => {
  it('name each peer <cluster>/<id> and pass its configured location hint', () => {
    const config = readConfig({ CLUSTER_NAME: 'prod', LOCATION_HINTS: 'p1=wnam,p3=apac' });
    const ns = fakeNamespace();
    peerStubOf(ns, config, 'p1');
    peerStubOf(ns, config, 'p2');
    peerStubOf(ns, config, 'p3');
    expect(ns.calls).toEqual([
      { name: 'prod/p1', options: { locationHint: 'wnam' } },
      { name: 'prod/p2' },
      { name: 'prod/p3', options: { locationHint: 'apac' } },
    ]);
  });
});
