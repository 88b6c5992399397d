/**
 * The two graphs of Gatys optimisation at one image size: a forward-only "targets" graph giving
 * content features and style Gram matrices of an image, and the loss graph computing the total
 * loss, its terms and d(loss)/d(image) in one onnxruntime run.
 */
import { F, Graph, grad, toOnnxBytes, type Tensor, type Value } from '../graph/index.js';
import { buildVgg, type VggDepth, type VggPreprocessing } from '../nets/vgg.js';
import { gramMatrix, meanSquaredError, totalVariation, weightedSum } from './losses.js';

export interface VggWeights {
  readonly params: ReadonlyMap<string, Tensor>;
  readonly depth: VggDepth;
  readonly preprocessing: VggPreprocessing;
}

export interface LossLayers {
  readonly content: readonly string[];
  readonly style: readonly string[];
  /** One weight per style layer. */
  readonly styleLayerWeights: readonly number[];
  readonly pooling: 'max' | 'avg';
}

export interface LossWeights {
  readonly content: number;
  readonly style: number;
  readonly tv: number;
}

/** Features and Grams of one image: outputs `feat.<layer>` and `gram.<layer>`. */
export function targetsModel(vgg: VggWeights, layers: LossLayers, width: number, height: number): Uint8Array {
  const graph = new Graph();
  const image = graph.input('image', [1, 3, height, width]);
  const taps = buildVgg(graph, image, vgg.params, { depth: vgg.depth, pooling: layers.pooling, preprocessing: vgg.preprocessing, taps: [...new Set([...layers.content, ...layers.style])] });
  for (const layer of layers.content) graph.output(taps.get(layer)!, `feat.${layer}`);
  for (const layer of layers.style) graph.output(gramMatrix(taps.get(layer)!), `gram.${layer}`);
  return toOnnxBytes(graph);
}

/** Averages a [H, W] mask over 2x2 blocks (floor), as VGG's pooling shrinks the feature maps. */
function shrinkMask(mask: Float32Array, width: number, height: number): { mask: Float32Array; width: number; height: number } {
  const w = Math.floor(width / 2);
  const h = Math.floor(height / 2);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 2 * y * width + 2 * x;
      out[y * w + x] = (mask[i] + mask[i + 1] + mask[i + width] + mask[i + width + 1]) / 4;
    }
  }
  return { mask: out, width: w, height: h };
}

/** The mask at a feature map's resolution, as a [1, 1, h, w] constant, plus its sum. */
function maskAt(graph: Graph, mask: Float32Array, width: number, height: number, feature: Value, name: string): { value: Value; sum: number } {
  let current = { mask, width, height };
  const [, , h, w] = feature.shape as number[];
  while (current.height > h || current.width > w) current = shrinkMask(current.mask, current.width, current.height);
  if (current.height !== h || current.width !== w) throw new Error(`mask of ${width}x${height} does not reduce to the ${w}x${h} features`);
  const sum = current.mask.reduce((a, b) => a + b, 0);
  return { value: graph.constant({ data: current.mask, shape: [1, 1, h, w] }, name), sum };
}

export interface LossModelSpec {
  readonly vgg: VggWeights;
  readonly layers: LossLayers;
  readonly weights: LossWeights;
  readonly width: number;
  readonly height: number;
  /** Whether a content image constrains the result (texture synthesis has none). */
  readonly hasContent: boolean;
  /** One entry per style term: its weight and optional spatial mask [H·W] in 0..1. */
  readonly styles: readonly { weight: number; mask?: Float32Array }[];
  readonly contentMask?: Float32Array;
}

/**
 * The loss graph. Inputs: `image` [1, 3, H, W]; `content.<layer>` target features;
 * `style<s>.<layer>` target Grams. Outputs: `loss`, `content_loss`, `style_loss`, `tv_loss`, `grad`.
 */
export function lossModel(spec: LossModelSpec): Uint8Array {
  const { vgg, layers, weights, width, height } = spec;
  const graph = new Graph();
  const image = graph.input('image', [1, 3, height, width]);
  const contentLayers = spec.hasContent && weights.content !== 0 ? layers.content : [];
  const taps = buildVgg(graph, image, vgg.params, { depth: vgg.depth, pooling: layers.pooling, preprocessing: vgg.preprocessing, taps: [...new Set([...contentLayers, ...layers.style])] });

  const contentTerms = contentLayers.map((layer) => {
    const feature = taps.get(layer)!;
    const target = graph.input(`content.${layer}`, feature.shape);
    const mask = spec.contentMask ? maskAt(graph, spec.contentMask, width, height, feature, `content_mask_${layer}`).value : undefined;
    return { value: meanSquaredError(feature, target, mask), weight: 1 / contentLayers.length };
  });
  const styleTerms = spec.styles.flatMap((style, s) => layers.style.map((layer, l) => {
    const feature = taps.get(layer)!;
    const c = feature.shape[1] as number;
    const target = graph.input(`style${s}.${layer}`, [c, c]);
    const mask = style.mask ? maskAt(graph, style.mask, width, height, feature, `style${s}_mask_${layer}`) : undefined;
    return { value: meanSquaredError(gramMatrix(feature, mask), target), weight: style.weight * layers.styleLayerWeights[l] };
  }));

  const zero = graph.scalar(0, 'zero');
  const contentLoss = weightedSum(graph, contentTerms) ?? zero;
  const styleLoss = weightedSum(graph, styleTerms) ?? zero;
  const tvLoss = totalVariation(image);
  const loss = weightedSum(graph, [
    { value: contentLoss, weight: weights.content },
    { value: styleLoss, weight: weights.style },
    { value: tvLoss, weight: weights.tv },
  ]);
  if (!loss) throw new RangeError('Every loss weight is zero: nothing to optimise');
  const [dImage] = grad(loss, [image]);
  graph.output(loss, 'loss');
  graph.output(F.scale(contentLoss, weights.content), 'content_loss');
  graph.output(F.scale(styleLoss, weights.style), 'style_loss');
  graph.output(F.scale(tvLoss, weights.tv), 'tv_loss');
  graph.output(dImage, 'grad');
  return toOnnxBytes(graph);
}
