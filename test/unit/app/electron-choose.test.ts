/**
 * files.choose in the desktop app (electron mocked): the open dialog on our window, per purpose, and
 * the path it returns is then allowed for jobs by that app's ApiCore, while a typed path outside the
 * data folders, store and uploads is still refused (api/path-guard.ts). A cancelled dialog allows nothing.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

const showOpenDialog = vi.fn();
vi.mock('electron', () => ({
  app: { whenReady: vi.fn(), on: vi.fn(), quit: vi.fn(), exit: vi.fn() },
  BrowserWindow: Object.assign(vi.fn(), { getAllWindows: vi.fn(() => [{ id: 1 }]), getFocusedWindow: vi.fn(() => null) }),
  dialog: { showOpenDialog: (...a: unknown[]) => showOpenDialog(...a) },
  ipcMain: { handle: vi.fn() },
  Menu: { setApplicationMenu: vi.fn(), buildFromTemplate: vi.fn() },
  shell: { openExternal: vi.fn() },
  session: { defaultSession: {} },
}));

import { chooseWithDialog, dialogOptions } from '../../../src-main/electron/main';
import { ApiCore } from '../../../src-main/api/core';
import { apiHandlers } from '../../../src-main/api/handlers';
import type { JobService } from '../../../src-main/api/job-service';
import { SessionStore } from '../../../src-main/engine/sessions';

const tmp = mkdtempSync(join(os.tmpdir(), 'advlab-choose-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function core(chooseFile?: typeof chooseWithDialog) {
  const jobs = Object.assign(new EventEmitter(), { start: () => ({ jobId: 'j', done: new Promise(() => undefined) }), cancel: () => false, list: () => [], wait: () => undefined, backend: () => Promise.reject(new Error('none')) }) as unknown as JobService;
  const store = new SessionStore(join(tmp, 'sessions'));
  const data = join(tmp, 'data');
  mkdirSync(data, { recursive: true });
  return new ApiCore({ jobs, dataDirs: [data], sessionsRoot: store.root, transport: chooseFile ? 'electron' : 'http', version: 'test', ...(chooseFile ? { chooseFile } : {}) }, () => apiHandlers({ store, dataDirs: [data] }));
}

describe('files.choose', () => {
  const downloads = join(tmp, 'Downloads', 'model');
  mkdirSync(downloads, { recursive: true });
  writeFileSync(join(downloads, 'model.json'), '{}');
  const model = join(downloads, 'model.json');
  const importIt = (c: ApiCore) => c.call('jobs.start', { kind: 'import-model', params: { path: model } });

  it('opens the dialog on our window, with a filter per purpose', async () => {
    showOpenDialog.mockResolvedValueOnce({ canceled: false, filePaths: [model] });
    expect(await chooseWithDialog('model')).toBe(model);
    expect(showOpenDialog).toHaveBeenLastCalledWith({ id: 1 }, dialogOptions('model'));
    expect(dialogOptions('model')).toMatchObject({ properties: ['openFile'], filters: [{ extensions: ['json'] }] });
    expect(dialogOptions('wav')).toMatchObject({ properties: ['openFile'], filters: [{ extensions: ['wav'] }] });
    expect(dialogOptions('dataset')).toMatchObject({ properties: ['openDirectory'] });
    showOpenDialog.mockResolvedValueOnce({ canceled: true, filePaths: [] });
    expect(await chooseWithDialog('wav')).toBeNull();
  });

  it('a path chosen in the dialog may be imported; typed, the same path is refused', async () => {
    const c = core(chooseWithDialog);
    expect(await importIt(c)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    showOpenDialog.mockResolvedValueOnce({ canceled: true, filePaths: [] });
    expect(await c.call('files.choose', { purpose: 'model' })).toEqual({ ok: true, result: { path: null } });
    expect(await importIt(c)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    showOpenDialog.mockResolvedValueOnce({ canceled: false, filePaths: [model] });
    expect(await c.call('files.choose', { purpose: 'model' })).toEqual({ ok: true, result: { path: model } });
    expect(await importIt(c)).toMatchObject({ ok: true });
  });

  it('the browser host has no dialog: UNSUPPORTED, saying where files may be put', async () => {
    const r = await core().call('files.choose', { purpose: 'wav' });
    expect(r).toMatchObject({ ok: false, error: { code: 'UNSUPPORTED', message: expect.stringMatching(/put the file in a data folder .* or upload it/) } });
  });
});
