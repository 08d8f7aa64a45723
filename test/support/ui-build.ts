// Vitest's global setup: the dashboard's build (worker/ui/dist/) exists and is up to date before
// any test starts, because every edge test's Worker uploads it as static assets (wrangler refuses
// a configuration whose assets directory is missing) and the dashboard tests serve it.

import { ensureUiBuilt } from '../../worker/ui/build.ts';

export default async function setup(): Promise<void> {
  await ensureUiBuilt();
}
