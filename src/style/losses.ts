/**
 * Perceptual losses (Gatys et al. 2015; Johnson et al. 2016), as graph compositions on the VGG
 * loss network: content (feature MSE), style (Gram-matrix MSE, optionally guided by a mask) and
 * total variation. Shared by Gatys optimisation and network training.
 */
import { F, type Graph, type Value } from '../graph/index.js';

/** The perceptual loss's weights and VGG layers, as `optimizeImage` and `trainTransformer` take them. */
export interface PerceptualLossOptions {
  readonly contentWeight?: number;
  readonly styleWeight?: number;
  readonly tvWeight?: number;
  readonly contentLayers?: readonly string[];
  readonly styleLayers?: readonly string[];
  /** One weight per style layer (default: 1 each). */
  readonly styleLayerWeights?: readonly number[];
}

/**
 * Gram matrices of a batch of features [N, C, H, W] → [N, C, C], each normalised by C·H·W (or
 * C·Σmask when masked). A target Gram [C, C] broadcasts against the batch in `meanSquaredError`.
 */
export function gramMatrix(features: Value, mask?: { value: Value; sum: number }): Value {
  const [n, c, h, w] = features.shape as number[];
  if (![n, c, h, w].every((d) => typeof d === 'number')) throw new RangeError(`gramMatrix: needs concrete features, got [${features.shape.join(', ')}]`);
  const masked = mask ? F.mul(features, mask.value) : features;
  const rows = F.reshape(masked, [n, c, h * w]);
  const gram = F.matmul(rows, F.transpose(rows, [0, 2, 1]));
  return F.scale(gram, 1 / (c * (mask ? Math.max(mask.sum, 1e-8) : h * w)));
}

/** Mean squared difference, optionally weighted per pixel by a mask [1, 1, H, W]. */
export function meanSquaredError(a: Value, b: Value, weight?: Value): Value {
  const squared = F.square(F.sub(a, b));
  return F.reduceMean(weight ? F.mul(squared, weight) : squared);
}

/** Total variation: Σ of squared differences between horizontal and vertical neighbours (Gatys optimisation's form). */
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

/**
 * Total variation as a mean over the batch's neighbour pairs (lengstrom/fast-style-transfer's
 * form): independent of batch and image size, so one weight serves every training setup.
 */
export function meanTotalVariation(image: Value): Value {
  const dx = F.sub(F.crop2d(image, [0, 1, 0, 0]), F.crop2d(image, [0, 0, 0, 1]));
  const dy = F.sub(F.crop2d(image, [1, 0, 0, 0]), F.crop2d(image, [0, 0, 1, 0]));
  return F.add(F.reduceMean(F.square(dx)), F.reduceMean(F.square(dy)));
}
