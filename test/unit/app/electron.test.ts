/**
 * Electron-only code, tested with `electron` mocked: the window's security options, the preload's
 * exposed API and the IPC wiring (sender check, payload validation through the core).
 */
import { describe, expect, it, vi, beforeEach } from 'vitest';

const exposed: Record<string, unknown> = {};
const handlers = new Map<string, (...a: unknown[]) => unknown>();
vi.mock('electron', () => ({
  app: { whenReady: vi.fn(), on: vi.fn(), quit: vi.fn(), exit: vi.fn() },
  BrowserWindow: Object.assign(vi.fn(), { getAllWindows: vi.fn(() => []) }),
  ipcMain: { handle: vi.fn((ch: string, fn: (...a: unknown[]) => unknown) => handlers.set(ch, fn)) },
  ipcRenderer: { invoke: vi.fn(async (...a: unknown[]) => ({ ok: true, result: a })), on: vi.fn(), removeListener: vi.fn() },
  contextBridge: { exposeInMainWorld: vi.fn((k: string, v: unknown) => (exposed[k] = v)) },
  Menu: { setApplicationMenu: vi.fn(), buildFromTemplate: vi.fn() },
  shell: { openExternal: vi.fn() },
  session: { defaultSession: {} },
}));

import { ipcMain, ipcRenderer } from 'electron';
import { CSP, makeSenderCheck, windowOptions, wireIpc } from '../../../src-main/electron/main';
import { CALL_CHANNEL, EVENT_CHANNEL, METHOD_NAMES } from '../../../src-main/api/methods';
import { methodSchemas } from '../../../src-main/api/contract';

describe('main window', () => {
  it('uses the security defaults: isolation, sandbox, no Node, preload only', () => {
    const o = windowOptions('/app/out/preload/preload.cjs');
    expect(o.webPreferences).toMatchObject({
      preload: '/app/out/preload/preload.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
    });
  });

  it('has a strict CSP (no inline or remote scripts; wasm allowed)', () => {
    expect(CSP).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(CSP).toContain("object-src 'none'");
    expect(CSP).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(CSP).not.toContain('http:');
  });
});

describe('IPC wiring', () => {
  beforeEach(() => handlers.clear());

  it('forwards calls from our window to the core and refuses other senders', async () => {
    const core = { call: vi.fn(async (m: unknown, p: unknown) => ({ ok: true as const, result: { m, p } })) };
    const windows = [{ webContents: { id: 7 } }] as never;
    wireIpc(ipcMain, core, makeSenderCheck(() => windows, 'file:///app/out/renderer/index.html')); // the page itself, matched exactly
    const handler = handlers.get(CALL_CHANNEL)!;
    expect(handler).toBeTypeOf('function');
    const ok = await handler({ sender: { id: 7 }, senderFrame: { url: 'file:///app/out/renderer/index.html' } }, 'sessions.list', {});
    expect(ok).toEqual({ ok: true, result: { m: 'sessions.list', p: {} } });
    const foreign = await handler({ sender: { id: 8 }, senderFrame: { url: 'file:///app/out/renderer/index.html' } }, 'sessions.list', {});
    expect(foreign).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const navigated = await handler({ sender: { id: 7 }, senderFrame: { url: 'https://evil.example/' } }, 'sessions.list', {});
    expect(navigated).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    // A prefix is not enough: another file under the renderer's folder, or a name that merely starts alike.
    for (const url of ['file:///app/out/renderer/evil.html', 'file:///app/out/renderer/index.html.evil', 'file:///app/out/renderer-evil/index.html', 'file:///app/out/renderer/index.html?x=1']) {
      const near = await handler({ sender: { id: 7 }, senderFrame: { url } }, 'sessions.list', {});
      expect(near, url).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
    const subframe = await handler({ sender: { id: 7 }, senderFrame: { url: 'file:///app/out/renderer/index.html', parent: { url: 'file:///app/out/renderer/index.html' } } }, 'sessions.list', {});
    expect(subframe).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const gone = await handler({ sender: { id: 7 }, senderFrame: null }, 'sessions.list', {});
    expect(gone).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(core.call).toHaveBeenCalledTimes(1);
  });
});

describe('preload', () => {
  it('exposes exactly the API methods and an event subscription, nothing generic', async () => {
    await import('../../../src-main/electron/preload');
    const bridge = exposed.advlab as { methods: readonly string[]; call: (m: string, p?: unknown) => Promise<unknown>; onEvent: (l: (e: unknown) => void) => () => void; transport: string };
    expect(Object.keys(bridge).sort()).toEqual(['call', 'methods', 'onEvent', 'transport']);
    expect(Object.isFrozen(bridge)).toBe(true);
    expect([...bridge.methods].sort()).toEqual(Object.keys(methodSchemas).sort());
    expect([...METHOD_NAMES].sort()).toEqual(Object.keys(methodSchemas).sort());
    await bridge.call('sessions.list', { filter: {} });
    expect(ipcRenderer.invoke).toHaveBeenCalledWith(CALL_CHANNEL, 'sessions.list', { filter: {} });
    await expect(bridge.call('fs.readFile', {})).rejects.toThrow(/Unknown API method/);
    const seen: unknown[] = [];
    const off = bridge.onEvent((e) => seen.push(e));
    const [channel, wrapped] = vi.mocked(ipcRenderer.on).mock.calls[0] as [string, (e: unknown, p: unknown) => void];
    expect(channel).toBe(EVENT_CHANNEL);
    wrapped({ sender: 'the ipc event' }, { type: 'sessions.changed' });
    expect(seen).toEqual([{ type: 'sessions.changed' }]); // the IPC event object is stripped
    off();
    expect(ipcRenderer.removeListener).toHaveBeenCalledWith(EVENT_CHANNEL, wrapped);
  });
});

describe('closing the last window', () => {
  it('cancels running jobs with the same grace period as SIGTERM to serve, then quits', async () => {
    const { quitAfterJobs } = await import('../../../src-main/electron/main');
    const { SHUTDOWN_GRACE_MS } = await import('../../../src-main/jobs/runner');
    const order: string[] = [];
    const shutdown = vi.fn(async (grace?: number) => { order.push(`shutdown ${grace}`); });
    await quitAfterJobs({ shutdown }, () => order.push('quit'))();
    expect(order).toEqual([`shutdown ${SHUTDOWN_GRACE_MS}`, 'quit']);
    // A shutdown that fails still quits.
    order.length = 0;
    await quitAfterJobs({ shutdown: async () => { order.push('failed shutdown'); throw new Error('x'); } }, () => order.push('quit'))().catch(() => {});
    expect(order).toEqual(['failed shutdown', 'quit']);
  });
});
