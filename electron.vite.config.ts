import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

const root = import.meta.dirname;

export default defineConfig({
  // Node side: the Electron main process, the CLI, the job worker and the pool worker share one bundle
  // so that out/main/worker.js and out/main/shard-worker.js sit next to whichever entry started them.
  main: {
    build: {
      outDir: 'out/main',
      // Every package stays in node_modules (tfjs finds its .wasm files there; tfjs-node is optional).
      externalizeDeps: { include: ['@tensorflow/tfjs-node', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-core', '@tensorflow/tfjs-layers'] },
      rollupOptions: {
        input: {
          main: resolve(root, 'src-main/electron/main.ts'),
          cli: resolve(root, 'src-main/cli/index.ts'),
          worker: resolve(root, 'src-main/jobs/worker.ts'),
          // The shard pool's threads (jobs/pool.ts), next to the job worker.
          'shard-worker': resolve(root, 'src-main/jobs/shard-worker.ts'),
        },
        output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
      },
    },
  },
  // A sandboxed preload must be one CommonJS file.
  preload: {
    build: {
      outDir: 'out/preload',
      rollupOptions: {
        input: { preload: resolve(root, 'src-main/electron/preload.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
      externalizeDeps: false,
    },
  },
  renderer: {
    root: resolve(root, 'src-renderer'),
    build: {
      outDir: resolve(root, 'out/renderer'),
      rollupOptions: { input: resolve(root, 'src-renderer/index.html') },
    },
    plugins: [svelte({ configFile: resolve(root, 'svelte.config.js') })],
  },
});
