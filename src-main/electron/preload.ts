/**
 * The preload: exposes exactly the API's methods (one function per method, nothing generic) and an
 * event subscription, through contextBridge. Sandboxed, so it is bundled into one CommonJS file.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { CALL_CHANNEL, EVENT_CHANNEL, METHOD_NAMES } from '../api/methods';
// Types only: the preload bundle carries no schema or engine code.
import type { AdvlabBridge, ApiEvent, Envelope, Method, ParamsArg, ResultOf } from '../api/contract';

export type { AdvlabBridge };

export function buildBridge(ipc: Pick<typeof ipcRenderer, 'invoke' | 'on' | 'removeListener'>): AdvlabBridge {
  const allowed = new Set<string>(METHOD_NAMES);
  return Object.freeze({
    transport: 'electron' as const,
    methods: METHOD_NAMES,
    call<M extends Method>(method: M, ...[params]: ParamsArg<M>): Promise<Envelope<ResultOf<M>>> {
      // Refused here too, so a compromised page cannot name arbitrary channels or methods.
      if (!allowed.has(method)) return Promise.reject(new Error(`Unknown API method ${String(method)}`));
      return ipc.invoke(CALL_CHANNEL, method, params ?? {}); // main validates the params and answers an envelope
    },
    onEvent(listener: (event: ApiEvent) => void) {
      const wrapped = (_e: IpcRendererEvent, payload: ApiEvent) => listener(payload); // never hand out the IPC event
      ipc.on(EVENT_CHANNEL, wrapped);
      return () => ipc.removeListener(EVENT_CHANNEL, wrapped);
    },
  });
}

contextBridge.exposeInMainWorld('advlab', buildBridge(ipcRenderer));
