/** Finding and reading recipe files (resources/recipes/*.json). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AdvlabError, badFile, formatIssues } from '../errors';
import { jsonSyntaxProblem } from '../core/json-depth';
import type { RecipeFile } from './types';

const recipeSchema = z.object({
  id: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string().min(1),
  claim: z.string().min(1),
  finding: z.string().min(1),
  papers: z.array(z.object({ authors: z.string(), title: z.string(), venue: z.string(), year: z.number().int() })),
  caseStudy: z.string().min(1),
  full: z.record(z.string(), z.unknown()),
  quick: z.record(z.string(), z.unknown()),
});

/** The resources/recipes folder: next to the source tree or the built bundle (out/main). */
export function recipesDir(): string {
  if (process.env.ADVLAB_RECIPES) return process.env.ADVLAB_RECIPES;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'resources', 'recipes');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new AdvlabError('NOT_FOUND', 'The resources/recipes folder was not found next to the program');
}

export function readRecipe(file: string): RecipeFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw badFile(file, `not valid JSON (${jsonSyntaxProblem(e)})`);
  }
  const parsed = recipeSchema.safeParse(raw);
  if (!parsed.success) throw badFile(file, `not a recipe: ${formatIssues(parsed.error.issues, { root: '' }).join('; ')}`);
  return parsed.data;
}

export function listRecipes(dir = recipesDir()): RecipeFile[] {
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => readRecipe(join(dir, f)));
}

/** A recipe by id, or a path to a recipe file. */
export function loadRecipe(nameOrPath: string, dir?: string): RecipeFile {
  if (nameOrPath.endsWith('.json') && existsSync(nameOrPath)) return readRecipe(nameOrPath);
  const d = dir ?? recipesDir();
  const file = join(d, `${nameOrPath}.json`);
  if (!existsSync(file)) {
    const known = listRecipes(d).map((r) => r.id).join(', ');
    throw new AdvlabError('NOT_FOUND', `No recipe "${nameOrPath}" (known: ${known || 'none'})`);
  }
  return readRecipe(file);
}
