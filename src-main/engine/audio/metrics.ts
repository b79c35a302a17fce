/**
 * Recognition error rates from the Levenshtein distance (unit cost for substitution, insertion,
 * deletion): CER over characters, WER over whitespace-separated words. Corpus rates add up the
 * edits and the reference lengths over all pairs (not a mean of per-utterance rates).
 */
import { badInput } from '../errors';

/** Minimum number of substitutions, insertions and deletions turning `a` into `b`. */
export function levenshtein<T>(a: readonly T[], b: readonly T[]): number {
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

export function words(text: string): string[] {
  return text.trim().split(/\s+/).filter((w) => w.length > 0);
}

export interface ErrorCount {
  edits: number;
  /** Reference length (characters or words). */
  length: number;
  /** edits / length. */
  rate: number;
}

function count(ref: string[], hyp: string[], unit: string): ErrorCount {
  if (ref.length === 0) throw badInput(`${unit} error rate: the reference is empty`);
  const edits = levenshtein(ref, hyp);
  return { edits, length: ref.length, rate: edits / ref.length };
}

/** Character error rate of one hypothesis (spaces count as characters). */
export function cer(reference: string, hypothesis: string): number {
  return count([...reference], [...hypothesis], 'character').rate;
}

/** Word error rate of one hypothesis. */
export function wer(reference: string, hypothesis: string): number {
  return count(words(reference), words(hypothesis), 'word').rate;
}

function corpus(refs: readonly string[], hyps: readonly string[], split: (s: string) => string[], unit: string): ErrorCount {
  if (refs.length !== hyps.length) throw badInput(`${unit} error rate: ${refs.length} references but ${hyps.length} hypotheses`);
  let edits = 0;
  let length = 0;
  refs.forEach((r, i) => {
    const rs = split(r);
    edits += levenshtein(rs, split(hyps[i]));
    length += rs.length;
  });
  if (length === 0) throw badInput(`${unit} error rate: the references are empty`);
  return { edits, length, rate: edits / length };
}

/** Corpus CER: total character edits / total reference characters. */
export function corpusCer(refs: readonly string[], hyps: readonly string[]): ErrorCount {
  return corpus(refs, hyps, (s) => [...s], 'character');
}

/** Corpus WER: total word edits / total reference words. */
export function corpusWer(refs: readonly string[], hyps: readonly string[]): ErrorCount {
  return corpus(refs, hyps, words, 'word');
}
