import { defineConfig } from 'vitest/config';

// `npm run test:system`: slow system tests — multi-process set-ups (a Redis cluster), chaos
// (Redis killed or paused under load) and the production install from the registry. One file at
// a time, so their timing checks do not compete with each other for the CPU; longer timeouts.
export default defineConfig({
  test: {
    include: ['test/system/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
