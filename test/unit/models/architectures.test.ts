import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { ARCHITECTURE_NAMES, buildModel, listArchitectures, paramCount } from '../../../src-main/engine/models';

beforeAll(async () => {
  await initBackend('wasm');
});

// Hand-computed: C&W MNIST = 320 + 9248 + 18496 + 36928 + (1024*200+200) + (200*200+200) + (200*10+10).
const EXPECTED = { 'cw-mnist': 312_202, 'cw-cifar': 1_147_978, 'small-cnn': 114_314, mlp: 50_890 } as const;

describe('architectures', () => {
  it('builds every architecture with the expected output shape and parameter count', () => {
    for (const arch of ARCHITECTURE_NAMES) {
      const model = buildModel(arch, { seed: 1 });
      const info = listArchitectures().find((a) => a.name === arch)!;
      expect(model.countParams(), arch).toBe(EXPECTED[arch]);
      expect(info.params, arch).toBe(EXPECTED[arch]);
      expect(paramCount(arch), arch).toBe(EXPECTED[arch]);
      const [h, w, c] = info.defaultInputShape;
      const y = tf.tidy(() => model.predict(tf.zeros([2, h, w, c])) as tf.Tensor);
      expect(y.shape).toEqual([2, 10]);
      y.dispose();
      model.dispose();
    }
  });

  it('matches the C&W MNIST layer stack (valid 3x3 convs, logits out, dropout after the first dense)', () => {
    const model = buildModel('cw-mnist');
    const shapes = model.layers.map((l) => [l.getClassName(), (l.outputShape as number[]).slice(1).join('x')]);
    expect(shapes).toEqual([
      ['Conv2D', '26x26x32'], ['Conv2D', '24x24x32'], ['MaxPooling2D', '12x12x32'],
      ['Conv2D', '10x10x64'], ['Conv2D', '8x8x64'], ['MaxPooling2D', '4x4x64'],
      ['Flatten', '1024'], ['Dense', '200'], ['Dropout', '200'], ['Dense', '200'], ['Dense', '10'],
    ]);
    const last = model.layers[model.layers.length - 1].getConfig();
    expect(last.activation).toBe('linear');
    expect(buildModel('cw-mnist', { dropout: 0 }).layers.some((l) => l.getClassName() === 'Dropout')).toBe(false);
    model.dispose();
  });

  it('outputs logits, not probabilities', () => {
    const model = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed: 3 });
    const y = tf.tidy(() => model.predict(tf.randomUniform([5, 8, 8, 1], 0, 1, 'float32', 7)) as tf.Tensor2D);
    const v = y.arraySync();
    expect(v.flat().some((z) => z < 0)).toBe(true);
    expect(v.some((row) => Math.abs(row.reduce((a, b) => a + b, 0) - 1) > 1e-3)).toBe(true);
    y.dispose();
    model.dispose();
  });

  it('is reproducible for a seed and differs across seeds', () => {
    const w = (seed: number) => {
      const m = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed });
      const v = m.getWeights().map((t) => Array.from(t.dataSync()));
      m.dispose();
      return v;
    };
    const a = w(5), b = w(5), c = w(6);
    expect(a).toEqual(b);
    expect(a[0]).not.toEqual(c[0]);
    // Different layers get different initialisers even with one seed.
    expect(a[0].slice(0, 10)).not.toEqual(a[2].slice(0, 10));
  });

  it('uses a seeded dropout that changes mask per call, is off at inference, and saves as plain Dropout', () => {
    const model = buildModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 2, dropout: 0.5 });
    const x = tf.ones([1, 4, 4, 1]);
    const run = (training: boolean) => tf.tidy(() => Array.from((model.apply(x, { training }) as tf.Tensor).dataSync()));
    expect(run(false)).toEqual(run(false));
    const t1 = run(true), t2 = run(true);
    expect(t1).not.toEqual(t2);
    expect(t1).not.toEqual(run(false));
    // Same seed, fresh model: the same sequence of masks.
    const again = buildModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 2, dropout: 0.5 });
    const u1 = tf.tidy(() => Array.from((again.apply(x, { training: true }) as tf.Tensor).dataSync()));
    expect(u1).toEqual(t1);
    const topo = model.toJSON(undefined, false) as unknown as { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
    const drop = topo.config.layers.find((l) => l.class_name === 'Dropout')!;
    expect(drop.config.rate).toBe(0.5);
    expect(drop.config.seed).toBeUndefined();
    x.dispose(); model.dispose(); again.dispose();
  });

  it('rejects unknown architectures and inputs too small, naming them', () => {
    expect(() => buildModel('resnet')).toThrow(/Unknown architecture "resnet"/);
    expect(() => buildModel('cw-mnist', { inputShape: [12, 12, 1] })).toThrow(/too small for architecture "cw-mnist"/);
    expect(() => paramCount('cw-mnist', { inputShape: [12, 12, 1] })).toThrow(/too small/);
  });
});
