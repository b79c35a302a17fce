/** Small synthetic ImageSets for model tests: each class lights up one quadrant of the image. */
import type { ImageSet } from '../../../src-main/engine/data/types';
import { mulberry32 } from '../../../src-main/engine/models/train';

/** n images of size x size x 1 in 4 classes: class q has a bright quadrant q, plus uniform noise. */
export function quadrantSet(n: number, seed = 1, size = 8, noise = 0.3): ImageSet {
  const rng = mulberry32(seed);
  const d = size * size;
  const images = new Float32Array(n * d);
  const labels = new Uint8Array(n);
  const half = size / 2;
  for (let i = 0; i < n; i++) {
    const q = i % 4;
    labels[i] = q;
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        const inQ = (r < half ? 0 : 2) + (c < half ? 0 : 1) === q;
        images[i * d + r * size + c] = Math.min(1, (inQ ? 0.7 : 0) + noise * rng());
      }
    }
  }
  return {
    name: 'quadrants', images, labels, shape: [size, size, 1], classNames: ['tl', 'tr', 'bl', 'br'],
    source: { files: [], sha256: '0'.repeat(64) },
  };
}
