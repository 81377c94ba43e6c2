import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  resolve: { alias: { '@lib/nn': fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Generous: with a cold Mesa shader cache, a big model's first step compiles for minutes.
    // One WebGPU device per worker process; lavapipe already uses every core.
    pool: 'forks',
    fileParallelism: false,
  },
});
