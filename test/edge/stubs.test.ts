// Peers are reached by name, in the region configured for them.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../worker/edge/config.ts';
import { peerStubOf } from '../../worker/edge/stubs.ts';
import { ROOT } from './harness.ts';

/** Every .ts file under `dir`, relative to the repository root. */
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

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

  it('are the only way any code reaches a peer object, so every object is created with its hint', () => {
    // An object is created where its first stub is made; a stub made anywhere else could miss the hint.
    const makers = sources('worker').filter((file) =>
      /\.(idFromName|idFromString|newUniqueId|getByName)\(/.test(readFileSync(join(ROOT, file), 'utf8')),
    );
    expect(makers).toEqual(['worker/edge/stubs.ts']);
  });
});
