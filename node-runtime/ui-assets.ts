// The dashboard's files on Node: read from the built directory (worker/ui/dist/, made by
// `npm run build:ui`, which npm install, npm run node and npm run cluster run first) by their
// name in the router's allowlist (UI_ASSETS), never by a path from the request, and kept in
// memory once read. A missing build answers null (the router says how to build it).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UI_DIST_DIR } from '../worker/ui/dist-dir.ts';
import { UI_ASSETS, type UiAssetName } from '../worker/api/ui-route.ts';

export { UI_DIST_DIR };

export function uiAssetReader(dir = UI_DIST_DIR): (name: UiAssetName) => Promise<Uint8Array | null> {
  const cache = new Map<UiAssetName, Uint8Array>();
  return async (name) => {
    if (!Object.hasOwn(UI_ASSETS, name)) throw new Error(`not a dashboard file: ${JSON.stringify(name)}`);
    const cached = cache.get(name);
    if (cached !== undefined) return cached;
    try {
      const bytes = new Uint8Array(await readFile(path.join(dir, name)));
      cache.set(name, bytes);
      return bytes;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  };
}
