/** The diagnostics job: backend report, Conv2D gradient check and conv-net timings. */
import { diagnosticsParams } from '../../api/jobs';
import { conv2dGradientCheck, timeConvNet } from '../../engine/diagnostics';
import { childContext } from '../../engine/context';
import { defaultThreads, ortStatus } from '../../engine/onnx/runtime';
import type { JobHandler } from '../types';

export const diagnostics = (async (raw, ctx, env) => {
  const params = diagnosticsParams.parse(raw);
  ctx.progress({ step: 0, total: 4, phase: 'gradient check' });
  const gradientCheck = conv2dGradientCheck();
  ctx.progress({ step: 1, total: 4, phase: 'gradient check', metrics: { maxAbsDiff: gradientCheck.maxAbsDiff } });
  const timings = await timeConvNet(params.batch, params.repeats, childContext(ctx, { from: 1, span: 3, total: 4 }));
  // ONNX Runtime as a job would load it (in the job's worker): version and default threads, or why not.
  const onnx = { ...ortStatus(), threads: defaultThreads() };
  return { backend: env.backend, gradientCheck, timings, onnx };
}) satisfies JobHandler<'diagnostics'>;
