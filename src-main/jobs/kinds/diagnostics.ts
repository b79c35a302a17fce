/** The diagnostics job: backend report, Conv2D gradient check and conv-net timings. */
import { diagnosticsParams } from '../../api/jobs';
import { conv2dGradientCheck, timeConvNet } from '../../engine/diagnostics';
import type { JobHandler } from '../types';

export const diagnostics = (async (raw, ctx, env) => {
  const params = diagnosticsParams.parse(raw);
  ctx.progress({ step: 0, total: 4, phase: 'gradient check' });
  const gradientCheck = conv2dGradientCheck();
  ctx.progress({ step: 1, total: 4, phase: 'gradient check', metrics: { maxAbsDiff: gradientCheck.maxAbsDiff } });
  const timings = await timeConvNet(params.batch, params.repeats, {
    ...ctx,
    progress: (p) => ctx.progress({ ...p, step: 1 + p.step, total: 4 }),
  });
  return { backend: env.backend, gradientCheck, timings };
}) satisfies JobHandler<'diagnostics'>;
