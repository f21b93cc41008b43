import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Both cores: most of a test's time is spent in child processes and servers waiting on each other, so two
    // files at once halve the wall time (vitest 4 otherwise runs one file at a time on a 2-core machine).
    maxWorkers: 2,
  },
});
