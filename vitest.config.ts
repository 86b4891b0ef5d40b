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
          // Containers and daemons: three files at a time (each in its own mail world), the longest first so
          // the workers end together (sequencer above); room for slow first runs. Much of a file's time is
          // spent waiting on daemons and the network: on two cores, three files still left them idle a
          // third of the time.
          fileParallelism: true,
          maxWorkers: 3,
          pool: 'forks',
        },
      },
    ],
  },
});
