/**
 * The training graph of a transformation network (Johnson et al. 2016): one ONNX model per
 * (architecture, batch, size, loss) computing the loss terms and d(loss)/d(parameter) for every
 * network parameter in one onnxruntime run. Parameters are graph inputs, fed at every step, so the
 * optimiser lives outside the graph and one session serves the whole run.
 *
 * Two objectives: the perceptual loss (VGG content + Gram style + total variation), and
 * distillation (a student reproducing a teacher's outputs: pixel MSE plus an optional VGG feature
 * term), which needs no style image.
 */
import { F, Graph, grad, toOnnxBytes, type Value } from '../graph/index.js';
import { buildTransformerInto, transformerParamShapes, type TransformerConfig } from '../nets/transformer.js';
import { buildVgg } from '../nets/vgg.js';
import type { VggWeights } from './gatys-graphs.js';
import { gramMatrix, meanSquaredError, meanTotalVariation, weightedSum } from './losses.js';
import { PERTURBED_INPUT, stabilityTerm, type StabilityLoss } from './stability.js';

export interface PerceptualLoss {
  readonly kind: 'perceptual';
  readonly vgg: VggWeights;
  readonly contentLayers: readonly string[];
  readonly styleLayers: readonly string[];
  /** One weight per style layer. */
  readonly styleLayerWeights: readonly number[];
  /** Blend weight of each style image (their Gram targets are inputs `style<s>.<layer>`). */
  readonly styleBlend: readonly number[];
  readonly contentWeight: number;
  readonly styleWeight: number;
  readonly tvWeight: number;
  readonly pooling?: 'max' | 'avg';
  /** Penalise flicker: f(T(x) + n) against T(f(x)) (see stability.ts); absent or weight 0 leaves it out. */
  readonly stability?: StabilityLoss;
}

export interface DistillLoss {
  readonly kind: 'distill';
  /** Weight of the pixel MSE between student and teacher (0..255 units). */
  readonly pixelWeight: number;
  /** Weight of the VGG feature MSE at `featureLayer`; 0 leaves VGG out of the graph. */
  readonly featureWeight: number;
  readonly featureLayer?: string;
  readonly vgg?: VggWeights;
  readonly stability?: StabilityLoss;
}

export type TrainingLoss = PerceptualLoss | DistillLoss;

export interface TrainingGraphSpec {
  readonly config: TransformerConfig;
  readonly batch: number;
  readonly size: number;
  readonly loss: TrainingLoss;
}

/** Names of the weighted loss terms, in a fixed order; the graph outputs them as `loss.<term>`. */
export function lossTermNames(loss: Pick<TrainingLoss, 'kind' | 'stability'>): string[] {
  return [...(loss.kind === 'perceptual' ? ['content', 'style', 'tv'] : ['pixel', 'feature']), ...(hasStability(loss) ? ['stability'] : [])];
}

/** Whether the loss has an active stability term (and the graph the inputs it needs). */
export const hasStability = (loss: Pick<TrainingLoss, 'stability'>): boolean => (loss.stability?.weight ?? 0) > 0;

/** The graph output holding a weighted loss term. */
export const termName = (term: string): string => `loss.${term}`;

/** The graph output holding d(loss)/d(param). */
export const gradName = (param: string): string => `grad.${param}`;

/**
 * The training model. Inputs: `content` [B, 3, S, S] (photos, RGB 0..255), every network
 * parameter by name, and `style<s>.<layer>` Gram targets [C, C] (perceptual) or `teacher`
 * [B, 3, S, S] (distillation); with a stability term also `perturbed` [B, 3, S, S] and
 * `stability.kernel` (see stability.ts). Outputs: the scalar `loss`, its weighted terms `loss.<term>` (`lossTermNames`) and
 * `grad.<param>` for every parameter.
 */
export function trainingGraph(spec: TrainingGraphSpec): Graph {
  const { config, batch, size, loss } = spec;
  const graph = new Graph();
  const content = graph.input('content', [batch, 3, size, size]);
  // With the stability term the photos and their perturbed copies run as one batch of 2B.
  const stable = hasStability(loss);
  const input = stable ? F.concat([content, graph.input(PERTURBED_INPUT, [batch, 3, size, size])], 0) : content;
  const { output: both, params } = buildTransformerInto(graph, input, config, 'inputs', { clip: false });
  const output = stable ? F.slice(both, 0, 0, batch) : both;
  const terms = loss.kind === 'perceptual' ? perceptualTerms(graph, content, output, loss) : distillTerms(graph, output, loss, batch, size);
  if (stable) terms.push(term(graph, 'stability', () => stabilityTerm(graph, both, batch, loss.stability!), loss.stability!.weight));
  const total = weightedSum(graph, terms.filter((t) => t.weight !== 0).map((t) => ({ value: t.value, weight: 1 })));
  if (!total) throw new RangeError('Every loss weight is zero: nothing to train');
  const names = [...transformerParamShapes(config).keys()];
  const wrt = names.map((name) => params.get(name)!);
  const grads = grad(total, wrt);
  graph.output(total, 'loss');
  for (const t of terms) graph.output(t.value, termName(t.name));
  names.forEach((name, i) => graph.output(grads[i], gradName(name)));
  return graph;
}

/** `trainingGraph` serialised for onnxruntime. */
export function trainingModel(spec: TrainingGraphSpec): Uint8Array {
  return toOnnxBytes(trainingGraph(spec));
}

interface Term {
  readonly name: string;
  readonly value: Value;
  readonly weight: number;
}

/** A weighted term, or a zero constant when its weight is 0 (so every output always exists). */
function term(graph: Graph, name: string, value: () => Value, weight: number): Term {
  return { name, weight, value: weight === 0 ? graph.scalar(0, `${name}_zero`) : F.scale(value(), weight) };
}

function perceptualTerms(graph: Graph, content: Value, output: Value, loss: PerceptualLoss): Term[] {
  const { vgg, contentLayers, styleLayers } = loss;
  if (loss.styleLayerWeights.length !== styleLayers.length) {
    throw new RangeError(`Expected ${styleLayers.length} style layer weights but received ${loss.styleLayerWeights.length}`);
  }
  const pooling = loss.pooling ?? 'max';
  const vggOptions = { depth: vgg.depth, pooling, preprocessing: vgg.preprocessing } as const;
  // VGG on the output: every tap, differentiated. On the photos: only up to the content layers, forward only.
  const outTaps = buildVgg(graph, output, vgg.params, { ...vggOptions, taps: [...new Set([...contentLayers, ...styleLayers])] });
  const contentTaps = contentLayers.length > 0 && loss.contentWeight !== 0
    ? buildVgg(graph, content, vgg.params, { ...vggOptions, taps: [...contentLayers] })
    : new Map<string, Value>();

  const contentLoss = (): Value => weightedSum(graph, contentLayers.map((layer) => ({
    value: meanSquaredError(outTaps.get(layer)!, contentTaps.get(layer)!),
    weight: 1 / contentLayers.length,
  })))!;
  const styleLoss = (): Value => {
    const grams = new Map(styleLayers.map((layer) => [layer, gramMatrix(outTaps.get(layer)!)]));
    const parts = loss.styleBlend.flatMap((blend, s) => styleLayers.map((layer, l) => {
      const c = outTaps.get(layer)!.shape[1] as number;
      const target = graph.input(`style${s}.${layer}`, [c, c]);
      return { value: meanSquaredError(grams.get(layer)!, target), weight: blend * loss.styleLayerWeights[l] };
    }));
    return weightedSum(graph, parts) ?? graph.scalar(0, 'style_zero');
  };
  return [
    term(graph, 'content', contentLoss, contentLayers.length > 0 ? loss.contentWeight : 0),
    term(graph, 'style', styleLoss, styleLayers.length > 0 ? loss.styleWeight : 0),
    term(graph, 'tv', () => meanTotalVariation(output), loss.tvWeight),
  ];
}

function distillTerms(graph: Graph, output: Value, loss: DistillLoss, batch: number, size: number): Term[] {
  const teacher = graph.input('teacher', [batch, 3, size, size]);
  const feature = (): Value => {
    if (!loss.vgg || !loss.featureLayer) throw new RangeError('A feature loss needs VGG weights and a layer');
    const options = { depth: loss.vgg.depth, pooling: 'max', preprocessing: loss.vgg.preprocessing, taps: [loss.featureLayer] } as const;
    const student = buildVgg(graph, output, loss.vgg.params, options).get(loss.featureLayer)!;
    const target = buildVgg(graph, teacher, loss.vgg.params, options).get(loss.featureLayer)!;
    return meanSquaredError(student, target);
  };
  return [
    term(graph, 'pixel', () => meanSquaredError(output, teacher), loss.pixelWeight),
    term(graph, 'feature', feature, loss.featureWeight),
  ];
}
