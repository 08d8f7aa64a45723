// How a metcd node's Node process is started so that its memory stays near what it holds.
//
// A tiered node holds a bounded cache, the log since its last compaction and the unsaved
// changes; much of the rest of its resident memory was slack the runtimes kept after a burst of
// work. glibc serves blocks below its mmap threshold from heaps it rarely gives back, and it
// raises that threshold by itself as large blocks are freed, so Raft batches and request bodies
// (~100 KB each under a bulk load) end up on those heaps: fixed at 64 KiB, such blocks are
// mapped and unmapped on their own. Measured on one sqlite node after loading 1,000,000 keys
// with a full 64 MiB cache: RSS 370 -> 325 MB (with V8's young generation at 1 MB, below),
// the brk heap 82 -> 0 MB, the load's rate and the bench workloads' throughput unchanged.
// C libraries other than glibc ignore the variable.
//
// Not set, a choice an operator can make: NODE_OPTIONS=--max-semi-space-size=1 keeps V8's
// young generation at 1 MB a semi-space (16 by default), which took another ~100 MB off the
// node above (V8 grows the old generation in proportion), and 19-24% off the bench's
// throughput (semi-spaces of 4 MB: ~100 MB less for 9-12%).
//
// An environment variable cannot be set from inside a running process, so whatever starts a
// node passes it: `npm run node` (package.json, checked against this by
// test/node/tiers.test.ts), `npm run cluster`, and the tests' and bench's nodes.

/** Environment for a node process. */
export const NODE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '65536' };

/** The argv (after the node executable) and environment to start `cli` with `args`; `env`'s own
 *  settings win. */
export function nodeProcess(
  cli: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { argv: string[]; env: NodeJS.ProcessEnv } {
  return { argv: [cli, ...args], env: { ...NODE_PROCESS_ENV, ...env } };
}
