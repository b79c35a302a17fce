/** The case studies recipes can run, by id. */
import type { CaseStudy } from './types';

export * from './types';

const registry = new Map<string, CaseStudy>();

export function registerCaseStudy(c: CaseStudy): void {
  registry.set(c.id, c);
}

export function getCaseStudy(id: string): CaseStudy | undefined {
  return registry.get(id);
}

export function caseStudyIds(): string[] {
  return [...registry.keys()];
}
