/**
 * Electron's hardening with `electron` mocked (its binary is not installed here): the CSP response
 * header, exact renderer-URL matches for navigation and redirects, no new windows / webviews / external
 * opens, and permissions denied but the microphone for our own page. Each handler is driven directly.
 */
import { describe, expect, it, vi } from 'vitest';

vi.mock('electron', () => ({
  app: { whenReady: vi.fn(), on: vi.fn(), quit: vi.fn(), exit: vi.fn() },
  BrowserWindow: Object.assign(vi.fn(), { getAllWindows: vi.fn(() => []) }),
  ipcMain: { handle: vi.fn() },
  Menu: { setApplicationMenu: vi.fn(), buildFromTemplate: vi.fn() },
  shell: { openExternal: vi.fn() },
  session: { defaultSession: {} },
}));

import { shell } from 'electron';
import { CSP, hardenContents, hardenSession, installSecurity, isRendererUrl, withCsp } from '../../../src-main/electron/main';

const PAGE = 'file:///opt/AdvLab/out/renderer/index.html';
const OUTSIDE = [
  'https://evil.example/',
  'http://127.0.0.1:8080/',
  'file:///opt/AdvLab/out/renderer/evil.html',
  'file:///opt/AdvLab/out/renderer/index.html.evil',
  'file:///opt/AdvLab/out/renderer/sub/index.html',
  'file:///opt/AdvLab/out/renderer-evil/index.html',
  'file:///opt/AdvLab/out/renderer/index.html?token=1',
  'file:///etc/passwd',
  'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'not a url',
  '',
];

/** A stand-in for WebContents that records what the hardening registers. */
function fakeContents() {
  const listeners = new Map<string, (...a: unknown[]) => void>();
  let openHandler: ((d: { url: string }) => { action: string }) | undefined;
  const contents = {
    on: vi.fn((name: string, fn: (...a: unknown[]) => void) => { listeners.set(name, fn); return contents; }),
    setWindowOpenHandler: vi.fn((fn: typeof openHandler) => { openHandler = fn; }),
  };
  /** Emits `name` with an Electron-style event; answers whether the handler prevented it. */
  const emit = (name: string, fields: Record<string, unknown> = {}): boolean => {
    const fn = listeners.get(name);
    if (!fn) throw new Error(`no ${name} handler`);
    const e = { ...fields, preventDefault: vi.fn() };
    fn(e, fields.url);
    return e.preventDefault.mock.calls.length > 0;
  };
  return { contents, emit, open: (url: string) => openHandler!({ url }) };
}

function fakeSession() {
  const s = {
    headers: undefined as undefined | ((d: { responseHeaders?: Record<string, string[]> }, cb: (r: unknown) => void) => void),
    request: undefined as undefined | ((wc: unknown, p: string, cb: (ok: boolean) => void, d: Record<string, unknown>) => void),
    check: undefined as undefined | ((wc: unknown, p: string, origin: string, d: Record<string, unknown>) => boolean),
    device: undefined as undefined | ((d: unknown) => boolean),
  };
  const ses = {
    webRequest: { onHeadersReceived: vi.fn((fn: typeof s.headers) => { s.headers = fn; }) },
    setPermissionRequestHandler: vi.fn((fn: typeof s.request) => { s.request = fn; }),
    setPermissionCheckHandler: vi.fn((fn: typeof s.check) => { s.check = fn; }),
    setDevicePermissionHandler: vi.fn((fn: typeof s.device) => { s.device = fn; }),
  };
  const ask = (permission: string, details: Record<string, unknown>): boolean => {
    let answer: boolean | undefined;
    s.request!({}, permission, (ok) => (answer = ok), details);
    if (answer === undefined) throw new Error('the request handler never answered');
    return answer;
  };
  return { ses, s, ask };
}

describe('renderer URL match', () => {
  it('is exact: only the page itself (a #fragment aside), never a prefix, sibling, query or other scheme', () => {
    expect(isRendererUrl(PAGE, PAGE)).toBe(true);
    expect(isRendererUrl(`${PAGE}#audio`, PAGE)).toBe(true);
    for (const url of OUTSIDE) expect(isRendererUrl(url, PAGE), url).toBe(false);
    expect(isRendererUrl(undefined, PAGE)).toBe(false);
  });
});

describe('web contents', () => {
  it('denies every new window and never opens anything externally (the allowlist is empty)', () => {
    const { contents, open } = fakeContents();
    hardenContents(contents as never, PAGE);
    for (const url of ['https://github.com/', 'https://www.electronjs.org/docs', PAGE, 'file:///etc/passwd', 'mailto:a@b.c']) {
      expect(open(url), url).toEqual({ action: 'deny' });
    }
    expect(shell.openExternal).not.toHaveBeenCalled();
  });

  it('refuses <webview> attachment', () => {
    const { contents, emit } = fakeContents();
    hardenContents(contents as never, PAGE);
    expect(emit('will-attach-webview', {})).toBe(true);
  });

  it('lets the main frame navigate only to the renderer page itself', () => {
    const { contents, emit } = fakeContents();
    hardenContents(contents as never, PAGE);
    expect(emit('will-navigate', { url: PAGE, isMainFrame: true })).toBe(false);
    expect(emit('will-navigate', { url: `${PAGE}#x`, isMainFrame: true })).toBe(false);
    for (const url of OUTSIDE) expect(emit('will-navigate', { url, isMainFrame: true }), url).toBe(true);
    expect(emit('will-frame-navigate', { url: PAGE, isMainFrame: true })).toBe(false);
    for (const url of OUTSIDE) expect(emit('will-frame-navigate', { url, isMainFrame: true }), url).toBe(true);
  });

  it('refuses every subframe navigation (the app has no frames)', () => {
    const { contents, emit } = fakeContents();
    hardenContents(contents as never, PAGE);
    expect(emit('will-frame-navigate', { url: PAGE, isMainFrame: false })).toBe(true);
    expect(emit('will-frame-navigate', { url: 'https://evil.example/', isMainFrame: false })).toBe(true);
  });

  it('refuses redirects anywhere but the renderer page', () => {
    const { contents, emit } = fakeContents();
    hardenContents(contents as never, PAGE);
    expect(emit('will-redirect', { url: PAGE })).toBe(false);
    for (const url of OUTSIDE) expect(emit('will-redirect', { url }), url).toBe(true);
  });
});

describe('session', () => {
  it('sends the CSP constant as a response header, replacing any other policy', () => {
    const { ses, s } = fakeSession();
    hardenSession(ses as never, PAGE);
    let answer: { responseHeaders?: Record<string, string[]>; cancel?: boolean } | undefined;
    s.headers!({ responseHeaders: { 'content-security-policy': ["default-src *; script-src 'unsafe-inline'"], 'Content-Type': ['text/html'] } }, (r) => (answer = r as typeof answer));
    expect(answer?.cancel).toBeUndefined();
    expect(answer?.responseHeaders).toEqual({ 'Content-Type': ['text/html'], 'Content-Security-Policy': [CSP] });
    s.headers!({}, (r) => (answer = r as typeof answer)); // file:// responses carry no headers
    expect(answer?.responseHeaders).toEqual({ 'Content-Security-Policy': [CSP] });
    expect(withCsp({ 'CONTENT-SECURITY-POLICY': ['x'] })).toEqual({ 'Content-Security-Policy': [CSP] });
    expect(CSP).toContain("frame-ancestors 'none'"); // only a header can say this (a <meta> tag cannot)
  });

  it('grants the microphone to our page only: audio, top frame, exact URL', () => {
    const { ses, ask } = fakeSession();
    hardenSession(ses as never, PAGE);
    expect(ask('media', { isMainFrame: true, requestingUrl: PAGE, mediaTypes: ['audio'] })).toBe(true);
    expect(ask('media', { isMainFrame: true, requestingUrl: `${PAGE}#audio`, mediaTypes: ['audio'] })).toBe(true);
    expect(ask('media', { isMainFrame: true, requestingUrl: PAGE, mediaTypes: ['video'] })).toBe(false); // no camera
    expect(ask('media', { isMainFrame: true, requestingUrl: PAGE, mediaTypes: ['audio', 'video'] })).toBe(false);
    expect(ask('media', { isMainFrame: true, requestingUrl: PAGE, mediaTypes: [] })).toBe(false);
    expect(ask('media', { isMainFrame: true, requestingUrl: PAGE })).toBe(false);
    expect(ask('media', { isMainFrame: false, requestingUrl: PAGE, mediaTypes: ['audio'] })).toBe(false);
    for (const url of OUTSIDE) expect(ask('media', { isMainFrame: true, requestingUrl: url, mediaTypes: ['audio'] }), url).toBe(false);
  });

  it('denies every other permission, even to our page', () => {
    const { ses, s, ask } = fakeSession();
    hardenSession(ses as never, PAGE);
    for (const p of ['notifications', 'geolocation', 'openExternal', 'clipboard-read', 'display-capture', 'fullscreen', 'midiSysex', 'hid', 'serial', 'usb', 'fileSystem', 'pointerLock', 'unknown']) {
      expect(ask(p, { isMainFrame: true, requestingUrl: PAGE, mediaTypes: ['audio'] }), p).toBe(false);
      expect(s.check!(null, p, 'file:///', { isMainFrame: true, requestingUrl: PAGE, mediaType: 'audio' }), p).toBe(false);
    }
    expect(s.device!({ deviceType: 'usb', origin: 'file://' })).toBe(false);
  });

  it('answers permission checks the same way (microphone for our page only)', () => {
    const { ses, s } = fakeSession();
    hardenSession(ses as never, PAGE);
    expect(s.check!(null, 'media', 'file:///', { isMainFrame: true, requestingUrl: PAGE, mediaType: 'audio' })).toBe(true);
    expect(s.check!(null, 'media', 'file:///', { isMainFrame: true, requestingUrl: PAGE, mediaType: 'video' })).toBe(false);
    expect(s.check!(null, 'media', 'file:///', { isMainFrame: true, requestingUrl: PAGE, mediaType: 'unknown' })).toBe(false);
    expect(s.check!(null, 'media', 'file:///', { isMainFrame: false, requestingUrl: PAGE, mediaType: 'audio' })).toBe(false);
    for (const url of OUTSIDE) expect(s.check!(null, 'media', 'file:///', { isMainFrame: true, requestingUrl: url, mediaType: 'audio' }), url).toBe(false);
    // Without a requesting URL the web contents' own URL decides.
    expect(s.check!({ getURL: () => PAGE }, 'media', 'file:///', { isMainFrame: true, mediaType: 'audio' })).toBe(true);
    expect(s.check!({ getURL: () => 'https://evil.example/' }, 'media', 'file:///', { isMainFrame: true, mediaType: 'audio' })).toBe(false);
    expect(s.check!(null, 'media', 'file:///', { isMainFrame: true, mediaType: 'audio' })).toBe(false);
  });
});

describe('installSecurity', () => {
  it('hardens every web contents as it is created, and the session', () => {
    const on = vi.fn();
    const { ses, s } = fakeSession();
    installSecurity({ on } as never, ses as never, PAGE);
    expect(on).toHaveBeenCalledWith('web-contents-created', expect.any(Function));
    expect(s.headers && s.request && s.check && s.device).toBeTypeOf('function');
    const created = on.mock.calls.find(([name]) => name === 'web-contents-created')![1] as (e: unknown, c: unknown) => void;
    const { contents, emit, open } = fakeContents();
    created({}, contents);
    expect(open('https://evil.example/')).toEqual({ action: 'deny' });
    expect(emit('will-navigate', { url: 'https://evil.example/', isMainFrame: true })).toBe(true);
    expect(emit('will-redirect', { url: 'https://evil.example/' })).toBe(true);
    expect(emit('will-attach-webview', {})).toBe(true);
  });
});

describe('fuses (scripts/fuses.mjs, flipped at packaging time)', async () => {
  const { applyFuses, fuseSettings, toFuseConfig, defaultBinary } = await import('../../../scripts/fuses.mjs');
  // @electron/fuses 2.x's enums (its wire: index = FuseV1Options value, byte = FuseState value).
  const FuseV1Options: Record<string, number | string> = {};
  ['RunAsNode', 'EnableCookieEncryption', 'EnableNodeOptionsEnvironmentVariable', 'EnableNodeCliInspectArguments', 'EnableEmbeddedAsarIntegrityValidation', 'OnlyLoadAppFromAsar', 'LoadBrowserProcessSpecificV8Snapshot', 'GrantFileProtocolExtraPrivileges', 'WasmTrapHandlers']
    .forEach((name, i) => { FuseV1Options[name] = i; FuseV1Options[i] = name; });
  const FuseState: Record<string, number | string> = { DISABLE: 48, ENABLE: 49, REMOVED: 114, INHERIT: 144, 48: 'DISABLE', 49: 'ENABLE', 114: 'REMOVED', 144: 'INHERIT' };
  /** A binary as @electron/fuses sees it: Electron's defaults (RunAsNode on, cookie encryption off, ...). */
  function fakeFuses(opts: { ignoreWrites?: boolean } = {}) {
    const wire: Record<string, unknown> = { version: '1', 0: 49, 1: 48, 2: 49, 3: 49, 4: 48, 5: 48, 6: 48, 7: 49, 8: 49 };
    const flipFuses = vi.fn(async (_b: string, config: Record<string, unknown>) => {
      if (!opts.ignoreWrites) for (const [k, v] of Object.entries(config)) if (k !== 'version') wire[k] = v ? 49 : 48;
      return 1;
    });
    return { wire, module: { FuseVersion: { V1: '1' }, FuseV1Options, FuseState, flipFuses, getCurrentFuseWire: vi.fn(async () => ({ ...wire })) } };
  }

  it('turns RunAsNode, NODE_OPTIONS and --inspect off and cookie encryption on; ASAR fuses only when packaged', async () => {
    const dev = fakeFuses();
    await applyFuses('/x/electron', {}, dev.module);
    expect(dev.module.flipFuses).toHaveBeenCalledWith('/x/electron', { version: '1', 0: false, 1: true, 2: false, 3: false });
    expect(dev.wire).toMatchObject({ 0: 48, 1: 49, 2: 48, 3: 48, 4: 48, 5: 48, 7: 49 }); // file:// privileges kept
    const packaged = fakeFuses();
    await applyFuses('/x/AdvLab', { packaged: true }, packaged.module);
    expect(packaged.module.flipFuses).toHaveBeenCalledWith('/x/AdvLab', { version: '1', 0: false, 1: true, 2: false, 3: false, 4: true, 5: true });
    expect(packaged.wire).toMatchObject({ 0: 48, 1: 49, 2: 48, 3: 48, 4: 49, 5: 49, 7: 49 });
    expect(fuseSettings({ packaged: true })).toEqual({ RunAsNode: false, EnableCookieEncryption: true, EnableNodeOptionsEnvironmentVariable: false, EnableNodeCliInspectArguments: false, EnableEmbeddedAsarIntegrityValidation: true, OnlyLoadAppFromAsar: true });
  });

  it('reads the fuses back and fails, naming each, when a flip did not take', async () => {
    const stuck = fakeFuses({ ignoreWrites: true });
    await expect(applyFuses('/x/electron', {}, stuck.module)).rejects.toThrow(/RunAsNode is ENABLE, expected DISABLE[\s\S]*EnableCookieEncryption is DISABLE, expected ENABLE/);
    const removed = fakeFuses();
    removed.wire[0] = 114;
    await expect(applyFuses('/x/electron', { check: true }, removed.module)).rejects.toThrow(/RunAsNode is REMOVED/);
  });

  it('--check changes nothing and passes only on a flipped binary', async () => {
    const f = fakeFuses();
    await expect(applyFuses('/x/electron', { check: true }, f.module)).rejects.toThrow(/RunAsNode/);
    expect(f.module.flipFuses).not.toHaveBeenCalled();
    await applyFuses('/x/electron', { packaged: true }, f.module);
    await expect(applyFuses('/x/electron', { check: true, packaged: true }, f.module)).resolves.toMatchObject({ RunAsNode: false });
  });

  it('refuses a fuse the installed @electron/fuses does not know, and finds no binary where none is installed', async () => {
    const { FuseV1Options: _all, ...rest } = fakeFuses().module;
    const old = { ...rest, FuseV1Options: { RunAsNode: 0, EnableCookieEncryption: 1 } };
    expect(() => toFuseConfig(fuseSettings({ packaged: false }), old)).toThrow(/does not know the fuse EnableNodeOptionsEnvironmentVariable/);
    expect(defaultBinary('/nonexistent')).toBeNull();
  });
});
