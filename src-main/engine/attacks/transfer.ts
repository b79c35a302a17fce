/**
 * Transfer attacks (Papernot et al. 2016; Carlini's "does it transfer?" check): craft adversarials on
 * classifier A (the source, whose gradients we use) and judge the same images on classifier B (the
 * target). Targets are resolved once, on A, so both judgements ask the same question.
 */
import { silentContext, type JobContext } from '../context';
import { badInput } from '../errors';
import type { Classifier } from '../models/classifier';
import { evaluateAdversarials, runAttack, toLabels, type ImageBatch, type Judged, type LabelArray } from './base';
import type { AnyAttack, AttackResult, Goal, RunOptions } from './types';

export interface TransferResult {
  /** The attack as run on the source classifier (success judged on the source). */
  source: AttackResult;
  /** The same adversarials judged on the target classifier: same perExample shape, success on B. */
  target: Judged;
  /** Fraction of examples successful on the source that are also successful on the target (among counted on both). */
  transferRate: number | null;
}

export async function transferAttack(
  attack: AnyAttack | string,
  source: Classifier,
  target: Classifier,
  x: ImageBatch,
  labels: LabelArray,
  goal: Goal = { kind: 'untargeted' },
  params: Record<string, unknown> = {},
  ctx: JobContext = silentContext,
  options: RunOptions = {},
): Promise<TransferResult> {
  const [a, b] = [source.inputShape, target.inputShape];
  if (a.join('x') !== b.join('x')) throw badInput(`Source and target classifiers take different inputs: [${a.join(', ')}] vs [${b.join(', ')}]`);
  if (source.numClasses !== target.numClasses) {
    throw badInput(`Source and target classifiers have different numbers of classes (${source.numClasses} vs ${target.numClasses})`);
  }
  const res = await runAttack(attack, source, x, labels, goal, params, ctx, options);
  const n = res.perExample.length;
  const clean = x instanceof Float32Array ? x : (x.dataSync() as Float32Array);
  const y = toLabels(labels, n, source.numClasses);
  const targets = res.goal.kind === 'targeted' ? Int32Array.from(res.perExample, (e) => e.target!) : null;
  const iterations = Int32Array.from(res.perExample, (e) => e.iterations);
  const t0 = performance.now();
  const judged = evaluateAdversarials(target, clean, res.adversarial, y, targets, iterations, 0, options.batchSize);
  judged.summary.ms = performance.now() - t0;
  judged.summary.msPerExample = judged.summary.ms / n;
  let both = 0, onSource = 0;
  for (let i = 0; i < n; i++) {
    const s = res.perExample[i], t = judged.perExample[i];
    if (s.counted && s.success && t.counted) {
      onSource++;
      if (t.success) both++;
    }
  }
  return { source: res, target: judged, transferRate: onSource ? both / onSource : null };
}
