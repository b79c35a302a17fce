/**
 * The vitest environment of the renderer's rune tests (the 'runes' project in vitest.config.ts): plain
 * Node globals, but modules are transformed for the client, so Svelte compiles *.svelte.ts for its
 * client runtime, where $state, $derived and $effect run as in the app (the server build does not run effects).
 */
import type { Environment } from 'vitest/environments';

export default <Environment>{
  name: 'runes',
  viteEnvironment: 'client',
  setup: () => ({ teardown: () => undefined }),
};
