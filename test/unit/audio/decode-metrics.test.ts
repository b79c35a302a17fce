import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import {
  Alphabet, DEFAULT_ALPHABET, beamSearchDecode, binomialTest, cer, collapse, corpusCer, corpusWer, dB, dbx, decodeBatch,
  greedyDecode, labelsToText, levenshtein, matchLoudness, mulberry32, rms, rmsDbfs, textToLabels, wer,
} from '../../../src-main/engine/audio';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Log-probability scores for a frame-level path (one class per frame at probability `p`). */
function pathScores(path: number[], C: number, p = 0.9): number[][] {
  return path.map((k) => Array.from({ length: C }, (_, c) => Math.log(c === k ? p : (1 - p) / (C - 1))));
}

describe('alphabet', () => {
  it('is space, apostrophe, a-z plus a final blank (29 classes)', () => {
    expect(DEFAULT_ALPHABET.size).toBe(29);
    expect(DEFAULT_ALPHABET.blank).toBe(28);
    expect(textToLabels("it's a z")).toEqual([10, 21, 1, 20, 0, 2, 0, 27]);
    expect(labelsToText(textToLabels("don't stop"))).toBe("don't stop");
    expect(textToLabels('OK Go')).toEqual(textToLabels('ok go'));
  });

  it('rejects characters outside the alphabet, naming them', () => {
    expect(() => textToLabels('call 911')).toThrow(/character "9" at position 5 is not in the alphabet/);
    expect(() => textToLabels('hi!')).toThrow(/"!" at position 2/);
    expect(() => labelsToText([3, 28])).toThrow(/Label 28 at position 1 is the blank/);
    expect(() => labelsToText([29])).toThrow(/not a class/);
    expect(() => new Alphabet(['a', 'a'])).toThrow(/duplicate/);
    const digits = new Alphabet([...'0123456789']);
    expect(digits.encode('42')).toEqual([4, 2]);
    expect(digits.blank).toBe(10);
  });
});

describe('CTC decoding', () => {
  it('greedy: collapses repeats and drops blanks', () => {
    const B = 3;
    // a a _ b b _ b _ _  ->  a b b
    expect(greedyDecode(pathScores([0, 0, B, 1, 1, B, 1, B, B], 4))).toEqual([0, 1, 1]);
    expect(collapse([B, B, B], B)).toEqual([]);
    expect(greedyDecode([])).toEqual([]);
    expect(greedyDecode(pathScores([0, 1, 0], 2), { blank: 0 })).toEqual([1]);
  });

  it('prefix beam search finds the most probable labelling where greedy does not', () => {
    // Two frames, classes (a, blank): p(a) = 0.4 per frame. Greedy: blank blank -> "" (0.36);
    // but p("a") = 1 - 0.36 = 0.64.
    const frames = [[Math.log(0.4), Math.log(0.6)], [Math.log(0.4), Math.log(0.6)]];
    expect(greedyDecode(frames)).toEqual([]);
    const [best, second] = beamSearchDecode(frames, { beamWidth: 4, topN: 2 });
    expect(best.labels).toEqual([0]);
    expect(best.logProb).toBeCloseTo(Math.log(0.64), 10);
    expect(second.labels).toEqual([]);
    expect(second.logProb).toBeCloseTo(Math.log(0.36), 10);
  });

  it('a beam wide enough to keep every prefix is exact (vs brute force over all paths)', () => {
    const r = mulberry32(17);
    for (let trial = 0; trial < 5; trial++) {
      const T = 4, C = 3;
      const logits = Array.from({ length: T }, () => Array.from({ length: C }, () => 4 * (r() - 0.5)));
      const logp = logits.map((row) => {
        const z = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
        return row.map((v) => v - z);
      });
      const probs = new Map<string, number>();
      for (let code = 0; code < C ** T; code++) {
        const path: number[] = [];
        let c = code, lp = 0;
        for (let t = 0; t < T; t++, c = Math.floor(c / C)) {
          path.push(c % C);
          lp += logp[t][c % C];
        }
        const key = collapse(path, C - 1).join(',');
        probs.set(key, (probs.get(key) ?? 0) + Math.exp(lp));
      }
      const ranked = [...probs.entries()].sort((a, b) => b[1] - a[1]);
      const hyps = beamSearchDecode(logits, { beamWidth: 1000, topN: 3 });
      hyps.forEach((h, i) => {
        expect(h.labels.join(',')).toBe(ranked[i][0]);
        expect(h.logProb).toBeCloseTo(Math.log(ranked[i][1]), 8);
      });
    }
  });

  it('decodeBatch turns [B, T, 29] logits into text, greedy or beam, honouring input lengths', async () => {
    const toPath = (text: string) => textToLabels(text).flatMap((k) => [k, k, 28]);
    const a = toPath('hi yo'), b = toPath('ok');
    const T = a.length;
    const rows = [pathScores(a, 29, 0.8), [...pathScores(b, 29, 0.8), ...pathScores(new Array(T - b.length).fill(2), 29, 0.8)]];
    const logits = tf.tensor3d(rows);
    // Without lengths the padding frames (all 'a') are decoded too: repeats collapse to one 'a'.
    expect(await decodeBatch(logits)).toEqual(['hi yo', 'oka']);
    expect(await decodeBatch(logits, { inputLengths: [T, b.length] })).toEqual(['hi yo', 'ok']);
    expect(await decodeBatch(logits, { method: 'beam', beamWidth: 8, inputLengths: [T, b.length] })).toEqual(['hi yo', 'ok']);
    logits.dispose();
  });
});

describe('error rates', () => {
  it('Levenshtein, CER and WER', () => {
    expect(levenshtein([...'kitten'], [...'sitting'])).toBe(3);
    expect(levenshtein([], [1, 2])).toBe(2);
    expect(levenshtein([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(cer('seven two', 'seven tw')).toBeCloseTo(1 / 9, 12);
    expect(cer('abc', 'xbcd')).toBeCloseTo(2 / 3, 12);
    expect(wer('seven two nine', 'seven too nine')).toBeCloseTo(1 / 3, 12);
    expect(wer('seven two nine', '  seven   two nine ')).toBe(0);
    expect(wer('one', 'one two three')).toBe(2);
    expect(() => wer('', 'x')).toThrow(/reference is empty/);
    const c = corpusWer(['one two', 'three four five six'], ['one', 'three four five six']);
    expect(c).toEqual({ edits: 1, length: 6, rate: 1 / 6 });
    expect(corpusCer(['ab', 'cd'], ['ab', 'ce']).rate).toBe(0.25);
    expect(() => corpusCer(['a'], [])).toThrow(/1 references but 0 hypotheses/);
  });
});

describe('loudness, dB_x and listening-test statistics', () => {
  const sine = (n: number, amp: number) => Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * i) / 50));

  it('dB and dB_x as in Carlini & Wagner', () => {
    expect(dB([0.5, -1, 0.25])).toBeCloseTo(0, 12);
    expect(dB([0.1, -0.01])).toBeCloseTo(-20, 10);
    expect(dB([0, 0])).toBe(-Infinity);
    const x = sine(1000, 0.5);
    expect(dbx(x.map((v) => v * 0.01), x)).toBeCloseTo(-40, 5);
    const peak = Math.max(...x.map(Math.abs)); // 0.5 sin(2 pi 12/50): the crest falls between samples
    expect(dbx(new Float32Array(1000).fill(0.005), x)).toBeCloseTo(20 * Math.log10(0.005 / peak), 5);
    expect(() => dbx(x, new Float32Array(1000))).toThrow(/silent/);
    expect(() => dbx(x, new Float32Array(10))).toThrow(/1000 samples/);
  });

  it('RMS loudness and loudness-matched playback', () => {
    expect(rms(sine(1000, 0.5))).toBeCloseTo(0.5 / Math.SQRT2, 6);
    expect(rmsDbfs(sine(1000, 1))).toBeCloseTo(-3.0103, 3);
    const quiet = sine(1000, 0.01), loud = sine(1000, 0.8);
    const m = matchLoudness([quiet, loud], -20);
    expect(m.targetDbfs).toBe(-20);
    m.clips.forEach((c) => expect(rmsDbfs(c)).toBeCloseTo(-20, 4));
    expect(m.gainsDb[0] - m.gainsDb[1]).toBeCloseTo(20 * Math.log10(80), 4);
    // A click (high crest factor) would clip at -6 dBFS: the common level is lowered for both.
    const click = new Float32Array(1000);
    click[10] = 0.5;
    const lim = matchLoudness([click, loud], -6, 0.99);
    expect(lim.targetDbfs).toBeLessThan(-6);
    lim.clips.forEach((c) => {
      expect(rmsDbfs(c)).toBeCloseTo(lim.targetDbfs, 4);
      expect(Math.max(...c.map(Math.abs))).toBeLessThanOrEqual(0.99 + 1e-6);
    });
    expect(() => matchLoudness([new Float32Array(5)])).toThrow(/silent/);
  });

  it('one-sided binomial test p-values are exact', () => {
    expect(binomialTest(9, 10)).toBeCloseTo(11 / 1024, 12);
    expect(binomialTest(10, 10)).toBeCloseTo(1 / 1024, 12);
    expect(binomialTest(0, 10)).toBe(1);
    expect(binomialTest(5, 10)).toBeCloseTo(638 / 1024, 12);
    expect(binomialTest(15, 20)).toBeCloseTo(0.020694732666015625, 12);
    expect(binomialTest(550, 1000)).toBeCloseTo(0.0008652680424881588, 9);
    expect(binomialTest(15, 30, 0.3)).toBeCloseTo(0.016937311492549546, 9);
    expect(() => binomialTest(11, 10)).toThrow(/successes/);
  });
});
