import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SpeechModel, ctcLoss, readWavFile, stackSignals } from '../../../src-main/engine/audio';
import { DATA } from '../helpers';

export const TINY_WORDS = ['one', 'two', 'three'];

/**
 * A tiny speech model over-fitted on three recordings ("one", "two", "three" by one speaker, as in
 * speech-attack.test.ts) until it transcribes all three exactly: a real, if tiny, model to attack.
 */
export async function tinySpeechModel(): Promise<{ model: SpeechModel; clips: Float32Array[] }> {
  const FSDD = join(DATA, 'fsdd', 'recordings');
  const clips = await Promise.all(['1_george_0', '2_george_0', '3_george_0'].map(async (f) => (await readWavFile(join(FSDD, `${f}.wav`))).samples));
  const model = SpeechModel.create('speech-small', { seed: 3 });
  const { batch, lengths } = stackSignals(clips, 200);
  const feats = model.frontend.features(batch, lengths);
  const frames = lengths.map((n) => model.frameCount(n));
  const labels = TINY_WORDS.map((w) => model.alphabet.encode(w));
  const vars = model.network.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = tf.train.adam(3e-3);
  for (let step = 1; step <= 120; step++) {
    tf.dispose(opt.minimize(() => ctcLoss(model.logitsFromFeatures(feats, frames, true), labels, { inputLengths: model.outputLengths(lengths), reduction: 'mean' }) as tf.Scalar, true, vars) ?? []);
    if (step % 10 === 0 && (await model.transcribeBatch(clips)).every((t, i) => t === TINY_WORDS[i])) break;
  }
  tf.dispose([batch, feats]);
  opt.dispose();
  return { model, clips };
}
