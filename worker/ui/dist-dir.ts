// Where `npm run build:ui` writes the dashboard, and where the Node host reads it from: its own
// file, so the Node host need not load the build (and esbuild) to know the place.

import path from 'node:path';

export const UI_DIST_DIR = path.join(import.meta.dirname, 'dist');
