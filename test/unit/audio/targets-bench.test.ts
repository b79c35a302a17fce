/**
 * Issue 18's targeted attack benchmark (engine/audio/bench.ts `targetsClips`, `audioTargetsBenchmark`;
 * `advlab bench --suite audio --part targets`) on the tiny speech model fixture and a small corpus
 * written here in the corpus format.
 */
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src-main/engine/backend';
import { LocalContext } from '../../../src-main/engine/context';
import { SpeechModel, readWavFile, write16 } from '../../../src-main/engine/audio';
import { ALPHABET_TARGETS, audioTargetsBenchmark, summarizeTargets, targetsClips, type TargetsClip } from '../../../src-main/engine/audio/bench';
import { ctcMinFrames } from '../../../src-main/engine/audio/ctc';
import { listFsdd, splitFsdd } from '../../../src-main/engine/audio/fsdd';
import { modelSha256 } from '../../../src-main/engine/models/io';
import { advlab, backwardProgress, DATA } from '../helpers';
import { tinySpeechModel } from './tiny-speech';

const FSDD = join(DATA, 'fsdd', 'recordings');
let model: SpeechModel;
let clips: Float32Array[];
let corpus: string;

/** A corpus folder in the corpus format: test clips of several synthesizers and lengths, one train clip. */
async function writeCorpus(dir: string): Promise<void> {
  mkdirSync(join(dir, 'clips'), { recursive: true });
  const george = await Promise.all(['0_george_1', '1_george_1', '2_george_1', '3_george_1', '4_george_1', '5_george_1'].map(async (f) => (await readWavFile(join(FSDD, `${f}.wav`))).samples));
  const cat = (parts: Float32Array[]) => {
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };
  const long = cat(george.slice(0, 5)), longer = cat(george), short = george[0];
  const spec: [string, 'train' | 'test', string, string, Float32Array][] = [
    ['c000001', 'train', 'espeak-ng', 'espeak-ng:en-us+m1', long],
    ['c000002', 'test', 'espeak-ng', 'espeak-ng:en-029+m1', short],
    ['c000003', 'test', 'festival', 'festival:ked_diphone', long],
    ['c000004', 'test', 'espeak-ng', 'espeak-ng:en-gb+m3', long],
    ['c000005', 'test', 'espeak-ng', 'espeak-ng:en-029+f2', longer],
    ['c000006', 'test', 'flite', 'flite:rms', longer],
  ];
  const manifestClips = spec.map(([id, split, source, voice, samples]) => {
    writeFileSync(join(dir, 'clips', `${id}.wav`), write16(samples, 8000));
    return { id, file: `clips/${id}.wav`, split, source, voice, transcript: 'zero one two three four', settings: {}, samples: samples.length, sha256: '' };
  });
  writeFileSync(join(dir, 'corpus.json'), JSON.stringify({ version: 1, seed: 1, hours: 0.01, sampleRate: 8000, text: {}, synthesizers: [], heldOutVoices: [], trainVoices: [], clips: manifestClips, fsdd: null, seconds: {} }));
}

beforeAll(async () => {
  await initBackend('wasm');
  ({ model, clips } = await tinySpeechModel());
  corpus = mkdtempSync(join(tmpdir(), 'advlab-targets-corpus-'));
  await writeCorpus(corpus);
});

afterAll(() => model?.dispose());

describe('the targeted attack benchmark (issue 18)', () => {
  it('has ten targets that together use every letter, "open the door" first', () => {
    expect(ALPHABET_TARGETS).toHaveLength(10);
    expect(ALPHABET_TARGETS[0]).toBe('open the door');
    expect(new Set(ALPHABET_TARGETS.join('').replace(/ /g, ''))).toEqual(new Set('abcdefghijklmnopqrstuvwxyz'));
  });

  it('chooses held-out-voice clips round robin over the synthesizers and real clips of the held-out speaker only', async () => {
    const targets = ['one', 'three'];
    const picked = await targetsClips({ model, targets, corpusDir: corpus, fsddDir: FSDD, synthesized: 3, real: 2, seconds: [1, 4] });
    // Train clips and clips shorter than 1 s are never taken; espeak-ng, flite, festival, then espeak-ng again.
    expect(picked.filter((c) => c.kind === 'synthesized').map((c) => c.id)).toEqual(['c000004', 'c000006', 'c000003']);
    const held = splitFsdd(await listFsdd(FSDD)).testUnseen[0].speaker;
    const real = picked.filter((c) => c.kind === 'real');
    expect(real).toHaveLength(2);
    for (const c of real) {
      expect(c.id).toMatch(new RegExp(`^fsdd-${held}-u\\d{4}$`));
      expect(c.source.split(' ').slice(1).every((f) => f.includes(`_${held}_`))).toBe(true);
      expect(c.transcript.split(' ').length).toBeGreaterThanOrEqual(4);
    }
    // Reproducible: the same clips, sample for sample.
    const again = await targetsClips({ model, targets, corpusDir: corpus, fsddDir: FSDD, synthesized: 3, real: 2, seconds: [1, 4] });
    expect(again.map((c) => c.id)).toEqual(picked.map((c) => c.id));
    expect(again.every((c, i) => c.samples.length === picked[i].samples.length && c.samples.every((v, j) => v === picked[i].samples[j]))).toBe(true);
    // Too few eligible clips: a clear refusal.
    await expect(targetsClips({ model, targets, corpusDir: corpus, fsddDir: FSDD, synthesized: 5, real: 0, seconds: [1, 4] })).rejects.toThrow(/has 4 held-out-voice clips of 1-4 s that every target fits; 5 needed/);
  });

  it('runs every clip x target through the attack, judging each on its 16-bit samples, with shards that add up to the whole run', async () => {
    const two: TargetsClip[] = clips.slice(0, 2).map((samples, i) => ({ id: `k${i}`, kind: i === 0 ? 'synthesized' : 'real', source: 'fixture', transcript: ['one', 'two'][i], samples, sampleRate: 8000 }));
    const targets = ['three', 'Two'];
    const before = tf.memory().numTensors;
    const ctx = new LocalContext();
    const r = await audioTargetsBenchmark({ model, clips: two, targets, iterations: 60, ctx });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.rows.map((x) => [x.index, x.clip, x.target])).toEqual([[0, 'k0', 'three'], [1, 'k0', 'two'], [2, 'k1', 'three'], [3, 'k1', 'two']]);
    for (const row of r.rows) {
      // exact is the transcript of the stored samples equalling the target.
      expect(row.exact).toBe(row.transcriptAfter === row.target);
      if (row.firstSuccessIteration !== null) expect(row.firstSuccessIteration).toBeLessThanOrEqual(row.successIteration!);
      expect(row.iterations).toBeLessThanOrEqual(60);
    }
    // "two" on the clip of "two": the clean clip already transcribes as the target.
    expect(r.rows[3].transcriptBefore).toBe('two');
    expect(r.rows[0]).toMatchObject({ exact: true, transcriptAfter: 'three' });
    expect(r.exact).toBe(r.rows.filter((x) => x.exact).length);
    expect(r.exactRate).toBeCloseTo(r.exact / 4, 10);
    const dbxs = r.rows.filter((x) => x.exact && x.dbx !== null).map((x) => x.dbx!);
    expect(r.meanDbx).toBeCloseTo(dbxs.reduce((a, b) => a + b, 0) / dbxs.length, 10);
    expect(r.byKind.synthesized.attacks + r.byKind.real.attacks).toBe(4);
    expect(backwardProgress(ctx.events)).toEqual([]);
    expect(ctx.events.at(-1)).toMatchObject({ step: 4, total: 4 });
    // Two shards run disjoint halves; merged, they are the whole run (same attacks, same results).
    const s0 = await audioTargetsBenchmark({ model, clips: two, targets, iterations: 60, shard: { index: 0, count: 2 } });
    const s1 = await audioTargetsBenchmark({ model, clips: two, targets, iterations: 60, shard: { index: 1, count: 2 } });
    expect(s0.rows.map((x) => x.index)).toEqual([0, 2]);
    expect(s1.rows.map((x) => x.index)).toEqual([1, 3]);
    const merged = summarizeTargets([...s1.rows, ...s0.rows], 60);
    expect(merged.rows.map((x) => [x.index, x.exact, x.transcriptAfter, x.dbx])).toEqual(r.rows.map((x) => [x.index, x.exact, x.transcriptAfter, x.dbx]));
    await expect(audioTargetsBenchmark({ model, clips: two, targets, shard: { index: 2, count: 2 } })).rejects.toThrow(/shard must be K\/N/);
    // Rows of a stopped run are not attacked again and count in the summary; a row of another attack is refused.
    const attacked: number[] = [];
    const resumed = await audioTargetsBenchmark({ model, clips: two, targets, iterations: 60, done: [r.rows[0], r.rows[2]], onAttack: (row) => void attacked.push(row.index) });
    expect(attacked).toEqual([1, 3]);
    expect(resumed.rows.map((x) => [x.index, x.exact, x.transcriptAfter, x.dbx])).toEqual(r.rows.map((x) => [x.index, x.exact, x.transcriptAfter, x.dbx]));
    await expect(audioTargetsBenchmark({ model, clips: two, targets, done: [{ ...r.rows[0], target: 'two' }] })).rejects.toThrow(/is not this run's attack 0 \(k0 -> "three"\)/);
  });

  it('refuses, before any attack, every (clip, target) pair whose target needs more CTC frames than the clip gives', async () => {
    const clip: TargetsClip = { id: 'short', kind: 'real', source: 'fixture', transcript: 'one', samples: clips[0], sampleRate: 8000 };
    const have = model.outputFrames(clips[0].length);
    const long = 'ab'.repeat(have); // 2 * have frames
    expect(ctcMinFrames(model.alphabet.encode(long))).toBeGreaterThan(have);
    const zz = 'z'.repeat(Math.ceil(have / 2) + 1); // repeats need a blank in between: 2k - 1 frames
    expect(zz.length).toBeLessThanOrEqual(have);
    const ctx = new LocalContext();
    const err = await audioTargetsBenchmark({ model, clips: [clip], targets: ['three', long, zz], iterations: 10, ctx }).then(() => null, (e: unknown) => e as Error & { code?: string });
    expect(err).toMatchObject({ code: 'BAD_INPUT' });
    expect(err!.message).toMatch(/2 target\(s\) do not fit their clip/);
    expect(err!.message).toContain(`"${zz}" on short (needs ${2 * zz.length - 1} frames`);
    expect(ctx.events).toEqual([]);
  });

  it('runs from the CLI on a saved model with a corpus, and splits over processes with the same rows', () => {
    const dir = mkdtempSync(join(tmpdir(), 'advlab-targets-cli-'));
    return (async () => {
      await model.save(join(dir, 'model'));
      const args = ['bench', '--suite', 'audio', '--part', 'targets', '--speech-model', join(dir, 'model', 'model.json'), '--corpus', corpus, '--clips', '2', '--targets', '1', '--iterations', '10', '--engine', 'tfjs', '--json'];
      const one = advlab([...args, '--file', join(dir, 'B1.md'), '--rows', join(dir, 'r1.jsonl')], { timeoutMs: 300_000 });
      expect(one.status, one.stderr).toBe(0);
      const detail = (one.json as unknown as { detail: { attacks: number; rows: { index: number; clip: string; target: string; dbx: number | null; transcriptAfter: string }[] } }).detail;
      expect(detail.attacks).toBe(2);
      expect(detail.rows.map((r) => r.target)).toEqual(['open the door', 'open the door']);
      const md = readFileSync(join(dir, 'B1.md'), 'utf8');
      expect(md).toMatch(/targeted attack 1\/2: .* -> "open the door" \| exact \/ transcript \/ dB_x \/ s \/ first success \/ quietest success \| (yes|no) \//);
      expect(md).toMatch(/exact transcripts of the 16-bit WAVs .* \| exact \| \d\/2 \(.*\) \| 100% \| (yes|no) \|/);
      expect(md).toMatch(/mean \/ median \/ worst dB_x \| .* \| mean <= -30 dB \|/);
      const two = advlab([...args, '--processes', '2', '--file', join(dir, 'B2.md'), '--rows', join(dir, 'r2.jsonl')], { timeoutMs: 300_000 });
      expect(two.status, two.stderr).toBe(0);
      const detail2 = (two.json as unknown as { detail: typeof detail }).detail;
      expect(detail2.rows.map((r) => [r.index, r.clip, r.transcriptAfter, r.dbx])).toEqual(detail.rows.map((r) => [r.index, r.clip, r.transcriptAfter, r.dbx]));

      // Every finished attack is in the rows file at once, with the model's sha256 and the settings' digest; the
      // two children wrote the same rows into one file.
      const sha = await modelSha256(join(dir, 'model', 'model.json'));
      // (A line cut short by a stopped run is skipped, as the benchmark does.)
      const lines = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split('\n').flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
      const r1 = lines('r1.jsonl');
      expect(r1.map((r) => r.index)).toEqual([0, 1]);
      for (const r of r1) expect(r).toMatchObject({ modelSha256: sha, settings: r1[0].settings, stopReason: 'budget', iterations: 10 });
      expect(lines('r2.jsonl').map((r) => r.index).sort()).toEqual([0, 1]);
      expect(md).toContain(`(sha256 ${sha.slice(0, 12)})`);
      // A stopped run: its file holds the first attack and a line cut short. The same command runs only the second
      // attack, appends it, and summarises both; rows of other settings in the file are left out.
      const first = readFileSync(join(dir, 'r1.jsonl'), 'utf8').split('\n')[0];
      const other = JSON.stringify({ ...r1[1], settings: 'other', transcriptAfter: 'not this run' });
      writeFileSync(join(dir, 'r3.jsonl'), `${first}\n${other}\n{"index": 1, "cl`);
      const resumed = advlab([...args, '--file', join(dir, 'B3.md'), '--rows', join(dir, 'r3.jsonl')], { timeoutMs: 300_000 });
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/1 of 2 attacks already there, not run again/);
      const detail3 = (resumed.json as unknown as { detail: typeof detail }).detail;
      expect(detail3.rows.map((r) => [r.index, r.clip, r.transcriptAfter, r.dbx])).toEqual(detail.rows.map((r) => [r.index, r.clip, r.transcriptAfter, r.dbx]));
      // The new row is a line of its own after the cut one, and readable.
      expect(lines('r3.jsonl').filter((r) => r.settings === r1[0].settings).map((r) => r.index)).toEqual([0, 1]);
      expect(readFileSync(join(dir, 'r3.jsonl'), 'utf8').split('\n')[2]).toBe('{"index": 1, "cl');
      // A run with other settings (more iterations) does not take these rows.
      const more = advlab([...args.map((a) => (a === '10' ? '20' : a)), '--patience', '1', '--file', join(dir, 'B4.md'), '--rows', join(dir, 'r3.jsonl')], { timeoutMs: 300_000 });
      expect(more.stderr).toMatch(/0 of 2 attacks already there/);
      // --patience reaches the attacks (a success followed by a check without one ends it: 'settled') and the rows say so.
      expect(readFileSync(join(dir, 'B4.md'), 'utf8')).toContain('patience 1 checks');
      const rows4 = lines('r3.jsonl').filter((r) => r.iterations !== 10);
      expect(rows4).toHaveLength(2);
      for (const r of rows4) expect(r.stopReason === 'settled' ? (r.iterations as number) < 20 : r.iterations === 20).toBe(true);
      const bad = advlab(['bench', '--suite', 'audio', '--part', 'targets', '--targets', '11', '--json']);
      expect(bad.json).toMatchObject({ error: { code: 'BAD_INPUT', message: expect.stringMatching(/--targets is at most 10/) } });
    })();
  }, 600_000);
});
