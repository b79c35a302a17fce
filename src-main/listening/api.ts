/** The audio-input and listening-test methods of the API, spread into the handler table by api/handlers.ts. */
import type { ApiEvent } from '../api/contract';
import type { Handlers } from '../api/core';
import type { SessionStore } from '../engine/sessions';
import { ListeningService } from './service';
import { decodeUpload, listClips, listModelExamples, saveUpload, uploadsDir } from './uploads';

export type ListeningMethods = 'audio.upload' | 'audio.clips' | 'listening.create' | 'listening.answer' | 'listening.finish';

export interface ListeningDeps {
  store: SessionStore;
  dataDirs: string[];
  /** Emits an API event (sessions.changed after a listening session is created or ended). */
  emit?: (e: ApiEvent) => void;
}

export function listeningHandlers({ store, dataDirs, emit }: ListeningDeps): Pick<Handlers, ListeningMethods> {
  const service = new ListeningService(store, { onChange: () => emit?.({ type: 'sessions.changed' }) });
  const uploads = uploadsDir(store.root);
  return {
    'audio.upload': (p) => saveUpload(uploads, p.name, decodeUpload(p.name, p.base64)),
    'audio.clips': async (p) => ({ ...(await listClips(dataDirs, uploads)), ...(p.model ? { examples: await listModelExamples(store, p.model) } : {}) }),
    'listening.create': (p) => service.create(p),
    'listening.answer': (p) => service.answer(p),
    'listening.finish': (p) => service.finish(p.session),
  };
}
