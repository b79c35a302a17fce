/**
 * Listening tests (blind A/B and ABX trials of original vs adversarial audio, loudness-matched, scored
 * with an exact binomial test) and the audio the user brings in (uploads, recordings, FSDD clips).
 */
export { ListeningService, type ListeningServiceOptions } from './service';
export { planTrials, isCorrect, answersFor, type PlannedTrial, type PlanOptions, type Identity } from './plan';
export { uploadsDir, saveUpload, decodeUpload, safeUploadName, listUploads, listClips, listModelExamples } from './uploads';
export { listeningHandlers, type ListeningDeps, type ListeningHandlers, type ListeningMethods } from './api';
export * from './schemas';
