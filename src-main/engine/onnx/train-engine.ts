/**
 * Which engine trains a network, for image classifiers (models/train.ts) and speech models (audio/train.ts) alike:
 * 'tfjs' as asked; 'onnx' on ONNX Runtime or an UNSUPPORTED error naming what kept the run off it; 'auto' on ONNX
 * Runtime when nothing does, else on tfjs with that reason. What keeps a run off ONNX Runtime, in order: the
 * caller's own blocker (a hook, a loss, a cluster), ONNX Runtime missing here, then the exporter refusing a layer
 * (an UnsupportedLayerError from `create`).
 */
import type { EngineInfo } from '../models/classifier';
import { AdvlabError } from '../errors';
import type { EngineRequest } from './engines';
import { UnsupportedLayerError } from './export';
import { ortStatus } from './runtime';

export async function chooseTrainingEngine<T extends { engine: EngineInfo }>(
  request: EngineRequest, callerBlocker: string | null, create: (reason: string) => Promise<T>,
): Promise<{ trainer: T | null; info: EngineInfo }> {
  if (request === 'tfjs') return { trainer: null, info: { engine: 'tfjs', reason: 'requested (engine tfjs)' } };
  let blocker = callerBlocker;
  if (blocker === null) {
    const status = ortStatus();
    if (!status.available) blocker = status.reason;
  }
  if (blocker === null) {
    try {
      const trainer = await create(request === 'onnx' ? 'requested (engine onnx)' : 'auto: every layer is exported for training');
      return { trainer, info: trainer.engine };
    } catch (e) {
      if (!(e instanceof UnsupportedLayerError)) throw e;
      blocker = `exporter: ${e.message}`;
    }
  }
  if (request === 'onnx') throw new AdvlabError('UNSUPPORTED', `engine onnx: ${blocker}`, { engine: 'onnx' });
  return { trainer: null, info: { engine: 'tfjs', reason: blocker } };
}
