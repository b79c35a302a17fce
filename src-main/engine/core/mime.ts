/**
 * The one table of media types by file extension: the browser host serves the renderer and session
 * files with it, sessions.artifact labels the bytes it sends, and HTML reports embed images and audio
 * as data: URLs with it. Text types carry their charset.
 */
export const MIME_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8', json: 'application/json', jsonl: 'application/x-ndjson', wasm: 'application/wasm',
  csv: 'text/csv; charset=utf-8', txt: 'text/plain; charset=utf-8', md: 'text/markdown; charset=utf-8',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp',
  svg: 'image/svg+xml', ico: 'image/x-icon',
  wav: 'audio/wav', mp3: 'audio/mpeg', ogg: 'audio/ogg', flac: 'audio/flac', opus: 'audio/ogg',
  bin: 'application/octet-stream',
};

export const DEFAULT_MIME = 'application/octet-stream';

/** The media type of a file by its extension (case-insensitive; POSIX or Windows separators). */
export function mimeOf(path: string): string {
  const base = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? DEFAULT_MIME : MIME_TYPES[base.slice(dot + 1).toLowerCase()] ?? DEFAULT_MIME;
}
