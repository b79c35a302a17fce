/**
 * The checks of jobs.start that go beyond the job's own schema: an image attack's parameters are
 * checked with that attack's strict schema here, at the API door, so that a bad `eps` or an unknown
 * parameter is a refused request (BAD_INPUT, HTTP 400) before any worker or session exists. The
 * worker validates them again with the same schema (runAttack -> parseAttackParams): one rule.
 */
import { fixedEpsilon } from '../engine/eval/robustness';
import { getAttack, parseAttackParams } from '../engine/attacks';
import type { JobStart } from './jobs';

/** Throws BAD_INPUT (naming the attack, the problem and the accepted parameters) when they are not the attack's. */
export function checkJobStart(start: JobStart): void {
  switch (start.kind) {
    case 'attack': {
      parseAttackParams(getAttack(start.params.attack), start.params.params);
      break;
    }
    case 'sweep': {
      const def = getAttack(start.params.attack);
      // Each point of the sweep with eps > 0 runs the attack with the sweep's params and that eps
      // (eps 0 is the clean accuracy, robustAccuracyCurve attacks nothing there). An attack without
      // an eps budget is refused by the sweep itself, with its own reason.
      if (!def.epsilonBall) break;
      const at = fixedEpsilon(def, start.params.params);
      for (const eps of start.params.epsilons) if (eps > 0) parseAttackParams(def, at(eps).params);
      break;
    }
    default:
      break;
  }
}
