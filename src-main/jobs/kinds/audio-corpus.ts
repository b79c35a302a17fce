/**
 * 'audio-corpus': synthesizes a speech corpus with every letter (engine/audio/corpus.ts) into a
 * folder: by default speech-corpus/ in the app's own data folder, where `audio train --corpus
 * speech-corpus` (or the Audio view) finds it by name. FSDD's recordings are listed in it when a data
 * folder has them. A job like data-get: progress, Cancel (no manifest is written for a cancelled
 * run), no session; the manifest is the record.
 */
import { join } from 'node:path';
import { audioCorpusParams } from '../../api/jobs';
import { generateCorpus } from '../../engine/audio/corpus';
import { appDataDir } from '../../paths';
import type { JobHandler } from '../types';
import { DEFAULT_CORPUS_NAME, findFsdd } from './audio';

export const audioCorpus = (async (raw, ctx, env) => {
  const p = audioCorpusParams.parse(raw);
  const out = p.out ?? join(appDataDir(), DEFAULT_CORPUS_NAME);
  let fsddDir: string | undefined;
  if (p.fsdd) {
    try {
      fsddDir = findFsdd(env.dataDirs);
    } catch {
      fsddDir = undefined;
    }
  }
  const t0 = performance.now();
  const m = await generateCorpus({ out, hours: p.hours, seed: p.seed, sampleRate: p.sampleRate, concurrency: p.concurrency, fsddDir, ...(p.synthesizers ? { synthesizers: p.synthesizers } : {}) }, ctx);
  const count = (s: string) => m.clips.filter((c) => c.split === s).length;
  return {
    out,
    manifest: join(out, 'corpus.json'),
    clips: m.clips.length,
    train: count('train'),
    val: count('val'),
    test: count('test'),
    seconds: m.seconds,
    synthesizers: m.synthesizers,
    heldOutVoices: m.heldOutVoices.length,
    trainVoices: m.trainVoices.length,
    fsddClips: m.fsdd?.clips.length ?? 0,
    heldOutSpeaker: m.fsdd?.heldOutSpeaker ?? null,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}) satisfies JobHandler<'audio-corpus'>;
