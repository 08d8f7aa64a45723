// The layer linter (eslint.config.js) bites: a planted import across a boundary, a planted
// cycle, a runtime module or a clock read in a shared layer is reported, and an import the
// layers allow is not. Each case lints a small file that exists only in memory, placed by its
// path in the layer under test; `npm run lint` checks the real tree.

import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;

let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT });
});

/** The rule ids reported for `code` placed at `filePath` (relative to the repository root). */
async function rulesFiredBy(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: ROOT + filePath });
  expect(result, `${filePath} was linted`).toBeDefined();
  return result!.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

describe('lint: layer boundaries', () => {
  it.each([
    ['the Raft core', 'worker/raft/planted.ts', "import { Peer } from '../peer/peer.ts';\nexport const p = Peer;\n"],
    [
      'the Raft core (the KV state machine)',
      'worker/raft/planted.ts',
      "import { KvStateMachine } from '../kv/state-machine.ts';\nexport const k = KvStateMachine;\n",
    ],
    [
      'the KV state machine (a type-only import)',
      'worker/kv/planted.ts',
      "import type { Entry } from '../raft/types.ts';\nexport type E = Entry;\n",
    ],
    [
      'the peer (the API)',
      'worker/peer/planted.ts',
      "import { createApiRouter } from '../api/router.ts';\nexport const r = createApiRouter;\n",
    ],
    ['the peer (a host)', 'worker/peer/planted.ts', "import { PeerObject } from '../edge/peer-object.ts';\nexport const o = PeerObject;\n"],
    [
      'the API (the Node host)',
      'worker/api/planted.ts',
      "import { parseFlags } from '../../node-runtime/flags.ts';\nexport const f = parseFlags;\n",
    ],
    [
      'the Node host (the edge host)',
      'node-runtime/planted.ts',
      "import { readConfig } from '../worker/edge/config.ts';\nexport const c = readConfig;\n",
    ],
    [
      'the dashboard (the API)',
      'worker/ui/src/planted.ts',
      "import { UI_ASSETS } from '../../api/ui-route.ts';\nexport const a = UI_ASSETS;\n",
    ],
    [
      'production code (the tests)',
      'worker/peer/planted.ts',
      "import { waitFor } from '../../test/support/wait.ts';\nexport const w = waitFor;\n",
    ],
  ])('reports an import that reaches up or across from %s', async (_layer, filePath, code) => {
    expect(await rulesFiredBy(filePath, code)).toContain('import-x/no-restricted-paths');
  });

  it('allows the imports the layers permit (peer → raft and kv, api → peer, a host → everything shared)', async () => {
    expect(
      await rulesFiredBy(
        'worker/peer/planted.ts',
        "import type { Entry } from '../raft/types.ts';\nimport { KvStateMachine } from '../kv/state-machine.ts';\nexport type E = Entry;\nexport const k = KvStateMachine;\n",
      ),
    ).toEqual([]);
    expect(await rulesFiredBy('worker/api/planted.ts', "import { Peer } from '../peer/peer.ts';\nexport const p = Peer;\n")).toEqual([]);
    expect(
      await rulesFiredBy(
        'node-runtime/planted.ts',
        "import { createApiRouter } from '../worker/api/router.ts';\nexport const r = createApiRouter;\n",
      ),
    ).toEqual([]);
    expect(
      await rulesFiredBy(
        'worker/ui/src/planted.ts',
        "import { createClient } from '../../client/index.ts';\nexport const c = createClient;\n",
      ),
    ).toEqual([]);
  });
});

describe('lint: no import cycles', () => {
  it('reports a cycle closed by a planted import (rawnode.ts imports assert.ts; assert.ts importing rawnode.ts closes it)', async () => {
    const code =
      "import { RawNode } from './rawnode.ts';\nexport const node = RawNode;\nexport function invariant(cond: boolean, what: string): asserts cond {\n  if (!cond) throw new Error(what);\n}\n";
    expect(await rulesFiredBy('worker/raft/assert.ts', code)).toContain('import-x/no-cycle');
  });
});

describe('lint: the shared layers stay runtime-free and deterministic', () => {
  it('reports a runtime module in the peer, the API and the dashboard', async () => {
    expect(
      await rulesFiredBy('worker/peer/planted.ts', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n"),
    ).toContain('no-restricted-imports');
    expect(
      await rulesFiredBy('worker/api/planted.ts', "import { EventEmitter } from 'events';\nexport const e = EventEmitter;\n"),
    ).toContain('no-restricted-imports');
    expect(
      await rulesFiredBy('worker/ui/src/planted.ts', "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n"),
    ).toContain('no-restricted-imports');
  });

  it('reports a clock read, a timer and Math.random in the core, the state machine and the peer', async () => {
    expect(await rulesFiredBy('worker/raft/planted.ts', 'export const now = Date.now();\n')).toContain('no-restricted-globals');
    expect(await rulesFiredBy('worker/kv/planted.ts', 'export const r = Math.random();\n')).toContain('no-restricted-properties');
    expect(await rulesFiredBy('worker/peer/planted.ts', 'export const t = setTimeout(() => {}, 1);\n')).toContain('no-restricted-globals');
  });

  it('leaves hosts free to read the clock and import runtime modules', async () => {
    expect(
      await rulesFiredBy(
        'node-runtime/planted.ts',
        "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\nexport const now = Date.now();\n",
      ),
    ).toEqual([]);
  });
});
