/**
 * The layers, drawn from the imports. Every relative import (static, dynamic, `export from`,
 * `import('...')` types) of src-main, src-shared and src-renderer (the scripts of .svelte files too)
 * is an edge; the rules below forbid the back edges:
 *
 *   engine/core < engine/{data,sessions} < models < attacks < eval < defenses   (audio: above models)
 *   engine < listening, report < api < jobs < host, electron, cli
 *   src-shared: used by main and renderer; imports only itself, and types from src-main
 *   src-renderer: imports src-shared, and only types from src-main
 *
 * ALLOWED lists back edges accepted on purpose (none today); a stale entry fails the last test, so the
 * list cannot rot.
 */
import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const SOURCES = ['src-main', 'src-shared', 'src-renderer'];

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : /\.(ts|svelte)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

const rel = (abs: string) => relative(ROOT, abs).split('\\').join('/');

function resolveImport(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const c of [base, `${base}.ts`, join(base, 'index.ts')]) if (existsSync(c) && statSync(c).isFile()) return rel(c);
  return `${rel(base)} (unresolved)`;
}

/** Every relative import of one file; type-only when nothing of it exists at run time. */
function importsOf(file: string): Edge[] {
  let text = readFileSync(file, 'utf8');
  if (file.endsWith('.svelte')) text = [...text.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Edge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (spec.startsWith('.')) out.push({ from: rel(file), to: resolveImport(file, spec), typeOnly });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      add(n.moduleSpecifier.text, !!c && (c.isTypeOnly || (!c.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly))));
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      const named = n.exportClause && ts.isNamedExports(n.exportClause) ? n.exportClause.elements : undefined;
      add(n.moduleSpecifier.text, n.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) {
      add(n.arguments[0].text, false);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      add(n.argument.literal.text, true);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

const FILES = SOURCES.flatMap((d) => walk(join(ROOT, d)));
const EDGES = FILES.flatMap(importsOf);
const show = (e: Edge) => `${e.from} -> ${e.to}${e.typeOnly ? ' (type)' : ''}`;

/** The layer of a file, from its path. */
function layer(file: string): string {
  const m = /^src-main\/engine\/([^/]+)\//.exec(file);
  if (m) return `engine/${m[1]}`;
  if (/^src-main\/engine\/[^/]+$/.test(file)) return 'engine';
  const top = /^src-main\/([^/]+)\//.exec(file);
  if (top) return top[1];
  return file.split('/')[0];
}

/** Layers each layer must not import (types included). */
const ENGINE_ABOVE = ['api', 'jobs', 'host', 'electron', 'cli', 'report', 'listening', 'src-renderer'];
const FORBIDDEN: Record<string, string[]> = {
  'engine/core': ['engine', 'engine/data', 'engine/sessions', 'engine/models', 'engine/attacks', 'engine/eval', 'engine/defenses', 'engine/audio', ...ENGINE_ABOVE],
  'engine/data': ['engine/models', 'engine/attacks', 'engine/eval', 'engine/defenses', 'engine/audio', ...ENGINE_ABOVE],
  'engine/sessions': ['engine/data', 'engine/models', 'engine/attacks', 'engine/eval', 'engine/defenses', 'engine/audio', ...ENGINE_ABOVE],
  'engine/models': ['engine/attacks', 'engine/eval', 'engine/defenses', 'engine/audio', ...ENGINE_ABOVE],
  'engine/attacks': ['engine/eval', 'engine/defenses', 'engine/audio', ...ENGINE_ABOVE],
  'engine/eval': ['engine/defenses', 'engine/audio', ...ENGINE_ABOVE],
  'engine/defenses': ['engine/audio', ...ENGINE_ABOVE],
  'engine/audio': ['engine/attacks', 'engine/eval', 'engine/defenses', ...ENGINE_ABOVE],
  engine: ENGINE_ABOVE,
  listening: ['api', 'jobs', 'host', 'electron', 'cli', 'report', 'src-renderer'],
  report: ['api', 'jobs', 'host', 'electron', 'cli', 'listening', 'src-renderer'],
  api: ['jobs', 'host', 'electron', 'cli', 'src-renderer'],
  jobs: ['host', 'electron', 'cli', 'src-renderer'],
  host: ['electron', 'cli', 'src-renderer'],
  electron: ['cli', 'src-renderer'],
  cli: ['src-renderer'],
};

/** Back edges allowed on purpose (`from -> to` as the tests print them): none since issue 12. */
const ALLOWED = new Set<string>([]);

function backEdges(edges: readonly Edge[] = EDGES): string[] {
  return edges.filter((e) => FORBIDDEN[layer(e.from)]?.includes(layer(e.to))).map(show);
}

/** Strongly connected components with more than one file (Tarjan), each as its sorted files. */
function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) (next.get(e.from) ?? next.set(e.from, []).get(e.from)!).push(e.to);
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const out: string[][] = [];
  let i = 0;
  const strong = (v: string): void => {
    index.set(v, i);
    low.set(v, i++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) strong(v);
  return out;
}

describe('import graph', () => {
  it('reads every source file and resolves every relative import', () => {
    expect(FILES.length).toBeGreaterThan(150);
    expect(EDGES.length).toBeGreaterThan(500);
    expect(EDGES.filter((e) => e.to.endsWith('(unresolved)')).map(show)).toEqual([]);
    // The parser sees the kinds of import the rules depend on.
    expect(EDGES.some((e) => e.from === 'src-main/cli/index.ts' && e.to === 'src-main/cli/commands.ts' && !e.typeOnly)).toBe(true);
    expect(EDGES.some((e) => e.from.startsWith('src-renderer/') && e.from.endsWith('.svelte') && e.typeOnly)).toBe(true);
  });

  it('the rules catch the back edges this issue removed', () => {
    const edge = (from: string, to: string, typeOnly = false): Edge => ({ from, to, typeOnly });
    const removed = [
      edge('src-main/engine/attacks/base.ts', 'src-main/engine/eval/stats.ts'),
      edge('src-main/engine/models/defended.ts', 'src-main/engine/defenses/thermo-encoding.ts'),
      edge('src-main/cli/bench.ts', 'src-renderer/lib/session-list.ts'),
      edge('src-main/engine/sessions/store.ts', 'src-main/api/contract.ts', true),
      edge('src-main/listening/api.ts', 'src-main/api/core.ts', true),
      edge('src-main/api/core.ts', 'src-main/jobs/runner.ts', true),
    ];
    expect(backEdges(removed)).toEqual(removed.map(show));
    const fine = [
      edge('src-main/engine/eval/masking.ts', 'src-main/engine/attacks/pgd.ts'),
      edge('src-main/engine/sessions/store.ts', 'src-main/engine/core/fs-atomic.ts'),
      edge('src-main/jobs/kinds/attack.ts', 'src-main/api/jobs.ts'),
      edge('src-main/api/handlers.ts', 'src-main/report/api.ts'),
    ];
    expect(backEdges(fine)).toEqual([]);
    expect(cycles([edge('a', 'b', true), edge('b', 'c'), edge('c', 'a'), edge('c', 'd')])).toEqual([['a', 'b', 'c']]);
  });

  it('has no back edges between the layers', () => {
    expect(backEdges().filter((e) => !ALLOWED.has(e))).toEqual([]);
  });

  it('the renderer imports only types from src-main', () => {
    const bad = EDGES.filter((e) => e.from.startsWith('src-renderer/') && e.to.startsWith('src-main/') && !e.typeOnly).map(show);
    expect(bad.filter((e) => !ALLOWED.has(e))).toEqual([]);
  });

  it('src-shared imports only itself, and types from src-main, and no Node module', () => {
    const shared = EDGES.filter((e) => e.from.startsWith('src-shared/'));
    expect(shared.filter((e) => !e.to.startsWith('src-shared/') && !(e.to.startsWith('src-main/') && e.typeOnly)).map(show)).toEqual([]);
    const nodeImports = FILES.filter((f) => rel(f).startsWith('src-shared/') && /from ['"]node:|require\(/.test(readFileSync(f, 'utf8'))).map(rel);
    expect(nodeImports).toEqual([]);
  });

  it('has no import cycle (the CLI included)', () => {
    expect(cycles(EDGES)).toEqual([]);
  });

  it('every allowlisted back edge still exists (remove the entry when its item is merged)', () => {
    const current = new Set([...backEdges(), ...EDGES.filter((e) => e.from.startsWith('src-renderer/') && e.to.startsWith('src-main/') && !e.typeOnly).map(show)]);
    expect([...ALLOWED].filter((e) => !current.has(e))).toEqual([]);
  });
});
