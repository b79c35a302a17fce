/**
 * The audio-input and listening-test methods of the API as plain handlers (params as their schemas
 * in listening/schemas.ts parse them), wired into the API's handler table by api/handlers.ts.
 */
import type { z } from 'zod';
import type { SessionStore } from '../engine/sessions';
import type {
  audioClipsSchema, audioUploadSchema, listeningAnswerSchema, listeningCreateSchema, listeningFinishSchema,
  AudioClipsResult, AudioUploadResult, ListeningAnswerResult, ListeningResult, ListeningTestView,
} from './schemas';
import { ListeningService } from './service';
import { decodeUpload, listClips, listModelExamples, saveUpload, uploadsDir } from './uploads';

export type ListeningMethods = 'audio.upload' | 'audio.clips' | 'listening.create' | 'listening.answer' | 'listening.finish';

export interface ListeningHandlers {
  'audio.upload': (p: z.output<typeof audioUploadSchema>) => Promise<AudioUploadResult>;
  'audio.clips': (p: z.output<typeof audioClipsSchema>) => Promise<AudioClipsResult>;
  'listening.create': (p: z.output<typeof listeningCreateSchema>) => Promise<ListeningTestView>;
  'listening.answer': (p: z.output<typeof listeningAnswerSchema>) => Promise<ListeningAnswerResult>;
  'listening.finish': (p: z.output<typeof listeningFinishSchema>) => Promise<ListeningResult>;
}

export interface ListeningDeps {
  store: SessionStore;
  dataDirs: string[];
  /** Tells every client that the store changed (after a listening session is created or ended). */
  emit?: (e: { type: 'sessions.changed' }) => void;
}

export function listeningHandlers({ store, dataDirs, emit }: ListeningDeps): ListeningHandlers {
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
