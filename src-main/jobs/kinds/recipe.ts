/**
 * The recipe job: one case study of the talk, end to end, into one session whose report shows the
 * claim and the evidence side by side (report.json + the summary).
 */
import { recipeParams } from '../../api/jobs';
import { getCaseStudy } from '../../engine/defenses';
import '../../engine/defenses/all';
import { loadRecipe } from '../../engine/defenses/recipes';
import { AdvlabError } from '../../engine/errors';
import { confinedDataset, confinedRecipe } from '../confine';
import { openSession, runInSession } from '../session-env';
import type { JobHandler } from '../types';

export const recipe = (async (raw, ctx, env) => {
  const p = recipeParams.parse(raw);
  const file = loadRecipe(await confinedRecipe(p.recipe)); // a recipe file is checked again where it is read (jobs/confine.ts)
  const study = getCaseStudy(file.caseStudy);
  if (!study) throw new AdvlabError('NOT_FOUND', `Recipe ${file.id} names case study "${file.caseStudy}", which this build does not have`);
  const params = { ...file.full, ...(p.quick ? file.quick : {}), ...p.overrides, dataDirs: undefined };
  delete params.dataDirs;
  study.checkParams(params); // a bad override is refused here, before the session opens
  // The study loads its dataset (an override may name a folder): checked again now, as the door did at jobs.start.
  const dataset = (params as Record<string, unknown>).dataset;
  if (typeof dataset === 'string') await confinedDataset(dataset, env.dataDirs, p.overrides.dataset !== undefined ? 'overrides.dataset' : 'dataset');
  const { writer } = await openSession(env, {
    kind: 'recipe',
    name: p.name ?? `${file.title}${p.quick ? ' (quick)' : ''}`,
    params: { recipe: file.id, quick: p.quick, overrides: p.overrides, resolved: params },
    tags: [...p.tags, `recipe:${file.id}`],
  });
  return runInSession(writer, async () => {
    const t0 = performance.now();
    const outcome = await study.run(params, { dataDirs: env.dataDirs, writer, ctx, quick: p.quick });
    const seconds = (performance.now() - t0) / 1000;
    const report = { recipe: file.id, title: file.title, claim: file.claim, finding: file.finding, papers: file.papers, quick: p.quick, params, ...outcome, seconds };
    await writer.writeArtifact('report.json', JSON.stringify(report, null, 2), 'json', 'claim and evidence side by side');
    return {
      summary: { recipe: file.id, claimReproduced: outcome.claimReproduced, quick: p.quick, seconds, ...outcome.evidence },
      result: { recipe: file.id, claimReproduced: outcome.claimReproduced, criterion: outcome.criterion, evidence: outcome.evidence, seconds },
    };
  });
}) satisfies JobHandler<'recipe'>;
