/**
 * Issue 14: error messages do not echo file contents. JSON.parse's message quotes the text around
 * the error (`Unexpected token 'T', "TOP-SECRE"... is not valid JSON`), so a non-JSON file given
 * where JSON is read (a model.json, a session manifest, a recipe, a JSON artifact) put its first
 * bytes into the error the API returned. Each reader now says what is wrong without the text.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonSyntaxProblem } from '../../../src-main/engine/core/json-depth';
import { loadModel } from '../../../src-main/engine/models/io';
import { SessionStore } from '../../../src-main/engine/sessions';
import { loadRecipe } from '../../../src-main/engine/defenses/recipes';

const SECRET = 'root:x:0:0:SECRET-PASSWORD-HASH';
const tmp = mkdtempSync(join(os.tmpdir(), 'advlab-echo-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const messageOf = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('no file contents in JSON errors', () => {
  it('jsonSyntaxProblem keeps the problem and drops the quoted text', () => {
    // What V8 says by itself: the file's first bytes.
    expect(() => JSON.parse(SECRET)).toThrow(/root:x/);
    for (const text of [SECRET, `{"a": ${SECRET}}`, `["${SECRET}" 1]`, `{"k":"${SECRET}`]) {
      let err: unknown;
      try {
        JSON.parse(text);
      } catch (e) {
        err = e;
      }
      const said = jsonSyntaxProblem(err);
      expect(said).not.toContain('SECRET');
      expect(said).not.toContain('root:x');
      expect(said.length).toBeGreaterThan(5);
    }
  });

  it('a model.json that is not JSON', async () => {
    const dir = join(tmp, 'model');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.json'), SECRET);
    const m = await messageOf(loadModel(dir));
    expect(m).toMatch(/is not valid JSON/);
    expect(m).not.toMatch(/SECRET|root:x/);
  });

  it('a session manifest that is not JSON (listed as damaged, shown with the reason)', async () => {
    const root = join(tmp, 'sessions');
    const id = '20260101-000000-train-0001';
    mkdirSync(join(root, id), { recursive: true });
    writeFileSync(join(root, id, 'manifest.json'), SECRET);
    const store = new SessionStore(root);
    const [listed] = await store.list();
    expect(listed.damaged).toMatch(/not valid JSON/);
    expect(JSON.stringify(listed)).not.toMatch(/SECRET|root:x/);
    expect(await messageOf(store.show(id))).not.toMatch(/SECRET|root:x/);
  });

  it('a recipe file that is not JSON', async () => {
    const file = join(tmp, 'recipe.json');
    writeFileSync(file, SECRET);
    const m = await messageOf(() => loadRecipe(file));
    expect(m).toMatch(/not valid JSON/);
    expect(m).not.toMatch(/SECRET|root:x/);
  });
});
