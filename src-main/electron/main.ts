/**
 * Electron's main process: one window with the security defaults (context isolation, sandbox, no
 * Node in the renderer, strict CSP, no navigation or new windows), the API wired over IPC with the
 * sender checked and every payload validated, and jobs in worker threads so this thread never blocks.
 */
import { app, BrowserWindow, ipcMain, Menu, shell, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CALL_CHANNEL, EVENT_CHANNEL } from '../api/methods';
import type { Envelope } from '../api/contract';
import type { ApiCore } from '../api/core';
import { createApp, resolveAppOptions } from '../host/app';

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

/** Only our own windows showing our own renderer may call the API. */
export function makeSenderCheck(windows: () => BrowserWindow[], rendererUrl: string) {
  return (event: Pick<IpcMainInvokeEvent, 'sender' | 'senderFrame'>): boolean => {
    const ours = windows().some((w) => w.webContents.id === event.sender.id);
    const url = event.senderFrame?.url ?? '';
    return ours && url.startsWith(rendererUrl);
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

export function hardenContents(contents: WebContents, rendererUrl: string): void {
  contents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (e, url) => {
    if (!url.startsWith(rendererUrl)) e.preventDefault();
  });
  contents.session.setPermissionRequestHandler((_wc, permission, cb) => cb(permission === 'media')); // microphone for recording
}

export async function start(argv = process.argv): Promise<void> {
  const options = resolveAppOptions(argv.slice(1));
  const { core, runner } = createApp({ ...options, transport: 'electron' });
  await app.whenReady();
  const rendererIndex = join(here, '../renderer/index.html');
  const rendererUrl = pathToFileURL(dirname(rendererIndex)).href;
  wireIpc(ipcMain, core, makeSenderCheck(() => BrowserWindow.getAllWindows(), rendererUrl));
  Menu.setApplicationMenu(Menu.buildFromTemplate([
    { role: 'fileMenu' }, { role: 'editMenu' }, { role: 'viewMenu' }, { role: 'windowMenu' },
  ]));
  const win = new BrowserWindow(windowOptions(join(here, '../preload/preload.cjs')));
  hardenContents(win.webContents, rendererUrl);
  core.on('event', (e) => { if (!win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, e); });
  win.once('ready-to-show', () => win.show());
  await win.loadFile(rendererIndex);
  app.on('window-all-closed', () => {
    void runner.shutdown().finally(() => app.quit());
  });
}

if (process.versions.electron && !process.env.VITEST) {
  start().catch((e) => {
    console.error(`AdvLab failed to start: ${(e as Error).message}`);
    app.exit(1);
  });
}
