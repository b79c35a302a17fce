/** Relative paths inside a session folder, checked so that nothing can point outside it. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { badInput } from '../errors';
import type { ArtifactKind } from './schema';

/**
 * Normalises a relative path given by a caller or found in an archive: '/' separated, no empty, '.'
 * or '..' segments, not absolute, no drive letter, no backslash, no NUL. Throws BAD_INPUT otherwise.
 */
export function safeRelativePath(rel: string, what = 'path'): string {
  if (typeof rel !== 'string' || rel.length === 0) throw badInput(`Empty ${what}`);
  if (rel.length > 1000) throw badInput(`${what} too long (${rel.length} characters)`);
  if (rel.includes('\0')) throw badInput(`${what} ${JSON.stringify(rel)} contains a NUL character`);
  if (rel.includes('\\')) throw badInput(`${what} ${JSON.stringify(rel)} contains a backslash; use "/"`);
  if (rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) throw badInput(`${what} ${JSON.stringify(rel)} must be relative`);
  const parts = rel.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') throw badInput(`${what} ${JSON.stringify(rel)} has an empty, "." or ".." segment`);
  }
  return parts.join('/');
}

/** The artifact kind implied by a file name (model/ holds a tfjs model: model.json + weight shards). */
export function inferArtifactKind(rel: string): ArtifactKind {
  const lower = rel.toLowerCase();
  if (lower.startsWith('model/') || lower.includes('/model/')) return 'model';
  const ext = lower.slice(lower.lastIndexOf('.') + 1);
  if (['png', 'jpg', 'jpeg', 'gif', 'webp', 'svg', 'bmp'].includes(ext)) return 'image';
  if (['wav', 'mp3', 'flac', 'ogg', 'opus'].includes(ext)) return 'audio';
  if (['csv', 'tsv'].includes(ext)) return 'table';
  if (['json', 'jsonl'].includes(ext)) return 'json';
  return 'other';
}

/**
 * The first component of `rel` (a checked relative path, '/' separated) under `base` that is a
 * symbolic link, or null when there is none (or the path does not exist). Symlinks inside a session
 * folder are never followed: a session from elsewhere (an imported archive, a copied folder) could
 * otherwise point a served artifact at any file the user can read.
 */
export async function firstSymlink(base: string, rel: string): Promise<string | null> {
  let at = base;
  for (const part of rel.split('/')) {
    at = path.join(at, part);
    try {
      if ((await fsp.lstat(at)).isSymbolicLink()) return path.relative(base, at).split(path.sep).join('/');
    } catch {
      return null;
    }
  }
  return null;
}
