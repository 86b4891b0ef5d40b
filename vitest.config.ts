import { defineConfig } from 'vitest/config';

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
          fileParallelism: false,
          // Containers and daemons: one file at a time, with room for slow first runs.
          pool: 'forks',
        },
      },
    ],
  },
});
