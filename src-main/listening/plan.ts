/**
 * The trial plan of a blind listening test, a pure function of its seed.
 *
 * Every pair (an original clip and its adversarial version) appears `repeats` times; the order of
 * all trials is a seeded Fisher-Yates shuffle. Within a trial every choice is an independent fair
 * coin flip:
 *   - A/B: which of the two clips is played (the listener answers "original" or "adversarial");
 *   - ABX: which clip is A (B is the other one) and whether X is A or B (the listener answers A or B).
 * With fair, independent flips a listener who cannot hear the difference is right with probability
 * exactly 1/2 on every trial, whatever their strategy, so the number correct is Binomial(n, 1/2)
 * under the null hypothesis and the exact binomial test applies.
 */
import { badInput } from '../engine/errors';
import { mulberry32 } from '../engine/audio/fsdd';
import type { ListeningMode } from './schemas';

export type Identity = 'original' | 'adversarial';

export interface PlannedTrial {
  trial: number;
  /** Index of the pair (source session) in the test. */
  pair: number;
  /** A/B: the clip played. ABX: the clip played as X. */
  x: Identity;
  /** ABX only: the clips played as A and B (always one of each). */
  a?: Identity;
  b?: Identity;
  /** The correct answer: 'original' | 'adversarial' (A/B) or 'A' | 'B' (ABX). */
  correct: string;
}

export interface PlanOptions {
  pairs: number;
  repeats: number;
  mode: ListeningMode;
  seed: number;
}

const other = (i: Identity): Identity => (i === 'original' ? 'adversarial' : 'original');

export function planTrials({ pairs, repeats, mode, seed }: PlanOptions): PlannedTrial[] {
  if (!Number.isInteger(pairs) || pairs < 1) throw badInput(`planTrials: pairs must be a positive integer, got ${pairs}`);
  if (!Number.isInteger(repeats) || repeats < 1) throw badInput(`planTrials: repeats must be a positive integer, got ${repeats}`);
  if (mode !== 'ab' && mode !== 'abx') throw badInput(`planTrials: mode must be "ab" or "abx", got ${JSON.stringify(mode)}`);
  const rng = mulberry32(seed);
  const order: number[] = [];
  for (let r = 0; r < repeats; r++) for (let p = 0; p < pairs; p++) order.push(p);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const coin = (): Identity => (rng() < 0.5 ? 'original' : 'adversarial');
  return order.map((pair, trial) => {
    if (mode === 'ab') {
      const x = coin();
      return { trial, pair, x, correct: x };
    }
    const a = coin();
    const b = other(a);
    const xIsA = rng() < 0.5;
    return { trial, pair, a, b, x: xIsA ? a : b, correct: xIsA ? 'A' : 'B' };
  });
}

/** Whether an answer is right for a planned trial. */
export function isCorrect(t: PlannedTrial, answer: string): boolean {
  return answer === t.correct;
}

/** The answers a mode accepts. */
export function answersFor(mode: ListeningMode): readonly string[] {
  return mode === 'ab' ? ['original', 'adversarial'] : ['A', 'B'];
}
