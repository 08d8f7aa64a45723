// Builds the dashboard (`npm run build:ui`): src/main.ts and the client it imports bundled and
// minified by esbuild into dist/app.js, beside index.html and app.css. dist/ then holds exactly
// the files the router serves (UI_ASSETS in worker/api/ui-route.ts), nothing else: the edge
// uploads the directory as the Worker's static assets, and a Node node reads from it.

import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { UI_ASSETS } from '../api/ui-route.ts';

const HERE = import.meta.dirname;
export const UI_DIST_DIR = path.join(HERE, 'dist');

/** Builds dist/; answers each file's size in bytes. */
export async function buildUi(): Promise<Record<string, number>> {
  rmSync(UI_DIST_DIR, { recursive: true, force: true });
  mkdirSync(UI_DIST_DIR, { recursive: true });
  await build({
    entryPoints: [path.join(HERE, 'src/main.ts')],
    outfile: path.join(UI_DIST_DIR, 'app.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    legalComments: 'none',
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'app.css']) copyFileSync(path.join(HERE, file), path.join(UI_DIST_DIR, file));
  const built = readdirSync(UI_DIST_DIR).sort();
  const expected = Object.keys(UI_ASSETS).sort();
  if (built.join() !== expected.join()) throw new Error(`dist/ holds ${built.join(', ')}; the router serves ${expected.join(', ')}`);
  return Object.fromEntries(built.map((f) => [f, statSync(path.join(UI_DIST_DIR, f)).size]));
}

if (import.meta.main) {
  const sizes = await buildUi();
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  console.log(
    `dashboard built in ${path.relative(process.cwd(), UI_DIST_DIR) || '.'}: ${Object.entries(sizes)
      .map(([f, n]) => `${f} ${n} B`)
      .join(', ')} (${total} B)`,
  );
}
