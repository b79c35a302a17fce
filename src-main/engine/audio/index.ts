/**
 * Audio engine: WAV I/O, resampling, a differentiable log-mel / MFCC front end, CTC loss and
 * decoding, error rates, loudness and dB_x, and the FSDD connected-digit corpus
 * (for Carlini & Wagner 2018, "Audio Adversarial Examples: Targeted Attacks on Speech-to-Text").
 */
export { readWav, readWavFile, encodeWav, write16, quantize16 } from './wav';
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
export { ctcLoss, ctcMinFrames } from './ctc';
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
