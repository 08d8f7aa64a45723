// Builds the dashboard (`npm run build:ui`): src/main.ts and the client it imports bundled and
// minified by esbuild into dist/app.js, beside index.html and app.css. dist/ then holds exactly
// the files the router serves (UI_ASSETS in worker/api/ui-route.ts), nothing else: the edge
// uploads the directory as the Worker's static assets, and a Node node reads from it.
//
// Each file is written beside its place and renamed into it, so a server (or a test) reading
// dist/ while it is rebuilt sees the old file or the new one, never half of one.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { UI_ASSETS } from '../api/ui-route.ts';
import { UI_DIST_DIR } from './dist-dir.ts';

export { UI_DIST_DIR };
const HERE = import.meta.dirname;
/** What the bundle is made of: a change to any of these makes dist/ stale. */
const SOURCES = ['src', 'index.html', 'app.css', 'build.ts', '../client'].map((source) => path.join(HERE, source));

/** Builds dist/; answers each file's size in bytes. */
export async function buildUi(): Promise<Record<string, number>> {
  const bundle = await build({
    entryPoints: [path.join(HERE, 'src/main.ts')],
    outfile: path.join(UI_DIST_DIR, 'app.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
  });
  const files = new Map<string, Uint8Array>([
    ['app.js', bundle.outputFiles[0]!.contents],
    ['index.html', readFileSync(path.join(HERE, 'index.html'))],
    ['app.css', readFileSync(path.join(HERE, 'app.css'))],
  ]);
  const expected = Object.keys(UI_ASSETS).sort();
  if ([...files.keys()].sort().join() !== expected.join())
    throw new Error(`the build makes ${[...files.keys()].join(', ')}; the router serves ${expected.join(', ')}`);
  mkdirSync(UI_DIST_DIR, { recursive: true });
  for (const [name, bytes] of files) {
    const temporary = path.join(UI_DIST_DIR, `.${name}.${process.pid}.tmp`);
    writeFileSync(temporary, bytes);
    renameSync(temporary, path.join(UI_DIST_DIR, name));
  }
  // Anything else (an old build's file) would be uploaded as an asset on the edge: remove it.
  for (const name of readdirSync(UI_DIST_DIR))
    if (!files.has(name) && !name.endsWith('.tmp')) rmSync(path.join(UI_DIST_DIR, name), { recursive: true });
  return Object.fromEntries([...files].map(([name, bytes]) => [name, bytes.byteLength]));
}

function newestMtimeMs(target: string): number {
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(target).map((name) => newestMtimeMs(path.join(target, name))));
}

/** Builds dist/ unless it holds every file and is newer than every source (tests call this). */
export async function ensureUiBuilt(): Promise<void> {
  const built = Object.keys(UI_ASSETS).map((name) => path.join(UI_DIST_DIR, name));
  if (built.every((file) => existsSync(file))) {
    const oldestBuilt = Math.min(...built.map((file) => statSync(file).mtimeMs));
    if (Math.max(...SOURCES.map(newestMtimeMs)) <= oldestBuilt) return;
  }
  await buildUi();
}

if (import.meta.main) {
  const sizes = await buildUi();
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  const list = Object.entries(sizes).map(([file, bytes]) => `${file} ${bytes} B`);
  console.log(`dashboard built in ${path.relative(process.cwd(), UI_DIST_DIR) || '.'}: ${list.join(', ')} (${total} B)`);
}
