/**
 * A case study of the talk as code: a recipe file (resources/recipes/<id>.json) gives the claim, the
 * paper and the parameters of a full and a quick run; the case study's `run` trains what it needs,
 * attacks it, and returns the evidence next to the claim. Everything it saves goes into the one
 * session the recipe job opened.
 */
import type { JobContext } from '../context';
import type { SessionWriter } from '../sessions';

export interface RecipeFile {
  id: string;
  title: string;
  /** What the defense's paper claims, in one or two sentences. */
  claim: string;
  /** What the talk (and the attack papers) showed instead: the result this recipe reproduces. */
  finding: string;
  papers: { authors: string; title: string; venue: string; year: number }[];
  /** Which case study runs it (engine/defenses registry id). */
  caseStudy: string;
  /** Parameters of the full run (what a researcher runs). */
  full: Record<string, unknown>;
  /** Overrides for --quick (small subsets, for tests and CI). */
  quick: Record<string, unknown>;
}

export interface RecipeEnv {
  dataDirs: string[];
  /** The recipe's session: metrics, artifacts (models, images, tables). */
  writer: SessionWriter;
  ctx: JobContext;
  quick: boolean;
}

export interface EvidenceRow {
  /** What is measured, e.g. "PGD eps=0.3 success on the distilled model". */
  what: string;
  measured: number | string | boolean | null;
  /** The paper's or talk's number for the same thing, when there is one. */
  reference?: number | string | null;
  unit?: '%' | 'L2' | 'Linf' | 's' | '';
}

export interface RecipeOutcome {
  /** True when the key result of the case study holds in this run. */
  claimReproduced: boolean;
  /** The inequality or threshold that decided claimReproduced, in words with its numbers. */
  criterion: string;
  /** The numbers behind it, flat, for --json and the session summary. */
  evidence: Record<string, number | string | boolean | null>;
  /** The same numbers as rows for the report (with the paper's numbers beside them). */
  table: EvidenceRow[];
  notes?: string[];
}

export interface CaseStudy {
  id: string;
  /** Throws BAD_INPUT when `params` are not this study's (the same check run starts with), before any session exists. */
  checkParams(params: Record<string, unknown>): void;
  run(params: Record<string, unknown>, env: RecipeEnv): Promise<RecipeOutcome>;
}
