/**
 * Perceptual losses (Gatys et al. 2015; Johnson et al. 2016), as graph compositions on the VGG
 * loss network: content (feature MSE), style (Gram-matrix MSE, optionally guided by a mask) and
 * total variation. Shared by Gatys optimisation and network training.
 */
import { F, type Graph, type Value } from '../graph/index.js';

/** Gram matrix of features [1, C, H, W] → [C, C], normalised by C·H·W (or C·Σmask when masked). */
export function gramMatrix(features: Value, mask?: { value: Value; sum: number }): Value {
  const [n, c, h, w] = features.shape as number[];
  if (n !== 1) throw new RangeError(`gramMatrix: expected one image, got a batch of ${n}`);
  const masked = mask ? F.mul(features, mask.value) : features;
  const rows = F.reshape(masked, [c, h * w]);
  const gram = F.matmul(rows, F.transpose(rows, [1, 0]));
  return F.scale(gram, 1 / (c * (mask ? Math.max(mask.sum, 1e-8) : h * w)));
}

/** Mean squared difference, optionally weighted per pixel by a mask [1, 1, H, W]. */
export function meanSquaredError(a: Value, b: Value, weight?: Value): Value {
  const squared = F.square(F.sub(a, b));
  return F.reduceMean(weight ? F.mul(squared, weight) : squared);
}

/** Total variation: Σ of squared differences between horizontal and vertical neighbours. */
export function totalVariation(image: Value): Value {
  const dx = F.sub(F.crop2d(image, [0, 1, 0, 0]), F.crop2d(image, [0, 0, 0, 1]));
  const dy = F.sub(F.crop2d(image, [1, 0, 0, 0]), F.crop2d(image, [0, 0, 1, 0]));
  return F.add(F.reduceSum(F.square(dx)), F.reduceSum(F.square(dy)));
}

/** A weighted sum of scalar terms (skipping zero weights); null when nothing is left. */
export function weightedSum(graph: Graph, terms: readonly { value: Value; weight: number }[]): Value | null {
  let total: Value | null = null;
  for (const { value, weight } of terms) {
    if (weight === 0) continue;
    const scaled = F.scale(value, weight);
    total = total ? F.add(total, scaled) : scaled;
  }
  return total;
}
