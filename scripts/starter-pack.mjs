#!/usr/bin/env node
/**
 * Builds resources/starter from the datasets and from sessions AdvLab trained (see
 * resources/starter/README.md for what is in it and the exact commands).
 *
 *   node scripts/starter-pack.mjs data --mnist DIR --fashion DIR --fsdd DIR/recordings
 *   node scripts/starter-pack.mjs model NAME SESSION_DIR --title TEXT --command "advlab ..." [--test-set TEXT]
 *
 * data: the first 1,000 images of each test set as standard IDX files (gzip), and 30 FSDD clips:
 * each of the 6 speakers says 5 different digits (recordings 0-4, FSDD's test convention), so every
 * digit appears 3 times; the held-out speaker of speech-base (yweweler, the last by name) is among them.
 * model: copies the session's model.json + weights.bin and writes starter.json and MODEL_CARD.md
 * from its manifest (architecture, data and split, accuracy, command, sha256 of the weights, date).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'resources', 'starter');
const N = 1000;
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

function firstIdx(file, n) {
  const raw = file.endsWith('.gz') ? gunzipSync(readFileSync(file)) : readFileSync(file);
  const dims = raw[3];
  const head = Buffer.from(raw.subarray(0, 4 + 4 * dims));
  const per = Array.from({ length: dims - 1 }, (_, i) => head.readUInt32BE(8 + 4 * i)).reduce((a, b) => a * b, 1);
  head.writeUInt32BE(n, 4);
  return gzipSync(Buffer.concat([head, raw.subarray(4 + 4 * dims, 4 + 4 * dims + n * per)]), { level: 9 });
}

function sample(src, name) {
  const out = join(ROOT, 'data', name);
  mkdirSync(out, { recursive: true });
  for (const f of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
    const file = readdirSync(src).find((x) => x === f || x === `${f}.gz`);
    const bytes = firstIdx(join(src, file), N);
    writeFileSync(join(out, `${f}.gz`), bytes);
    console.log(`${name}/${f}.gz ${bytes.length} bytes sha256 ${sha256(bytes)}`);
  }
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'data') {
  const { values } = parseArgs({ args: rest, options: { mnist: { type: 'string' }, fashion: { type: 'string' }, fsdd: { type: 'string' } } });
  sample(values.mnist, 'mnist');
  sample(values.fashion, 'fashion-mnist');
  const speakers = [...new Set(readdirSync(values.fsdd).filter((f) => f.endsWith('.wav')).map((f) => f.split('_')[1]))].sort();
  const out = join(ROOT, 'data', 'fsdd', 'recordings');
  mkdirSync(out, { recursive: true });
  speakers.forEach((s, k) => {
    for (let j = 0; j < 5; j++) {
      const name = `${(k * 5 + j) % 10}_${s}_${j}.wav`;
      copyFileSync(join(values.fsdd, name), join(out, name));
    }
  });
  console.log(`fsdd: ${speakers.length * 5} clips (${speakers.join(', ')})`);
} else if (cmd === 'model') {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { title: { type: 'string' }, command: { type: 'string' }, 'test-set': { type: 'string' }, notes: { type: 'string' }, accuracy: { type: 'string' } } });
  const [name, session] = positionals;
  const m = JSON.parse(readFileSync(join(session, 'manifest.json'), 'utf8'));
  // --accuracy: the clean accuracy from a summary field other than testAccuracy (a recipe's advClean).
  const s = values.accuracy ? { ...m.summary, testAccuracy: Number(m.summary[values.accuracy]) } : m.summary;
  const modelDir = dirname(join(session, 'artifacts', s.model));
  const out = join(ROOT, 'models', name);
  mkdirSync(out, { recursive: true });
  copyFileSync(join(modelDir, 'model.json'), join(out, 'model.json'));
  copyFileSync(join(modelDir, 'weights.bin'), join(out, 'weights.bin'));
  const weights = readFileSync(join(out, 'weights.bin'));
  const speech = m.kind === 'audio-train';
  const trained = (m.finished ?? m.updated).slice(0, 10);
  const meta = {
    title: values.title, arch: s.arch, dataset: speech ? (s.dataset ?? 'fsdd') : s.dataset, kind: speech ? 'speech' : 'image', trained,
    ...(typeof s.testAccuracy === 'number' ? { testAccuracy: s.testAccuracy } : {}),
  };
  writeFileSync(join(out, 'starter.json'), JSON.stringify(meta, null, 2) + '\n');
  const pct = (x) => (typeof x === 'number' ? `${(100 * x).toFixed(2)}%` : 'n/a');
  const data = (m.datasets ?? []).map((d) => `- ${d.split}: ${d.description ?? d.name}${d.sha256 ? ` (data sha256 ${d.sha256})` : ''}`).join('\n');
  const card = [
    `# starter:${name}: ${values.title}`,
    '',
    `- Architecture: ${s.arch}${s.parameters ? ` (${s.parameters} parameters)` : ''}`,
    `- Trained by AdvLab ${m.params?.quick ? '(quick) ' : ''}on ${trained}, session ${m.id} (${s.backend ?? 'wasm'} backend, ${Math.round(s.seconds)} s)`,
    `- Parameters: ${JSON.stringify(m.params)}`,
    '',
    '## Data and split',
    data || '- see the command',
    '',
    '## Clean accuracy',
    speech
      ? `- Held-out utterances of seen speakers: CER ${pct(s.cer)}, WER ${pct(s.wer)}; unseen speaker ${s.heldOutSpeaker}: CER ${pct(s.cerUnseen)}, WER ${pct(s.werUnseen)}${typeof s.cerVoices === 'number' ? `; held-out synthesized voices (${s.testVoiceClips} clips): CER ${pct(s.cerVoices)}, WER ${pct(s.werVoices)}` : ''}`
      : `- ${pct(s.testAccuracy)} on ${values['test-set'] ?? `${s.testImages} test images`}`,
    ...(values.notes ? ['', values.notes] : []),
    '',
    '## Reproduce',
    '```',
    values.command,
    '```',
    '',
    '## Weights',
    `- weights.bin: ${weights.length} bytes, float32, sha256 ${sha256(weights)}`,
    `- model.json sha256 ${sha256(readFileSync(join(out, 'model.json')))}`,
    '',
  ].join('\n');
  writeFileSync(join(out, 'MODEL_CARD.md'), card);
  console.log(card);
} else {
  console.error('usage: starter-pack.mjs data ... | model NAME SESSION_DIR ...');
  process.exit(2);
}
