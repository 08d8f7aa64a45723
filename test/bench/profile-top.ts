// Summarises V8 .cpuprofile files (from `npm run bench -- --cpu-prof DIR`): the functions with
// the most self time, and the project files with the most total time, per profile.
//
//   node test/bench/profile-top.ts DIR|FILE… [--top 30]

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function files(args: string[]): string[] {
  return args.flatMap((a) =>
    statSync(a).isDirectory()
      ? readdirSync(a)
          .filter((f) => f.endsWith('.cpuprofile'))
          .map((f) => path.join(a, f))
      : [a],
  );
}

function shortUrl(url: string): string {
  const i = url.indexOf('/work/');
  const u = i >= 0 ? url.slice(url.indexOf('/', i + 6) + 1) : url;
  return u.replace(/^file:\/\//, '').replace(/^.*node_modules\//, 'nm/');
}

function summarise(file: string, top: number): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const totalUs = p.endTime - p.startTime;
  const idleUs = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((s, [, us]) => s + us, 0);

  const selfByFn = new Map<string, number>();
  const inclByFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + us);
    // Inclusive per file: every distinct file on the stack gets the sample once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const u = shortUrl(byId.get(cur)!.callFrame.url);
      if (u === '' || seen.has(u)) continue;
      seen.add(u);
      inclByFile.set(u, (inclByFile.get(u) ?? 0) + us);
    }
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1).padStart(5)}%`;
  const lines = [
    `${file}: ${(totalUs / 1e6).toFixed(1)} s, busy ${(busyUs / 1e6).toFixed(1)} s (${((100 * busyUs) / totalUs).toFixed(0)}%); % of busy time`,
  ];
  lines.push('  self time:');
  for (const [k, us] of [...selfByFn]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    lines.push(`  ${pct(us)}  ${k}`);
  lines.push('  total time by file:');
  for (const [k, us] of [...inclByFile].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${k}`);
  return lines.join('\n');
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 30;
if (args.length === 0) {
  process.stderr.write('usage: node test/bench/profile-top.ts DIR|FILE… [--top 30]\n');
  process.exit(2);
}
for (const f of files(args)) process.stdout.write(summarise(f, top) + '\n\n');
