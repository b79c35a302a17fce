/**
 * Quick settings (src-shared/attack-presets.ts) are valid parameters of their attack, checked by the attack's
 * own schema, and leave the engine's defaults as the paper's (C&W: 9 x 1000 steps, Adam step 0.01, first c 0.01).
 */
import { describe, expect, it } from 'vitest';
import { attackCatalog, ATTACKS } from '../../../src-main/engine/attacks/registry';
import { checkValues } from '../../../src-renderer/components/params-form';
import { QUICK_PRESETS } from '../../../src-shared/attack-presets';

describe('quick attack settings', () => {
  it('name attacks of the catalog and only their parameters, within the schema bounds; the attack schema accepts them', () => {
    expect(Object.keys(QUICK_PRESETS).length).toBeGreaterThan(0);
    for (const [id, preset] of Object.entries(QUICK_PRESETS)) {
      const info = attackCatalog().find((a) => a.id === id);
      expect(info, id).toBeDefined();
      const values = { ...info!.defaults, ...preset.params };
      expect(Object.keys(preset.params).filter((k) => !(k in (info!.paramsJsonSchema.properties ?? {}))), id).toEqual([]);
      expect(checkValues(info!.paramsJsonSchema, values), id).toEqual({});
      const schema = ATTACKS.find((a) => a.id === id)!.paramsSchema;
      expect(schema.parse(values), id).toMatchObject(preset.params);
    }
  });

  it('C&W: the quick run is shorter than the paper and the engine defaults stay the paper\'s', () => {
    const cw = attackCatalog().find((a) => a.id === 'cw-l2')!;
    expect(cw.defaults).toMatchObject({ binarySearchSteps: 9, maxIterations: 1000, learningRate: 0.01, initialConst: 0.01 });
    const q = QUICK_PRESETS['cw-l2'].params as { binarySearchSteps: number; maxIterations: number };
    expect(q.binarySearchSteps * q.maxIterations).toBeLessThan(9 * 1000);
  });
});
