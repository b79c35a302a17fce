/**
 * Quick settings: a short run of an attack whose paper defaults take long, for a first look from the Attack
 * view. The engine's defaults stay the paper's; a quick setting is written here only (the view's Quick button
 * puts it over the attack's defaults, and a unit test checks it against the attack's schema).
 */
export interface AttackPreset {
  /** What the button says. */
  label: string;
  /** Parameters set over the attack's defaults. */
  params: Readonly<Record<string, number | boolean | string>>;
  /** Why these values, shown beside the button. */
  why: string;
}

export const QUICK_PRESETS: Readonly<Record<string, AttackPreset>> = {
  // Measured on starter:cw-mnist, first 50 MNIST test images, untargeted (BENCHMARKS.md, "Short C&W runs"): at
  // the paper's Adam step 0.01, 2 x 50 found 2 of 50 at every first c from 0.1 to 100 and 4 x 100 found 14 at
  // every first c from 0.01 to 100; at step 0.1, 4 x 100 found all 50 (mean L2 1.573 from c 0.01, 1.508 from c 1).
  'cw-l2': {
    label: 'Quick: 4 × 100 steps, Adam step 0.1, first c 1',
    params: { binarySearchSteps: 4, maxIterations: 100, learningRate: 0.1, initialConst: 1 },
    why:
      'A short run at the paper\'s Adam step (0.01) finds almost nothing, whatever the first c: C&W optimises in tanh space, where a pixel at 0 or 1 sits far out on the flat tail and moves too little in a few hundred steps. ' +
      'A 10x step reaches the boundary; starting c at 1 spends the 4 rounds narrowing c instead of raising it. L2 comes out a little above the paper\'s 9 × 1000.',
  },
};
