import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  test: {
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { ADVLAB_DATA: new URL('../shared/data', import.meta.url).pathname },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/fuzz/**/*.test.ts'], exclude: ['test/unit/**/*.svelte.test.ts'] },
      },
      // The renderer's rune classes (*.svelte.ts), compiled by Svelte for its client runtime (the
      // 'browser' condition, a client transform) so that $state and $effect behave as in the app.
      {
        extends: true,
        plugins: [svelte()],
        resolve: { conditions: ['browser'] },
        test: { name: 'runes', include: ['test/unit/**/*.svelte.test.ts'], environment: './test/unit/renderer/runes-environment.ts' },
      },
    ],
  },
});
