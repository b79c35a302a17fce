/**
 * Audio engine: WAV I/O, resampling, a differentiable log-mel / MFCC front end, CTC loss and
 * decoding, error rates, loudness and dB_x, and the FSDD connected-digit corpus
 * (for Carlini & Wagner 2018, "Audio Adversarial Examples: Targeted Attacks on Speech-to-Text").
 */
export { readWav, readWavFile, encodeWav, write16, quantize16, MIN_WAV_SAMPLE_RATE, MAX_WAV_SAMPLE_RATE, MAX_WAV_CHANNELS, MAX_WAV_SECONDS, MAX_WAV_FILE_BYTES } from './wav';
export type { WavAudio, EncodeOptions } from './wav';
export { resample, besselI0 } from './resample';
export type { ResampleOptions } from './resample';
export {
  AudioFrontend,
  DEFAULT_FRONTEND,
  resolveFrontend,
  frameCount,
  stackSignals,
  hannWindow,
  melFilterbank,
  windowedDftMatrix,
  dctMatrix,
  hzToMel,
  melToHz,
} from './frontend';
export type { FrontendConfig } from './frontend';
export { ctcLoss, ctcLossGradient, ctcMinFrames } from './ctc';
export type { CtcOptions } from './ctc';
export {
  Alphabet,
  DEFAULT_ALPHABET,
  textToLabels,
  labelsToText,
  collapse,
  greedyDecode,
  beamSearchDecode,
  decodeBatch,
} from './decode';
export type { FrameScores, DecodeOptions, BeamOptions, Hypothesis, BatchDecodeOptions } from './decode';
export { levenshtein, words, cer, wer, corpusCer, corpusWer } from './metrics';
export type { ErrorCount } from './metrics';
export { dB, dbx, rms, rmsDbfs, matchLoudness, binomialTest } from './dbx';
export type { LoudnessMatched } from './dbx';
export {
  DIGIT_WORDS,
  fsddDir,
  listFsdd,
  fsddSpeakers,
  splitFsdd,
  digitsToTranscript,
  mulberry32,
  trimSilence,
  buildUtterances,
} from './fsdd';
export type { FsddClip, FsddSplitOptions, FsddSplits, TrimOptions, UtteranceOptions, Utterance, UtteranceSet, ClipCache } from './fsdd';
export {
  SpeechModel,
  SPEECH_ARCHITECTURES,
  SPEECH_ARCH_NAMES,
  SPEECH_FRONTEND,
  buildSpeechNetwork,
  isSpeechArch,
} from './model';
export type { SpeechArchName, SpeechArchitecture, SpeechConvSpec, SpeechMeta, BuildSpeechOptions, TranscribeOptions, Transcription } from './model';
export { trainSpeechModel, evaluateSpeech, prepareSpeechData, resolveSpeechTrainOptions, learningRateAt, trainingBatch, VAL_END } from './train';
export { parseAugmentSpec, checkAugment, augmentIsOn, augmentSignal, speedPerturb, addNoise, drawSpeed, drawSpecMasks, specAugment, DEFAULT_AUGMENT, NO_AUGMENT, AUGMENT_SPEC_HELP } from './augment';
export type { SpeechAugment, SpecMasks } from './augment';
export type {
  SpeechTrainOptions,
  ResolvedSpeechTrainOptions,
  SpeechTrainHooks,
  SpeechBatchRow,
  SpeechEpochRow,
  SpeechEvalRow,
  SpeechEvalResult,
  SpeechData,
  SpeechTrainResult,
} from './train';
export { audioAttack, validateTarget, normalizeTarget, resolveAudioAttackOptions, audiblePerturbation } from './attack';
export type { AudioAttackOptions, ResolvedAudioAttackOptions, AudioAttackRow, AudioAttackResult, AudioAttackHooks } from './attack';
export { audioBenchmark, PHRASE_TARGETS, UNSEEN_LETTER_PHRASES } from './bench';
export type { AudioBenchmarkOptions, AudioBenchmarkRow, AudioBenchmarkResult } from './bench';
export { recheckSaved } from './survival';
export type { SurvivalCheck } from './survival';
export { imageSourceRir, randomRir, randomRoom, sabineT60, directDistance, convolveSame, SPEED_OF_SOUND, DEFAULT_ROOMS } from './rir';
export type { ShoeboxRoom, RirOptions, RoomDistribution, Vec3 } from './rir';
export {
  EOT_DEFAULTS, resolveEotOptions, transformSets, drawTransform, applyTransform, transformBatch, transcribeUnder, linearKernel, applyKernel,
  roundTripKernel, resampleRoundTrip, otherRate, robustAudioAttack,
} from './eot';
export type { EotOptions, AudioTransform, HeldOutReport, RobustAudioAttackResult } from './eot';
export { universalPerturbation, fitWindow, UNIVERSAL_DEFAULTS } from './universal';
export type { UniversalOptions, UniversalPoint, UniversalResult, UniversalHooks } from './universal';
export {
  PSYCHO_REFERENCE, PSD_REFERENCE_DB, psychoConfig, bark, absoluteThresholdOfHearing, binFrequencies, binScales, powerSpectralDensity,
  findMaskers, frameThreshold, maskingThreshold, perturbationPsd, maskingViolation, maskingFrames, MaskingLoss,
} from './psycho';
export type { PsychoConfig, BinScales, MaskingThreshold, MaskingViolation, MaskingFrame } from './psycho';
export { imperceptibleStage, resolveImperceptibleOptions, nextAlpha, ALPHA_SCHEDULE, IMPERCEPTIBLE_DEFAULTS } from './imperceptible';
export type { ImperceptibleOptions, ResolvedImperceptibleOptions, ImperceptibleRow, ImperceptibleResult, ImperceptibleInput } from './imperceptible';
