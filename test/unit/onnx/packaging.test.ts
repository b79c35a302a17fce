/**
 * Packaging (issue 13: "asar-unpack its native files"): electron-builder.json must leave every native file
 * of onnxruntime-node outside app.asar (a .node binding and the libonnxruntime it links cannot be loaded from
 * inside an archive), and the built main bundle must load onnxruntime-node from node_modules at run time
 * rather than inline it (the binding finds its .node file relative to its own folder).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..', '..', '..');

/** electron-builder's globs as used here: `**` spans folders, `*` stays inside one, `!` excludes. */
function globRegExp(glob: string): RegExp {
  const body = glob.split('**').map((part) => part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('.*');
  return new RegExp(`^${body}$`);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

const config = JSON.parse(readFileSync(join(root, 'electron-builder.json'), 'utf8')) as { asar: boolean; asarUnpack: string[]; files: string[]; extraMetadata?: { main?: string } };
const unpacked = (path: string) => config.asarUnpack.some((g) => globRegExp(g).test(path));

describe('electron-builder config', () => {
  it('unpacks every native file of onnxruntime-node, for every platform the package ships', () => {
    expect(config.asar).toBe(true);
    const bin = join(root, 'node_modules', 'onnxruntime-node', 'bin');
    const native = filesUnder(bin).map((p) => relative(root, p).split('\\').join('/')).filter((p) => /\.(node|so(\.\d+)*|dylib|dll)$/.test(p));
    // The package ships at least this platform's binding and runtime library.
    expect(native).toContain(`node_modules/onnxruntime-node/bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`);
    expect(native.length).toBeGreaterThanOrEqual(2);
    for (const p of native) expect(unpacked(p), p).toBe(true);
    // Only native files: the JavaScript stays in the archive.
    expect(unpacked('node_modules/onnxruntime-node/dist/binding.js')).toBe(false);
    expect(unpacked('out/main/main.js')).toBe(false);
  });

  it('packs the built app (out/) and its starter pack, with package.json main pointing into it', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string };
    const included = (p: string) => config.files.some((g) => !g.startsWith('!') && globRegExp(g).test(p)) && !config.files.some((g) => g.startsWith('!') && globRegExp(g.slice(1)).test(p));
    expect(config.extraMetadata?.main ?? pkg.main).toBe(pkg.main);
    expect(included(pkg.main)).toBe(true);
    expect(included('out/main/worker.js')).toBe(true);
    expect(included('resources/starter/models/cw-mnist/model.json')).toBe(true);
    expect(pkg.main).toBe('out/main/main.js');
  });

  it('the built main bundle requires onnxruntime-node from node_modules instead of inlining it', () => {
    const out = join(root, 'out', 'main');
    expect(existsSync(join(out, 'main.js')), 'build first: npx electron-vite build').toBe(true);
    const code = readdirSync(out).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(out, f), 'utf8')).join('\n');
    expect(code).toMatch(/require\w*\(\s*["']onnxruntime-node\/dist\/binding["']\s*\)/);
    // The binding's own source (its relative require of the .node file) must not be in the bundle.
    expect(code).not.toMatch(/napi-v6\/\$\{process\.platform\}/);
  });
});
