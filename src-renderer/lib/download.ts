/**
 * Files in and out of the page: save generated text or bytes through a download (the browser, or
 * Electron's save dialog, asks where), and send an archive to sessions.import in parts small enough
 * for the browser host's 5 MB request limit.
 */
import type { ImportResult } from '../../src-main/engine/sessions';
import { ApiError, api } from './transport';

/** Offers `data` as a file download named `filename`. */
export function saveFile(filename: string, data: BlobPart, mime: string): void {
  const url = URL.createObjectURL(new Blob([data], { type: mime }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) bin += String.fromCharCode(...bytes.subarray(i, i + step));
  return btoa(bin);
}

/** Raw bytes per part: a multiple of 3, so that each part is valid base64 on its own (4 MB encoded). */
export const UPLOAD_PART_BYTES = 3 * 1024 * 1024;

/** Imports a session archive (.zip from "Export archive" or `advlab sessions export`). */
export async function importArchive(file: File, onProgress?: (fraction: number) => void): Promise<ImportResult> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const parts = Math.max(1, Math.ceil(bytes.length / UPLOAD_PART_BYTES));
  const id = (globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`).replace(/[^A-Za-z0-9_-]/g, '');
  for (let part = 0; part < parts; part++) {
    const data = bytesToBase64(bytes.subarray(part * UPLOAD_PART_BYTES, (part + 1) * UPLOAD_PART_BYTES));
    const r = await api.call('sessions.import', { data, filename: file.name, upload: { id, part, parts } });
    onProgress?.((part + 1) / parts);
    if (r.complete) return r;
  }
  throw new ApiError('INTERNAL', `${file.name}: the host did not import the archive after all ${parts} parts`);
}
