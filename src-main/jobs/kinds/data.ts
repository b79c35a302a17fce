/**
 * 'data-get': downloads a dataset into a data folder (engine/data/sources.ts). A job like any other,
 * so the CLI prints its progress, the GUI shows a progress bar with bytes and ETA, and Cancel stops
 * it within a chunk (what was downloaded stays for the next run to resume). No session.
 */
import { dataGetParams } from '../../api/jobs';
import { installDataset } from '../../engine/data';
import { appDataDir } from '../../paths';
import type { JobHandler } from '../types';

export const dataGet = (async (raw, ctx) => {
  const p = dataGetParams.parse(raw);
  return installDataset(p.dataset, { dataDir: p.dir ?? appDataDir(), mirror: p.mirror, force: p.force, ctx });
}) satisfies JobHandler<'data-get'>;
