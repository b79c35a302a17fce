/**
 * Audio the user brings in: WAV uploads and microphone recordings (sent by the renderer as WAV), kept
 * in an `uploads/` folder next to the sessions root, and the FSDD recordings found in the data folders.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { badFile, badInput } from '../engine/errors';
import { listFsdd } from '../engine/audio/fsdd';
import { readWav } from '../engine/audio/wav';
import { writeFileAtomic } from '../engine/core/fs-atomic';
import type { SessionStore } from '../engine/sessions';
import { MAX_UPLOAD_BYTES, type AudioClipsResult, type AudioUploadResult } from './schemas';

/** `<parent of the sessions root>/uploads`. */
export function uploadsDir(sessionsRoot: string): string {
  return path.join(path.dirname(path.resolve(sessionsRoot)), 'uploads');
}

/** The last path segment of a user-given file name, reduced to letters, digits, ".", "_" and "-", ending in .wav. */
export function safeUploadName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  let clean = base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 100);
  if (!clean) clean = 'clip';
  return /\.wav$/i.test(clean) ? clean : `${clean}.wav`;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes the base64 of an upload; a clear error for anything that is not base64. */
export function decodeUpload(name: string, base64: string): Buffer {
  const text = base64.replace(/\s+/g, '');
  if (!BASE64.test(text) || text.length % 4 === 1) throw badInput(`${name}: the upload is not base64 data`);
  return Buffer.from(text, 'base64');
}

/**
 * Checks that the bytes are a WAV the engine reads (readWav: PCM 8-32 bit or float, any rate and
 * channel count, not empty) and saves them under `dir`. Errors name the file and the problem; nothing
 * is saved for a file that is refused.
 */
export async function saveUpload(dir: string, name: string, bytes: Uint8Array, now: Date = new Date()): Promise<AudioUploadResult> {
  const shown = name.split(/[\\/]/).pop() || name;
  if (bytes.byteLength === 0) throw badFile(shown, 'the file is empty (0 bytes)');
  if (bytes.byteLength > MAX_UPLOAD_BYTES) {
    throw badFile(shown, `${(bytes.byteLength / 1e6).toFixed(1)} MB is larger than the ${MAX_UPLOAD_BYTES / 1e6} MB accepted: trim or downsample it first`);
  }
  const wav = readWav(bytes, shown);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const file = path.join(dir, `${stamp}-${randomBytes(2).toString('hex')}-${safeUploadName(name)}`);
  await fsp.mkdir(dir, { recursive: true });
  await writeFileAtomic(file, bytes);
  return {
    path: file,
    name: shown,
    sampleRate: wav.sampleRate,
    channels: wav.channels,
    bitsPerSample: wav.bitsPerSample,
    encoding: wav.encoding,
    duration: wav.duration,
  };
}

/** Saved uploads, newest first (an absent folder is an empty list). */
export async function listUploads(dir: string): Promise<AudioClipsResult['uploads']> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: AudioClipsResult['uploads'] = [];
  for (const n of names) {
    if (!/\.wav$/i.test(n) || n.startsWith('.')) continue;
    const st = await fsp.stat(path.join(dir, n)).catch(() => null);
    if (!st?.isFile()) continue;
    out.push({ name: n, path: path.join(dir, n), bytes: st.size, modified: new Date(st.mtimeMs).toISOString() });
  }
  return out.sort((a, b) => (a.modified < b.modified ? 1 : a.modified > b.modified ? -1 : 0));
}

/**
 * The held-out utterances a speech model's training session saved as WAVs (examples.json rows with a
 * `wav` artifact): natural clips to attack. Missing or unreadable lists are empty.
 */
export async function listModelExamples(store: SessionStore, model: string): Promise<NonNullable<AudioClipsResult['examples']>> {
  let rows: unknown;
  try {
    rows = JSON.parse((await store.readArtifact(model, 'examples.json')).toString('utf8'));
  } catch {
    return [];
  }
  if (!Array.isArray(rows)) return [];
  const out: NonNullable<AudioClipsResult['examples']> = [];
  for (const r of rows as Record<string, unknown>[]) {
    if (typeof r?.wav !== 'string') continue;
    try {
      const file = await store.artifactFile(model, r.wav);
      out.push({ name: `${r.split ?? ''} ${r.id ?? path.basename(r.wav)}`.trim(), path: file, transcript: String(r.transcript ?? ''), split: String(r.split ?? '') });
    } catch {
      // listed but not on disk: skip
    }
  }
  return out;
}

/** FSDD recordings of the first data folder that has fsdd/recordings, and the uploads. */
export async function listClips(dataDirs: readonly string[], uploads: string): Promise<AudioClipsResult> {
  const dirs = dataDirs.map((d) => path.join(d, 'fsdd', 'recordings'));
  const found = dirs.find((d) => existsSync(d));
  let fsdd: AudioClipsResult['fsdd'] = null;
  let fsddProblem: string | undefined;
  if (found) {
    try {
      fsdd = { dir: found, clips: (await listFsdd(found)).map((c) => ({ file: c.file, path: c.path, digit: c.digit, speaker: c.speaker, index: c.index })) };
    } catch (e) {
      fsddProblem = (e as Error).message;
    }
  } else {
    fsddProblem = dirs.length ? `no fsdd/recordings folder in ${dataDirs.join(', ')}` : 'no data folders';
  }
  return { fsdd, ...(fsddProblem ? { fsddProblem } : {}), uploads: await listUploads(uploads) };
}
