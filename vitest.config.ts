import { defineConfig } from 'vitest/config';
import LongestFirst from './test/integration/sequencer.js';

export default defineConfig({
  test: {
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true', NO_COLOR: '1' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          // Containers and daemons: two files at a time (each in its own mail world), the longest first so
          // both workers end together; room for slow first runs.
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { sequencer: LongestFirst },
          pool: 'forks',
        },
      },
    ],
  },
});
