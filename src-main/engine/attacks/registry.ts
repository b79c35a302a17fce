/**
 * The attack registry: every image attack the engine offers, by id. The UI lists `attackCatalog()`
 * (JSON-serialisable, with each parameter's JSON schema); jobs run `runAttack(id, ...)`.
 */
import { describeSchema, type ParamsDescription } from '../core/describe-schema';
import { badInput } from '../errors';
import { cwL2 } from './cw';
import { ddn } from './ddn';
import { fgsm } from './fgsm';
import { bim, pgd, pgdL2, pgdMargin } from './pgd';
import { apgd, apgdL2, apgdT, apgdTL2 } from './apgd';
import { square, squareL2 } from './square';
import { fmnL2, fmnLinf } from './fmn';
import { fabT, fabTL2 } from './fab';
import type { AnyAttack, Norm, Paper } from './types';

export const ATTACKS: readonly AnyAttack[] = [fgsm, bim, pgd, pgdL2, pgdMargin, cwL2, ddn, apgd, apgdL2, apgdT, apgdTL2, fabT, fabTL2, square, squareL2, fmnL2, fmnLinf];

export const ATTACK_IDS = ATTACKS.map((a) => a.id);

export function getAttack(id: string): AnyAttack {
  const found = ATTACKS.find((a) => a.id === id);
  if (!found) throw badInput(`Unknown attack "${id}"; available: ${ATTACK_IDS.join(', ')}`, { attack: id });
  return found;
}

export interface AttackInfo {
  id: string;
  name: string;
  norm: Norm;
  description: string;
  paper: Paper;
  defaults: Record<string, unknown>;
  /** JSON Schema of the parameters (types, ranges, defaults, descriptions) for building forms. */
  paramsJsonSchema: ParamsDescription;
}

/** What the UI shows: plain data, safe to send over IPC. */
export function attackCatalog(): AttackInfo[] {
  return ATTACKS.map((a) => ({
    id: a.id,
    name: a.name,
    norm: a.norm,
    description: a.description,
    paper: a.paper,
    defaults: { ...a.defaults },
    paramsJsonSchema: describeSchema(a.paramsSchema),
  }));
}
