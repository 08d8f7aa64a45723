// The linter guards the architecture (worker/README.md): which layer may import which, no
// import cycles, and nothing in the shared layers that ties them to a runtime, a clock or
// chance. typescript-eslint's recommended rules come on top, with one option changed (below).
// Formatting is Prettier's (.prettierrc), not ESLint's.

import { builtinModules } from 'node:module';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

const HOSTS = ['./worker/edge', './worker/index.ts', './node-runtime'];
const SEE = 'See "Layers" in worker/README.md.';

/** A zone of import-x/no-restricted-paths: files under `target` import nothing from `from`. */
function zone(target, from, why) {
  return { target, from, message: `${why} ${SEE}` };
}

// Data flows down, nothing below reaches up: raft and kv are leaves (each knows nothing of the
// other), peer drives them, api serves the peer, and a host adapts everything above it.
const LAYER_ZONES = [
  zone(
    './worker/raft',
    ['./worker/kv', './worker/peer', './worker/api', ...HOSTS],
    'The Raft core is a pure state machine: it imports nothing from the KV state machine, the peer, the API or the hosts.',
  ),
  zone(
    './worker/kv',
    ['./worker/raft', './worker/peer', './worker/api', ...HOSTS],
    'The KV state machine applies commands and knows nothing of Raft, the peer, the API or the hosts.',
  ),
  zone(
    './worker/peer',
    ['./worker/api', ...HOSTS],
    'The peer talks to its host only through its ports (worker/peer/ports.ts): it imports nothing from the API or the hosts.',
  ),
  zone('./worker/api', HOSTS, 'The API is the same on both runtimes: it imports nothing from a host.'),
  zone(
    './worker/backup',
    ['./worker/peer', './worker/api', ...HOSTS],
    'The backup file format is shared by both runtimes: it imports nothing from the peer, the API or a host.',
  ),
  zone(
    './worker/client',
    ['./worker/raft', './worker/peer', './worker/backup', ...HOSTS],
    'The client speaks HTTP to a cluster and runs in browsers, Workers and Node: it imports nothing from the Raft core, the peer, the backup format or the hosts.',
  ),
  zone(
    './worker/ui/src',
    ['./worker/raft', './worker/kv', './worker/peer', './worker/api', './worker/backup', ...HOSTS],
    'The dashboard is a browser page that talks to the cluster over HTTP: it imports nothing but the client (worker/client/).',
  ),
  zone(['./worker/edge', './worker/index.ts'], ['./node-runtime'], 'The edge host imports nothing from the Node host.'),
  zone('./node-runtime', ['./worker/edge', './worker/index.ts'], 'The Node host imports nothing from the edge host.'),
  zone(['./worker', './node-runtime'], ['./test'], 'Production code imports nothing from the tests.'),
];

// The shared layers run unchanged on workerd, on Node and under the simulator.
const RUNTIME_MODULES = {
  paths: builtinModules.map((name) => ({ name, message: `a runtime module; the shared layers reach the host through ports. ${SEE}` })),
  patterns: [{ group: ['node:*', 'cloudflare:*'], message: `a runtime module; the shared layers reach the host through ports. ${SEE}` }],
};

// Time and randomness enter the core, the state machine and the peer only as inputs (ticks,
// the Clock port, the injected RandomSource), so that a simulated run replays from its seed.
const NOT_DETERMINISTIC = `time and randomness come in through ticks, the Clock port and the injected RandomSource. ${SEE}`;

export default defineConfig([
  globalIgnores(['node_modules/', '.wrangler/', 'data/', 'test/bench/results/', 'worker/ui/dist/', 'test/artifacts/']),
  {
    files: ['**/*.{ts,js,mjs}'],
    extends: [tseslint.configs.recommended],
    plugins: { 'import-x': importX },
    settings: {
      // Resolve and parse the explicit `.ts` specifiers this code uses, so the rules below follow
      // imports into real files (without these, import-x skips .ts files and sees no cycle).
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.mjs'] })],
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: LAYER_ZONES }],
      // Type-only imports are skipped (erased at run time); every value import cycle is an error.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // The one change to typescript-eslint's recommended set: a `_`-prefixed parameter is
      // deliberately unused (a callback's or an interface's shape).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: [
      'worker/raft/**/*.ts',
      'worker/kv/**/*.ts',
      'worker/peer/**/*.ts',
      'worker/api/**/*.ts',
      'worker/backup/**/*.ts',
      'worker/client/**/*.ts',
      'worker/ui/src/**/*.ts',
    ],
    rules: { 'no-restricted-imports': ['error', RUNTIME_MODULES] },
  },
  {
    files: ['worker/raft/**/*.ts', 'worker/kv/**/*.ts', 'worker/peer/**/*.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: NOT_DETERMINISTIC }],
      'no-restricted-globals': [
        'error',
        ...['Date', 'performance', 'setTimeout', 'setInterval', 'setImmediate'].map((name) => ({ name, message: NOT_DETERMINISTIC })),
      ],
    },
  },
]);
