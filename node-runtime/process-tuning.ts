// How a metcd node's Node process is started so that its memory stays near what it holds.
//
// A tiered node holds a bounded cache, the log since its last compaction and the unsaved
// changes; the rest of its resident memory was slack the runtimes kept after a burst of work.
// Measured on one sqlite node after loading 1,000,000 keys with a full 64 MiB cache (RSS after
// the load; the JS heap in use was ~100 MB throughout):
//   defaults                                   473 MB (V8 heap reserved 261 MB, malloc 82 MB)
//   --max-semi-space-size=1                    370 MB (heap reserved 180 MB)
//   … and MALLOC_MMAP_THRESHOLD_=65536         325 MB (glibc keeps no freed 100 KB buffers)
// with the load's rate unchanged (20.7 s, 19.7 s, 21.1 s). The young generation is where
// request bodies, decoded entries and records die young; V8 sizes it up to 16 MB a semi-space
// under load and keeps the old generation's growth in proportion. glibc serves blocks below
// its (self-raising) mmap threshold from heaps it rarely returns; Raft batches and request
// bodies are such blocks. Neither setting can be made from inside a running process, so
// whatever starts a node passes them: `npm run node` (package.json, checked against these by
// test/node/process-tuning.test.ts), `npm run cluster`, and the tests' and bench's nodes.

/** V8 flags for a node process. */
export const NODE_PROCESS_ARGS: readonly string[] = ['--max-semi-space-size=1'];

/** Environment for a node process (glibc's malloc; other C libraries ignore it). */
export const NODE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '65536' };

/** The argv (after the node executable) and environment to start `cli` with `args`. */
export function nodeProcess(
  cli: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { argv: string[]; env: NodeJS.ProcessEnv } {
  return { argv: [...NODE_PROCESS_ARGS, cli, ...args], env: { ...NODE_PROCESS_ENV, ...env } };
}
