/** The Attack and Evaluate views' dataset follows the picked model whatever order the two lists arrive in. */
import { describe, expect, it } from 'vitest';
import { datasetForModel, datasetOnceListed } from '../../../src-renderer/lib/model-dataset';

const listed = [{ name: 'mnist' }, { name: 'fashion-mnist' }];

describe('the dataset follows the model', () => {
  it('picks the model\'s dataset when it is listed, keeps the current one when it is not or the model has none', () => {
    expect(datasetForModel('fashion-mnist', listed, 'mnist')).toBe('fashion-mnist');
    expect(datasetForModel('cifar10', listed, 'mnist')).toBe('mnist');
    expect(datasetForModel(undefined, listed, 'mnist')).toBe('mnist');
  });

  it('a model picked before the dataset list arrives keeps its dataset once the list has it (the race starter.spec hit)', () => {
    const asked = datasetForModel('fashion-mnist', null, 'mnist');
    expect(asked).toBe('fashion-mnist');
    expect(datasetOnceListed(asked, listed)).toBe('fashion-mnist');
  });

  it('a dataset the list does not have falls back to the list\'s first, or none', () => {
    expect(datasetOnceListed('cifar10', listed)).toBe('mnist');
    expect(datasetOnceListed('', listed)).toBe('mnist');
    expect(datasetOnceListed('mnist', [])).toBe('');
  });
});
