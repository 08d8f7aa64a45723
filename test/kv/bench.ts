// KV benchmark (not a test): node_modules/.bin/node test/kv/bench.ts
// Measures the command codec against JSON, apply() throughput and snapshot encode/decode.

import { decodeCommand, decodeState, encodeCommand, encodeState, KvStateMachine } from '../../worker/kv/index.ts';
import type { KvCommand } from '../../worker/kv/index.ts';

function rate(label: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(i); // warm up
  const start = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const ms = performance.now() - start;
  console.log(
    `${label.padEnd(44)} ${Math.round((n / ms) * 1000)
      .toLocaleString('en')
      .padStart(12)} /s  (${((ms * 1e6) / n).toFixed(0)} ns each)`,
  );
}

const N = 1_000_000;
const value = 'v'.repeat(100);
const cmds: KvCommand[] = Array.from({ length: 1024 }, (_, i) => ({
  op: 'put',
  pairs: [[`/registry/pods/default/pod-${i}`, value]],
  stamp: { client: `client-${i % 64}`, seq: 1000 + i },
}));
const encoded = cmds.map(encodeCommand);
const te = new TextEncoder();
const td = new TextDecoder();
const jsonEncoded = cmds.map((c) => te.encode(JSON.stringify(c)));
console.log(`one command: binary ${encoded[0]!.length} bytes, JSON ${jsonEncoded[0]!.length} bytes`);

let sink = 0;
rate('encodeCommand', N, (i) => (sink += encodeCommand(cmds[i & 1023]!).length));
rate('JSON encode (stringify + TextEncoder)', N, (i) => (sink += te.encode(JSON.stringify(cmds[i & 1023]!)).length));
rate('decodeCommand', N, (i) => (sink += decodeCommand(encoded[i & 1023]!).op.length));
rate('JSON decode (TextDecoder + parse)', N, (i) => (sink += (JSON.parse(td.decode(jsonEncoded[i & 1023]!)) as KvCommand).op.length));

const sm = new KvStateMachine();
let index = 0;
const KEYS = 100_000;
rate(`apply put, stamped, ${KEYS.toLocaleString('en')} keys`, N, (i) => {
  const r = sm.apply(++index, {
    op: 'put',
    pairs: [[`/registry/pods/default/pod-${i % KEYS}`, value]],
    stamp: { client: `client-${i % 5000}`, seq: index },
  });
  sink += r.revision;
  if ((i & 255) === 0) sm.takeChanges(); // a host persists in batches
});
rate('decode + apply (the follower path)', N, (i) => {
  sink += sm.apply(++index, decodeCommand(encoded[i & 1023]!)).revision;
  if ((i & 255) === 0) sm.takeChanges();
});

const snapStart = performance.now();
const snap = sm.snapshot();
const bytes = encodeState(snap);
const encMs = performance.now() - snapStart;
const decStart = performance.now();
const restored = new KvStateMachine(undefined, decodeState(bytes));
const decMs = performance.now() - decStart;
console.log(
  `snapshot of ${sm.size.toLocaleString('en')} keys, ${sm.sessionCount} sessions: ${(bytes.length / 1e6).toFixed(1)} MB, ` +
    `snapshot+encode ${encMs.toFixed(0)} ms, decode+restore ${decMs.toFixed(0)} ms (${restored.size} keys)`,
);
const mem = process.memoryUsage();
console.log(`heap used ${(mem.heapUsed / 1e6).toFixed(0)} MB (sink ${sink % 10})`);
