import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { CancelledError } from '../../../src-main/engine/errors';
import {
  buildModel, crossEntropyLoss, distillationLoss, evaluate, predictLogits, softLabels, trainClassifier, type TrainResult,
} from '../../../src-main/engine/models';
import { quadrantSet } from './synthetic';

beforeAll(async () => {
  await initBackend('wasm');
});

const small = (seed = 1) => buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 4, seed });
const train = quadrantSet(400, 1);
const test = quadrantSet(200, 2);

describe('trainClassifier', () => {
  it('learns a separable task: accuracy rises well above chance; progress, history and throughput reported', async () => {
    const model = small();
    const before = await evaluate(model, test, 64);
    const ctx = new LocalContext();
    const r = await trainClassifier(model, train, { optimizer: 'adam', learningRate: 0.01, batchSize: 40, epochs: 2, seed: 3, validationSplit: 0.25, progressIntervalMs: 0 }, {}, ctx);
    const after = await evaluate(model, test, { confusion: true });
    expect(before.accuracy).toBeLessThan(0.5);
    expect(after.accuracy).toBeGreaterThan(0.9);
    expect(r).not.toHaveProperty('cancelled'); // one cancellation rule: a cancel throws, results carry no flag
    expect(r.epochsRun).toBe(2);
    expect(r.stepsRun).toBe(2 * Math.ceil(300 / 40));
    expect(r.history.batches).toHaveLength(r.stepsRun);
    expect(r.history.epochs.map((e) => e.images)).toEqual([300, 300]);
    expect(r.history.epochs[1].val_acc).toBeGreaterThan(0.9);
    expect(r.history.epochs[1].val_loss).toBeLessThan(r.history.epochs[0].val_loss!);
    expect(r.imagesPerSecond).toBeGreaterThan(0);
    const last = ctx.events[ctx.events.length - 1];
    expect(last).toMatchObject({ step: r.stepsRun, total: r.stepsRun, phase: 'epoch 2/2' });
    expect(Object.keys(last.metrics!).sort()).toEqual(['acc', 'loss', 'val_acc', 'val_loss']);
    expect(ctx.events.some((e) => e.phase === 'epoch 1/2')).toBe(true);
    // Confusion matrix agrees with accuracy.
    const cm = after.confusion!;
    expect(cm.flat().reduce((a, b) => a + b, 0)).toBe(200);
    expect(cm.reduce((a, row, i) => a + row[i], 0) / 200).toBeCloseTo(after.accuracy, 10);
    model.dispose();
  });

  it('is deterministic for a seed', async () => {
    const run = async () => {
      const m = small(7);
      const r = await trainClassifier(m, train, { batchSize: 50, epochs: 1, seed: 5, limitBatches: 3 });
      const w = m.getWeights().map((t) => Array.from(t.dataSync()));
      m.dispose();
      return { losses: r.history.batches.map((b) => b.loss), w };
    };
    const a = await run(), b = await run();
    expect(a.losses).toEqual(b.losses);
    expect(a.w).toEqual(b.w);
  });

  it('keeps numTensors flat across epochs and frees everything it created', async () => {
    const model = small();
    const start = tf.memory().numTensors;
    const counts: number[] = [];
    await trainClassifier(model, train, { batchSize: 50, epochs: 3, limitBatches: 2, validationSplit: 0.1, earlyStop: { patience: 5, restoreBest: true } },
      { onEpoch: () => { counts.push(tf.memory().numTensors); } });
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  it('throws CancelledError on cancellation, carrying the partial history and the model trained so far', async () => {
    const model = small();
    const w0 = Array.from(model.getWeights()[0].dataSync());
    const ctx = new LocalContext();
    const start = tf.memory().numTensors;
    const err = await trainClassifier(model, train, { batchSize: 20, epochs: 5 }, {
      onBatch: (row) => { if (row.step === 3) ctx.cancel(); },
    }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    const r = (err as CancelledError).partial as TrainResult;
    expect(r.stepsRun).toBe(3);
    expect(r.epochsRun).toBe(0);
    expect(r.history.batches).toHaveLength(3);
    expect(r.model).toBe(model);
    expect(Array.from(model.getWeights()[0].dataSync())).not.toEqual(w0);
    expect(tf.memory().numTensors).toBe(start);
    expect(ctx.logs.join('\n')).toMatch(/cancelled after 3 step/);
    model.dispose();
  });

  it('stops early when the monitored metric stops improving, and restores the best weights', async () => {
    const model = small();
    const weightsAt: number[][][] = [];
    // minDelta is so large that nothing after epoch 1 counts as an improvement, while the weights keep moving.
    const r = await trainClassifier(model, train, {
      learningRate: 0.01, batchSize: 50, epochs: 10, limitBatches: 2, validationSplit: 0.25,
      earlyStop: { patience: 2, minDelta: 100, monitor: 'val_loss', restoreBest: true },
    }, { onEpoch: () => { weightsAt.push(model.getWeights().map((t) => Array.from(t.dataSync()))); } });
    expect(r.stoppedEarly).toBe(true);
    expect(r.epochsRun).toBe(3);
    expect(r.history.epochs).toHaveLength(3);
    expect(r.restoredEpoch).toBe(1);
    const final = model.getWeights().map((t) => Array.from(t.dataSync()));
    expect(final).toEqual(weightsAt[0]);
    expect(final).not.toEqual(weightsAt[2]);
    model.dispose();
    await expect(trainClassifier(small(), train, { earlyStop: { patience: 1 } })).rejects.toThrow(/validationSplit or validationSet/);
  });

  it('calls transformBatch (sync or async) and the custom loss, and uses what they return', async () => {
    const model = small();
    let transforms = 0, losses = 0;
    const shares: number[] = [];
    const r = await trainClassifier(model, train, { batchSize: 50, epochs: 1, limitBatches: 4, learningRate: 0.01 }, {
      // Async transform that blanks the images: nothing can be learned from them.
      transformBatch: async (x, y, batch) => {
        transforms++;
        expect(batch.step).toBe(transforms);
        expect(x.shape).toEqual([50, 8, 8, 1]);
        await new Promise((res) => setTimeout(res, 1));
        return { x: tf.zerosLike(x), y: y.clone() };
      },
      loss: (logits, y) => { losses++; return tf.add(crossEntropyLoss(logits, y), 100) as tf.Scalar; },
      onBatch: (_row, batch) => {
        const counts = [0, 0, 0, 0];
        batch.labels.forEach((l) => counts[l]++);
        shares.push(Math.max(...counts) / batch.labels.length);
      },
    });
    expect(transforms).toBe(4);
    expect(losses).toBe(4);
    expect(r.history.batches.every((b) => b.loss > 100)).toBe(true);
    // Blank inputs give one prediction for every image: accuracy is at most the largest class share.
    expect(r.history.batches.map((b, i) => b.acc <= shares[i] + 1e-9)).toEqual([true, true, true, true]);
    model.dispose();
  });

  it('holds out a deterministic, disjoint validation split and shuffles the training order by seed', async () => {
    const seen = async (seed: number) => {
      const model = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 4, seed: 1 });
      const trainIdx: number[][] = [], valIdx: number[] = [];
      await trainClassifier(model, train, { batchSize: 100, epochs: 1, validationSplit: 0.25, seed }, {
        loss: (logits, y, batch) => {
          if (batch.phase === 'train') trainIdx.push(Array.from(batch.indices)); else valIdx.push(...batch.indices);
          return crossEntropyLoss(logits, y);
        },
      });
      model.dispose();
      return { train: trainIdx, val: valIdx };
    };
    const a = await seen(1), b = await seen(1), c = await seen(2);
    expect(a).toEqual(b);
    expect(a.val).toHaveLength(100);
    expect(a.train.flat()).toHaveLength(300);
    expect(new Set([...a.val, ...a.train.flat()]).size).toBe(400);
    expect(c.val).not.toEqual(a.val);
    expect(a.train[0]).not.toEqual([...a.train[0]].sort((x, y) => x - y)); // shuffled
  });

  it('uses the forward hook in training and validation', async () => {
    const model = buildModel('mlp', { inputShape: [8, 8, 2], numClasses: 4, seed: 1 });
    let calls = { train: 0, val: 0 };
    // Two channels: the image and its complement (an encoding the model sees but the dataset does not have).
    const forward = (x: tf.Tensor4D, training: boolean) => {
      calls = training ? { ...calls, train: calls.train + 1 } : { ...calls, val: calls.val + 1 };
      return model.apply(tf.concat([x, tf.sub(1, x)], 3), { training }) as tf.Tensor2D;
    };
    const r = await trainClassifier(model, train, { batchSize: 100, epochs: 2, learningRate: 0.01, validationSplit: 0.25 }, { forward });
    expect(calls.train).toBe(6);
    expect(calls.val).toBe(2);
    expect(r.history.epochs[1].val_acc).toBeGreaterThan(0.5);
    model.dispose();
  });

  it('rejects bad options and mismatched data clearly', async () => {
    const model = small();
    await expect(trainClassifier(model, train, { batchsize: 10 } as never)).rejects.toThrow(/Unknown training option\(s\): batchsize/);
    await expect(trainClassifier(model, train, { optimizer: 'rmsprop' as never })).rejects.toThrow(/Unknown optimizer/);
    await expect(trainClassifier(model, quadrantSet(8, 1, 12))).rejects.toThrow(/expects inputs of shape \[8, 8, 1\] but dataset "quadrants" has images of shape \[12, 12, 1\]/);
    await expect(trainClassifier(model, { ...train, classNames: ['a', 'b'] })).rejects.toThrow(/outputs 4 logits but Training set "quadrants" has 2 classes/);
    await expect(trainClassifier(model, train, { targets: new Float32Array(3) })).rejects.toThrow(/targets has 3 values/);
    model.dispose();
  });
});

describe('evaluation and distillation', () => {
  it('predictLogits matches model.predict, batched', async () => {
    const model = small(2);
    const logits = await predictLogits(model, test, 64);
    const direct = tf.tidy(() => (model.predict(tf.tensor4d(test.images, [200, 8, 8, 1])) as tf.Tensor).dataSync());
    expect(logits.length).toBe(800);
    for (let i = 0; i < logits.length; i++) expect(logits[i]).toBeCloseTo(direct[i], 4);
    model.dispose();
  });

  it('softLabels are distributions that flatten with temperature; distillationLoss(1) is cross-entropy', async () => {
    const model = small(4);
    await trainClassifier(model, train, { batchSize: 50, epochs: 1, learningRate: 0.01 });
    const t1 = await softLabels(model, test, 1);
    const t20 = await softLabels(model, test, 20);
    const rowSum = (a: Float32Array, i: number) => a[4 * i] + a[4 * i + 1] + a[4 * i + 2] + a[4 * i + 3];
    const maxOf = (a: Float32Array) => Array.from({ length: 200 }, (_, i) => Math.max(...a.subarray(4 * i, 4 * i + 4))).reduce((x, y) => x + y) / 200;
    for (let i = 0; i < 200; i++) { expect(rowSum(t1, i)).toBeCloseTo(1, 5); expect(rowSum(t20, i)).toBeCloseTo(1, 5); }
    expect(maxOf(t20)).toBeLessThan(maxOf(t1));
    expect(maxOf(t20)).toBeGreaterThan(0.25);

    const [a, b, c] = tf.tidy(() => {
      const logits = tf.tensor2d([[2, -1, 0.5, 0], [0, 3, 1, -2]]);
      const y = tf.tensor2d([[1, 0, 0, 0], [0.1, 0.7, 0.1, 0.1]]);
      const info = { phase: 'train' as const, epoch: 1, step: 1, index: 0, indices: new Int32Array(2), labels: new Int32Array(2) };
      return [distillationLoss(1)(logits, y, info).dataSync()[0], crossEntropyLoss(logits, y).dataSync()[0],
        distillationLoss(10)(logits, y, info).dataSync()[0]];
    }) as unknown as number[];
    expect(a).toBeCloseTo(b, 6);
    // At T=10, softmax(logits/10) is near uniform: the loss approaches the cross-entropy with a uniform guess.
    expect(c).toBeGreaterThan(1.2);
    model.dispose();
  });

  it('trains a distilled student on a teacher\'s soft labels at temperature T', async () => {
    const T = 20;
    const teacher = small(8);
    await trainClassifier(teacher, train, { batchSize: 50, epochs: 2, learningRate: 0.01 }, { loss: distillationLoss(T) });
    const targets = await softLabels(teacher, train, T);
    const student = small(9);
    const r = await trainClassifier(student, train, { batchSize: 50, epochs: 2, learningRate: 0.01, targets }, { loss: distillationLoss(T) });
    expect(r.options.softTargets).toBe(true);
    const acc = (await evaluate(student, test)).accuracy;
    expect(acc).toBeGreaterThan(0.9);
    // Trained at T, the student's logits at T=1 are large: near-saturated softmax (why distillation masks gradients).
    const p = await softLabels(student, test, 1);
    const meanMax = Array.from({ length: 200 }, (_, i) => Math.max(...p.subarray(4 * i, 4 * i + 4))).reduce((x, y) => x + y) / 200;
    expect(meanMax).toBeGreaterThan(0.95);
    teacher.dispose(); student.dispose();
  });
});
