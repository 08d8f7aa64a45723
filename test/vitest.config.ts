import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds the dashboard first if it is missing or stale (test/support/ui-build.ts).
    globalSetup: ['test/support/ui-build.ts'],
    root: new URL('..', import.meta.url).pathname,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
