/**
 * Electron's main process: one window with the security defaults (context isolation, sandbox, no
 * Node in the renderer, strict CSP sent as a response header, no navigation, redirects, new windows
 * or webviews, no permission but the microphone for our own page), the API wired over IPC with the
 * sender checked and every payload validated, and jobs in worker threads so this thread never blocks.
 * Electron's fuses (no RunAsNode, cookie encryption, ASAR integrity) are flipped at packaging time by
 * scripts/fuses.mjs (see README).
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, session, type IpcMainInvokeEvent, type OpenDialogOptions, type Session, type WebContents } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CALL_CHANNEL, EVENT_CHANNEL } from '../api/methods';
import type { Envelope, FilePurpose } from '../api/contract';
import type { ApiCore } from '../api/core';
import { createApp, resolveAppOptions } from '../host/app';
import { SHUTDOWN_GRACE_MS } from '../jobs/runner';
import type { JobRunner } from '../jobs/runner';

const here = dirname(fileURLToPath(import.meta.url));

export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function windowOptions(preloadPath: string): Electron.BrowserWindowConstructorOptions {
  return {
    width: 1400,
    height: 900,
    title: 'AdvLab',
    show: false,
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  };
}

/**
 * Whether `url` is the renderer's page itself: the same URL exactly, only a #fragment may differ (it
 * names a place in the same document). Not a prefix: `index.html.evil`, a sibling file, a query or
 * another folder under the renderer's are all refused.
 */
export function isRendererUrl(url: string | undefined, rendererUrl: string): boolean {
  if (!url) return false;
  const page = (u: string): string | null => {
    try {
      const parsed = new URL(u);
      parsed.hash = '';
      return parsed.href;
    } catch {
      return null;
    }
  };
  const a = page(url);
  return a !== null && a === page(rendererUrl);
}

/** Only our own windows showing our own renderer page, in their top frame, may call the API. */
export function makeSenderCheck(windows: () => BrowserWindow[], rendererUrl: string) {
  return (event: Pick<IpcMainInvokeEvent, 'sender' | 'senderFrame'>): boolean => {
    const ours = windows().some((w) => w.webContents.id === event.sender.id);
    const frame = event.senderFrame;
    return ours && !!frame && !frame.parent && isRendererUrl(frame.url, rendererUrl);
  };
}

export function wireIpc(ipc: Pick<typeof ipcMain, 'handle'>, core: Pick<ApiCore, 'call'>, trusted: (e: IpcMainInvokeEvent) => boolean): void {
  ipc.handle(CALL_CHANNEL, async (event, method: unknown, params: unknown) => {
    if (!trusted(event)) {
      const refused: Envelope<never> = { ok: false, error: { code: 'FORBIDDEN', message: 'API calls are accepted only from AdvLab windows', details: {} } };
      return refused;
    }
    return core.call(method, params); // validates method and params
  });
}

/**
 * Every web contents the app creates (our window and anything else): no new windows (the renderer has
 * no external links, so shell.openExternal is never called: the allowlist is empty), no <webview>,
 * no navigation or redirect away from the renderer page, no navigation in subframes (the app has none).
 */
export function hardenContents(contents: WebContents, rendererUrl: string): void {
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  contents.on('will-attach-webview', (e) => e.preventDefault());
  contents.on('will-navigate', (e) => {
    if (!isRendererUrl(e.url, rendererUrl)) e.preventDefault();
  });
  contents.on('will-frame-navigate', (e) => {
    if (!e.isMainFrame || !isRendererUrl(e.url, rendererUrl)) e.preventDefault();
  });
  contents.on('will-redirect', (e) => {
    if (!isRendererUrl(e.url, rendererUrl)) e.preventDefault();
  });
}

/** Replaces any Content-Security-Policy a response carries with ours. */
export function withCsp(headers: Record<string, string[]> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (k.toLowerCase() !== 'content-security-policy') out[k] = v;
  out['Content-Security-Policy'] = [CSP];
  return out;
}

type MediaTypes = ReadonlyArray<'audio' | 'video'> | undefined;
/** The one permission the app needs: the microphone (audio only, no camera) for the Audio view's recorder. */
function microphoneOnly(permission: string, mediaTypes: MediaTypes): boolean {
  return permission === 'media' && !!mediaTypes && mediaTypes.length > 0 && mediaTypes.every((t) => t === 'audio');
}

/**
 * The session's side: the CSP as a response header on every response (the <meta> tag in index.html
 * stays, for file:// responses where the header may not apply), and permissions denied but the
 * microphone, asked by our renderer page in its top frame. Device (HID, serial, USB) access is denied.
 */
export function hardenSession(ses: Pick<Session, 'webRequest' | 'setPermissionRequestHandler' | 'setPermissionCheckHandler' | 'setDevicePermissionHandler'>, rendererUrl: string): void {
  ses.webRequest.onHeadersReceived((details, cb) => cb({ responseHeaders: withCsp(details.responseHeaders) }));
  ses.setPermissionRequestHandler((_wc, permission, cb, details) => {
    const mediaTypes = 'mediaTypes' in details ? details.mediaTypes : undefined;
    cb(details.isMainFrame && isRendererUrl(details.requestingUrl, rendererUrl) && microphoneOnly(permission, mediaTypes));
  });
  ses.setPermissionCheckHandler((wc, permission, _origin, details) => {
    const url = details.requestingUrl ?? wc?.getURL();
    return details.isMainFrame && isRendererUrl(url, rendererUrl) && microphoneOnly(permission, details.mediaType === 'audio' ? ['audio'] : []);
  });
  ses.setDevicePermissionHandler(() => false);
}

/** Installs the hardening: on every web contents as it is created, and on the default session. */
export function installSecurity(appLike: Pick<typeof app, 'on'>, ses: Parameters<typeof hardenSession>[0], rendererUrl: string): void {
  appLike.on('web-contents-created', (_e, contents) => hardenContents(contents, rendererUrl));
  hardenSession(ses, rendererUrl);
}

/** The open dialog of files.choose for each purpose: a model.json, a WAV, a dataset folder. */
export function dialogOptions(purpose: FilePurpose): OpenDialogOptions {
  switch (purpose) {
    case 'model':
      return { title: 'Choose a tfjs model.json', properties: ['openFile'], filters: [{ name: 'tfjs model', extensions: ['json'] }] };
    case 'wav':
      return { title: 'Choose a WAV file', properties: ['openFile'], filters: [{ name: 'WAV audio', extensions: ['wav'] }] };
    case 'dataset':
      return { title: 'Choose a dataset folder', properties: ['openDirectory'] };
  }
}

/**
 * files.choose in the desktop app: the open dialog on our window; the path returned is then allowed
 * for jobs (ApiCore remembers it: api/path-guard.ts), the way a typed path outside the data folders is not.
 */
export async function chooseWithDialog(purpose: FilePurpose): Promise<string | null> {
  const win = BrowserWindow.getFocusedWindow() ?? BrowserWindow.getAllWindows()[0];
  const r = win ? await dialog.showOpenDialog(win, dialogOptions(purpose)) : await dialog.showOpenDialog(dialogOptions(purpose));
  return r.canceled || !r.filePaths[0] ? null : r.filePaths[0];
}

export async function start(argv = process.argv): Promise<void> {
  const options = resolveAppOptions(argv.slice(1));
  const { core, runner } = createApp({ ...options, transport: 'electron', chooseFile: chooseWithDialog });
  void runner.warmPool(); // in the background: the first job finds the pool's threads warm
  await app.whenReady();
  const rendererIndex = join(here, '../renderer/index.html');
  const rendererUrl = pathToFileURL(rendererIndex).href;
  installSecurity(app, session.defaultSession, rendererUrl); // before the window exists, so it is covered
  wireIpc(ipcMain, core, makeSenderCheck(() => BrowserWindow.getAllWindows(), rendererUrl));
  Menu.setApplicationMenu(Menu.buildFromTemplate([
    { role: 'fileMenu' }, { role: 'editMenu' }, { role: 'viewMenu' }, { role: 'windowMenu' },
  ]));
  const win = new BrowserWindow(windowOptions(join(here, '../preload/preload.cjs')));
  core.on('event', (e) => { if (!win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, e); });
  win.once('ready-to-show', () => win.show());
  await win.loadURL(rendererUrl); // the very URL the checks compare against (loadFile builds its own)
  app.on('window-all-closed', quitAfterJobs(runner, () => app.quit()));
}

/**
 * Closing the last window ends the app as SIGTERM ends `advlab serve`: running jobs are cancelled and
 * get SHUTDOWN_GRACE_MS to save what they have (their sessions end cancelled, not left running).
 */
export function quitAfterJobs(runner: Pick<JobRunner, 'shutdown'>, quit: () => void): () => Promise<void> {
  return () => runner.shutdown(SHUTDOWN_GRACE_MS).finally(quit);
}

if (process.versions.electron && !process.env.VITEST) {
  start().catch((e) => {
    console.error(`AdvLab failed to start: ${(e as Error).message}`);
    app.exit(1);
  });
}
