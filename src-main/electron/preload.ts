/**
 * The preload: exposes exactly the API's methods (one function per method, nothing generic) and an
 * event subscription, through contextBridge. Sandboxed, so it is bundled into one CommonJS file.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { CALL_CHANNEL, EVENT_CHANNEL, METHOD_NAMES, type MethodName } from '../api/methods';

export type AdvlabBridge = {
  readonly transport: 'electron';
  readonly methods: readonly MethodName[];
  call(method: MethodName, params?: unknown): Promise<unknown>;
  onEvent(listener: (event: unknown) => void): () => void;
};

export function buildBridge(ipc: Pick<typeof ipcRenderer, 'invoke' | 'on' | 'removeListener'>): AdvlabBridge {
  const allowed = new Set<string>(METHOD_NAMES);
  return Object.freeze({
    transport: 'electron' as const,
    methods: METHOD_NAMES,
    call(method: MethodName, params?: unknown) {
      // Refused here too, so a compromised page cannot name arbitrary channels or methods.
      if (!allowed.has(method)) return Promise.reject(new Error(`Unknown API method ${String(method)}`));
      return ipc.invoke(CALL_CHANNEL, method, params ?? {});
    },
    onEvent(listener: (event: unknown) => void) {
      const wrapped = (_e: IpcRendererEvent, payload: unknown) => listener(payload); // never hand out the IPC event
      ipc.on(EVENT_CHANNEL, wrapped);
      return () => ipc.removeListener(EVENT_CHANNEL, wrapped);
    },
  });
}

contextBridge.exposeInMainWorld('advlab', buildBridge(ipcRenderer));
