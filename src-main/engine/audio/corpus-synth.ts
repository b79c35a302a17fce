/**
 * The speech synthesizers Debian packages, found at run time: espeak-ng (its English accents times
 * its voice variants; MBROLA voices are skipped, they need the mbrola program and data), flite (its
 * compiled-in voices, `flite -lv`, without the limited-domain *_time voices) and festival (the US
 * English voices it has installed: `voice.list`). Each is called as a child process that writes a
 * 16-bit WAV to a temporary file; nothing here depends on a synthesizer being present until it is
 * listed by `findSynthesizers`.
 *
 * The three programs are deterministic: the same text, voice and settings give the same samples,
 * which is what makes a seeded corpus reproducible byte for byte.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AdvlabError } from '../errors';
import { readWav } from './wav';

const run = promisify(execFile);

export type SynthName = 'espeak-ng' | 'flite' | 'festival';
export const SYNTH_NAMES: readonly SynthName[] = ['espeak-ng', 'flite', 'festival'];

/** One voice of one synthesizer; `id` is "synth:voice" (espeak-ng: "espeak-ng:en-us+m3"). */
export interface SynthVoice {
  id: string;
  synth: SynthName;
  voice: string;
  /** espeak-ng: the accent (language) and variant the voice combines. */
  accent?: string;
  variant?: string;
}

export interface Synthesizer {
  name: SynthName;
  version: string;
  voices: SynthVoice[];
}

/**
 * espeak-ng variants that sound like a person (its list also has robots, whispers and effects).
 * "default" is the accent's own voice.
 */
export const ESPEAK_VARIANTS = ['default', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'f1', 'f2', 'f3', 'f4', 'f5',
  'klatt', 'klatt2', 'klatt3', 'klatt4', 'grandma', 'grandpa', 'steph', 'linda', 'john', 'max', 'paul', 'robert', 'michael', 'edward', 'belinda', 'aunty'] as const;

/** festival voices taken as US English (Debian's festvox-kallpc*, festvox-kdlpc*, festvox-us-*). */
const FESTIVAL_US = /^(kal_|ked_|kdl_|cmu_us_)/;

async function output(cmd: string, args: string[], input?: string): Promise<string | undefined> {
  try {
    const p = run(cmd, args, { timeout: 30_000, maxBuffer: 4 << 20 });
    if (input !== undefined) p.child.stdin?.end(input);
    const { stdout, stderr } = await p;
    return `${stdout}${stderr}`;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (err.code === 'ENOENT') return undefined;
    // flite -lv and festival --version exit 0; anything else that printed is still useful.
    return err.stdout || err.stderr ? `${err.stdout ?? ''}${err.stderr ?? ''}` : undefined;
  }
}

async function findEspeak(): Promise<Synthesizer | undefined> {
  const version = await output('espeak-ng', ['--version']);
  if (version === undefined) return undefined;
  const accents = new Set<string>();
  for (const line of ((await output('espeak-ng', ['--voices=en'])) ?? '').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    // Pty Language Age/Gender VoiceName File ...: skip MBROLA voices (file mb/...).
    if (cols.length >= 5 && /^en(-|$)/.test(cols[1]) && !cols[4].startsWith('mb/')) accents.add(cols[1]);
  }
  const installed = new Set<string>(['default']);
  for (const line of ((await output('espeak-ng', ['--voices=variant'])) ?? '').split('\n').slice(1)) {
    const file = line.trim().split(/\s+/)[4];
    if (file?.startsWith('!v/')) installed.add(file.slice(3));
  }
  const variants = ESPEAK_VARIANTS.filter((v) => installed.has(v));
  const voices: SynthVoice[] = [];
  for (const accent of [...accents].sort()) {
    for (const variant of variants) {
      const voice = variant === 'default' ? accent : `${accent}+${variant}`;
      voices.push({ id: `espeak-ng:${voice}`, synth: 'espeak-ng', voice, accent, variant });
    }
  }
  return voices.length ? { name: 'espeak-ng', version: version.trim().split('\n')[0], voices } : undefined;
}

async function findFlite(): Promise<Synthesizer | undefined> {
  const list = await output('flite', ['-lv']);
  if (list === undefined) return undefined;
  const m = /Voices available:(.*)/.exec(list);
  const names = (m?.[1] ?? '').trim().split(/\s+/).filter((v) => v && !v.endsWith('_time')).sort();
  const version = ((await output('flite', ['--version'])) ?? '').split('\n').find((l) => l.includes('version')) ?? 'flite';
  return names.length ? { name: 'flite', version: version.trim(), voices: names.map((v) => ({ id: `flite:${v}`, synth: 'flite', voice: v })) } : undefined;
}

async function findFestival(): Promise<Synthesizer | undefined> {
  const list = await output('festival', ['-b', '(print (voice.list))']);
  if (list === undefined) return undefined;
  const m = /\(([^()]*)\)/.exec(list);
  const names = (m?.[1] ?? '').trim().split(/\s+/).filter((v) => FESTIVAL_US.test(v)).sort();
  if (!names.length) return undefined;
  // text2wave comes with festival; without it there is nothing to call.
  if ((await output('text2wave', ['-h'])) === undefined) return undefined;
  const version = ((await output('festival', ['--version'])) ?? 'festival').trim().split('\n')[0];
  return { name: 'festival', version, voices: names.map((v) => ({ id: `festival:${v}`, synth: 'festival', voice: v })) };
}

/** The synthesizers installed on this machine with their English voices (none missing is an error here). */
export async function findSynthesizers(): Promise<Synthesizer[]> {
  const found = await Promise.all([findEspeak(), findFlite(), findFestival()]);
  return found.filter((s): s is Synthesizer => s !== undefined);
}

/** Like findSynthesizers, but fails with a message saying what to install when there is none. */
export async function requireSynthesizers(): Promise<Synthesizer[]> {
  const s = await findSynthesizers();
  if (s.length === 0) {
    throw new AdvlabError('NOT_FOUND', 'No speech synthesizer found: install at least one of espeak-ng, flite or festival (with a US English voice), e.g. `apt-get install espeak-ng flite festival festvox-kallpc16k`');
  }
  return s;
}

/** What a clip is spoken with, besides the voice. */
export interface SynthSettings {
  /** espeak-ng words per minute. */
  wpm?: number;
  /** espeak-ng pitch 0-99. */
  pitch?: number;
  /** flite / festival duration stretch (> 1 is slower). */
  stretch?: number;
}

/** Speaks `text` with a voice; returns the samples and their rate. */
export async function synthesize(voice: SynthVoice, text: string, settings: SynthSettings): Promise<{ samples: Float32Array; sampleRate: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'advlab-tts-'));
  const wav = join(dir, 'out.wav');
  try {
    if (voice.synth === 'espeak-ng') {
      await run('espeak-ng', ['-v', voice.voice, '-s', String(settings.wpm ?? 160), '-p', String(settings.pitch ?? 50), '-w', wav, '--', text], { timeout: 60_000 });
    } else if (voice.synth === 'flite') {
      await run('flite', ['-voice', voice.voice, '--setf', `duration_stretch=${settings.stretch ?? 1}`, '-t', text, '-o', wav], { timeout: 60_000 });
    } else {
      const txt = join(dir, 'in.txt');
      await writeFile(txt, text);
      await run('text2wave', ['-eval', `(voice_${voice.voice})`, '-eval', `(Parameter.set 'Duration_Stretch ${settings.stretch ?? 1})`, '-o', wav, txt], { timeout: 60_000 });
    }
    const bytes = await readFile(wav);
    const w = readWav(bytes, `${voice.id} output`);
    return { samples: w.samples, sampleRate: w.sampleRate };
  } catch (e) {
    if (e instanceof AdvlabError) throw e;
    throw new AdvlabError('INTERNAL', `${voice.id} failed to speak "${text}": ${(e as Error).message.split('\n')[0]}`, { voice: voice.id });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
