import { defineConfig } from 'vitest/config';
import LongestFirst from './test/integration/sequencer.js';

export default defineConfig({
  test: {
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true', NO_COLOR: '1' },
    // Files in the order of test/integration/sequencer.ts (vitest reads the sequencer of the root only).
    sequence: { sequencer: LongestFirst },
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
          // both workers end together (sequencer above); room for slow first runs.
          fileParallelism: true,
          maxWorkers: 2,
          pool: 'forks',
        },
      },
    ],
  },
});
