import { defineConfig } from 'vitest/config';

// `npm test`: unit and black-box behaviour tests, meant to finish in about two minutes on a
// 2-core machine. Slow system tests (Redis cluster, chaos, the registry install) live in
// test/system/ and run with `npm run test:system` (vitest.system.config.ts).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/system/**', '**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
