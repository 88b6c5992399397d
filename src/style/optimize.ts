/**
 * Gatys et al. (2015) style transfer by optimisation: the image itself is optimised (L-BFGS or
 * Adam) so that its VGG features match the content image and its Gram matrices the style
 * image(s). Coarse-to-fine schedules, several styles with blend weights, spatial masks, colour
 * preservation and texture synthesis are options of the one loop here.
 */
import { withModel, type Model, type RuntimeOptions } from '../runtime/index.js';
import { matchColorStatistics, preserveLuminance } from '../image/color.js';
import { fitLongerSide, resizeImage } from '../image/resize.js';
import { createImage, type RgbImage } from '../image/types.js';
import { checkTaps } from '../nets/vgg.js';
import { throwIfAborted } from '../util/errors.js';
import { expectInteger, expectNumber, expectOneOf } from '../util/validate.js';
import type { PerceptualLossOptions } from './losses.js';
import { lossModel, targetsModel, type LossLayers, type VggWeights } from './gatys-graphs.js';
import { Adam } from './optim/adam.js';
import { Lbfgs } from './optim/lbfgs.js';
import type { Optimizer } from './optim/objective.js';

export interface StyleInput {
  readonly image: RgbImage;
  /** Blend weight (relative to the other styles; default 1). */
  readonly weight?: number;
  /** Where this style applies: [H·W] in 0..1 at the content's size (a guided Gram matrix). */
  readonly mask?: { readonly data: Float32Array; readonly width: number; readonly height: number };
}

export interface OptimizeOptions extends PerceptualLossOptions {
  /** The content image; without one the result is a texture synthesised from the style(s). */
  readonly content?: RgbImage;
  readonly styles: readonly StyleInput[];
  readonly vgg: VggWeights;
  /** Output size: longer side in pixels (default 512, or the content's size if smaller). */
  readonly size?: number;
  /** Coarse-to-fine longer sides, e.g. [256, 512, 1024]; the last one is the output size. */
  readonly scales?: readonly number[];
  /** Iterations per scale (default 300). */
  readonly iterations?: number;
  readonly optimizer?: 'lbfgs' | 'adam';
  /** Adam's step in grey levels (default 10); L-BFGS's step multiplier (default 1). */
  readonly learningRate?: number;
  readonly pooling?: 'max' | 'avg';
  readonly init?: 'content' | 'noise' | 'style';
  readonly seed?: number;
  /** Style images are resized to this fraction of the output's longer side (default 1). */
  readonly styleScale?: number;
  readonly preserveColors?: 'luminance' | 'histogram';
  /** Where the content loss applies: [H·W] in 0..1 at the content's size. */
  readonly contentMask?: { readonly data: Float32Array; readonly width: number; readonly height: number };
  readonly runtime?: RuntimeOptions;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: OptimizeProgress) => void;
  /** Called every `snapshotEvery` iterations with the current image. */
  readonly onSnapshot?: (image: RgbImage, p: OptimizeProgress) => Promise<void> | void;
  readonly snapshotEvery?: number;
}

export interface LossTerms {
  readonly loss: number;
  readonly content: number;
  readonly style: number;
  readonly tv: number;
}

export interface OptimizeProgress extends LossTerms {
  /** Iteration within the current scale, from 1. */
  readonly iteration: number;
  readonly iterations: number;
  /** Index of the current scale in the schedule and their count. */
  readonly scale: number;
  readonly scales: number;
  readonly width: number;
  readonly height: number;
  readonly evaluations: number;
}

export interface OptimizeResult {
  readonly image: RgbImage;
  /** Loss terms at the first and last evaluation of each scale. */
  readonly history: { first: LossTerms; last: LossTerms; width: number; height: number; iterations: number }[];
  readonly evaluations: number;
  readonly seconds: number;
  /** True when stopped early by the signal (the image is the best so far). */
  readonly aborted: boolean;
}

/** From this many pixels on, Gatys graphs run without onnxruntime's memory pattern. */
export const LARGE_IMAGE_PIXELS = 1_000_000;

export const DEFAULT_CONTENT_LAYERS = ['relu4_2'];
export const DEFAULT_STYLE_LAYERS = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'];
export const DEFAULTS = { size: 512, iterations: 300, contentWeight: 5, styleWeight: 100, tvWeight: 1e-3, styleScale: 1 } as const;

/** ITU-R BT.601 luma, replicated into three channels. */
function greyscale(image: RgbImage): RgbImage {
  const n = image.width * image.height;
  const out = createImage(image.width, image.height);
  for (let i = 0; i < n; i++) {
    const y = 0.299 * image.data[i] + 0.587 * image.data[n + i] + 0.114 * image.data[2 * n + i];
    out.data[i] = y; out.data[n + i] = y; out.data[2 * n + i] = y;
  }
  return out;
}

/** Seeded xorshift noise around mid-grey. */
function noiseImage(width: number, height: number, seed: number): RgbImage {
  let s = seed >>> 0 || 0x9e3779b9;
  const image = createImage(width, height);
  for (let i = 0; i < image.data.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    image.data[i] = 64 + (s / 0x100000000) * 128;
  }
  return image;
}

async function resizeMask(mask: NonNullable<StyleInput['mask']>, width: number, height: number): Promise<Float32Array> {
  if (mask.width === width && mask.height === height) return mask.data;
  const n = mask.width * mask.height;
  const grey = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) grey[c * n + i] = mask.data[i] * 255;
  const resized = await resizeImage({ data: grey, width: mask.width, height: mask.height }, width, height);
  return resized.data.slice(0, width * height).map((v) => v / 255);
}

/**
 * A mask is resized to the content at every scale, so it must have the content's aspect ratio
 * (within 2%): a stretched mask would put each style in the wrong place.
 * @throws RangeError naming `what` and both sizes when the ratios differ.
 */
export function checkMaskAspect(what: string, mask: { readonly width: number; readonly height: number }, content: { readonly width: number; readonly height: number }): void {
  const ratio = (mask.width / mask.height) / (content.width / content.height);
  if (Math.abs(ratio - 1) > 0.02) {
    throw new RangeError(`The ${what} is ${mask.width}x${mask.height} but the content is ${content.width}x${content.height}: their aspect ratios differ`);
  }
}

function validate(options: OptimizeOptions): void {
  if (options.styles.length === 0) throw new RangeError('Expected at least one style image');
  if (options.size !== undefined) expectInteger('size', options.size, 16, 16384);
  options.scales?.forEach((s, i) => expectInteger(`scales[${i}]`, s, 16, 16384));
  if (options.iterations !== undefined) expectInteger('iterations', options.iterations, 0, 100000);
  if (options.optimizer !== undefined) expectOneOf('optimizer', options.optimizer, ['lbfgs', 'adam']);
  for (const key of ['contentWeight', 'styleWeight', 'tvWeight'] as const) if (options[key] !== undefined) expectNumber(key, options[key], 0);
  if (options.styleScale !== undefined) expectNumber('styleScale', options.styleScale, 0.05, 8);
  if (options.learningRate !== undefined) expectNumber('learningRate', options.learningRate, 0);
  if (options.init !== undefined) expectOneOf('init', options.init, ['content', 'noise', 'style']);
  if (options.preserveColors !== undefined) expectOneOf('preserveColors', options.preserveColors, ['luminance', 'histogram']);
  options.styles.forEach((s, i) => s.weight !== undefined && expectNumber(`styles[${i}].weight`, s.weight, 0));
  const content = options.content;
  for (const [what, mask] of [...options.styles.map((s, i) => [`style mask ${i + 1}`, s.mask] as const), ['content mask', options.contentMask] as const]) {
    if (!mask) continue;
    if (!content) throw new RangeError(`A ${what} needs a content image to match`);
    checkMaskAspect(what, mask, content);
  }
  const layers = [...(options.contentLayers ?? []), ...(options.styleLayers ?? [])];
  checkTaps(options.vgg.depth, layers);
  if (options.styleLayerWeights && options.styleLayerWeights.length !== (options.styleLayers ?? DEFAULT_STYLE_LAYERS).length) {
    throw new RangeError(`Expected ${(options.styleLayers ?? DEFAULT_STYLE_LAYERS).length} style layer weights but received ${options.styleLayerWeights.length}`);
  }
}

/** Runs the whole schedule; see OptimizeOptions. */
export async function optimizeImage(options: OptimizeOptions): Promise<OptimizeResult> {
  validate(options);
  const started = performance.now();
  const baseRuntime = options.runtime ?? {};
  const styleLayers = options.styleLayers ?? DEFAULT_STYLE_LAYERS;
  const layers: LossLayers = {
    content: options.contentLayers ?? DEFAULT_CONTENT_LAYERS,
    style: styleLayers,
    // Each layer at full weight, as in jcjohnson/neural-style (whose weight defaults these are).
    styleLayerWeights: options.styleLayerWeights ?? styleLayers.map(() => 1),
    pooling: options.pooling ?? 'max',
  };
  const weights = { content: options.contentWeight ?? DEFAULTS.contentWeight, style: options.styleWeight ?? DEFAULTS.styleWeight, tv: options.tvWeight ?? DEFAULTS.tvWeight };
  const luminanceOnly = options.preserveColors === 'luminance';
  let content = options.content;
  let styles = options.styles.map((s) => ({ ...s, weight: s.weight ?? 1 }));
  if (options.preserveColors === 'histogram' && content) {
    styles = styles.map((s) => ({ ...s, image: matchColorStatistics(s.image, content!) }));
  }
  if (luminanceOnly) {
    styles = styles.map((s) => ({ ...s, image: greyscale(s.image) }));
  }
  const originalContent = content;
  if (luminanceOnly && content) content = greyscale(content);

  // Output size and schedule.
  const base = content ?? styles[0].image;
  const finalSide = options.scales?.at(-1) ?? options.size ?? Math.min(DEFAULTS.size, Math.max(base.width, base.height));
  const schedule = (options.scales ?? [finalSide]).map((side) => fitLongerSide(base.width, base.height, side));
  const masked = styles.some((s) => s.mask);
  // Without masks, several styles blend into one target Gram per layer.
  const styleTerms = masked ? styles.map((s) => ({ weight: s.weight })) : [{ weight: 1 }];
  const totalStyleWeight = styles.reduce((a, s) => a + s.weight, 0) || 1;

  const history: OptimizeResult['history'] = [];
  let image: RgbImage | null = null;
  let evaluations = 0;
  let aborted = false;
  const iterations = options.iterations ?? DEFAULTS.iterations;

  for (const [scaleIndex, { width, height }] of schedule.entries()) {
    throwIfAborted(options.signal);
    // Large graphs run without onnxruntime's memory pattern (see RuntimeOptions.memoryPattern).
    const runtime = { ...baseRuntime, memoryPattern: baseRuntime.memoryPattern ?? width * height < LARGE_IMAGE_PIXELS };
    // Targets are computed by sessions made for them and released at once: at 2048² each
    // holds gigabytes that the loss graph needs next.
    const features = (image: RgbImage): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> =>
      withModel(targetsModel(options.vgg, layers, image.width, image.height), runtime, 'VGG targets', async (model) => {
        const out = await model.run({ image: { data: image.data, dims: [1, 3, image.height, image.width] } });
        return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, { data: t.data.slice(), dims: t.dims }]));
      });
    const feeds: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    const scaledContent = content ? await resizeImage(content, width, height) : undefined;
    if (scaledContent) {
      const out = await features(scaledContent);
      for (const layer of layers.content) feeds[`content.${layer}`] = out[`feat.${layer}`];
    }
    // Style Grams at the style's own size (styleScale × the output's longer side).
    const styleSide = Math.round(Math.max(width, height) * (options.styleScale ?? DEFAULTS.styleScale));
    const grams: Record<string, Float32Array>[] = [];
    for (const style of styles) {
      const size = fitLongerSide(style.image.width, style.image.height, styleSide);
      const out = await features(await resizeImage(style.image, size.width, size.height));
      grams.push(Object.fromEntries(layers.style.map((l) => [l, out[`gram.${l}`].data])));
    }
    for (const layer of layers.style) {
      if (masked) {
        grams.forEach((g, s) => { feeds[`style${s}.${layer}`] = { data: g[layer], dims: [Math.sqrt(g[layer].length), Math.sqrt(g[layer].length)] }; });
      } else {
        const blended = new Float32Array(grams[0][layer].length);
        grams.forEach((g, s) => { for (let i = 0; i < blended.length; i++) blended[i] += (styles[s].weight / totalStyleWeight) * g[layer][i]; });
        const c = Math.sqrt(blended.length);
        feeds[`style0.${layer}`] = { data: blended, dims: [c, c] };
      }
    }
    const styleMasks = masked ? await Promise.all(styles.map((s) => (s.mask ? resizeMask(s.mask, width, height) : undefined))) : [];
    const lossBytes = lossModel({
      vgg: options.vgg, layers, weights, width, height, hasContent: Boolean(content),
      styles: styleTerms.map((t, s) => ({ weight: t.weight, mask: styleMasks[s] })),
      contentMask: options.contentMask ? await resizeMask(options.contentMask, width, height) : undefined,
    });

    // Initial image: the previous scale's result, upsampled; else the chosen init.
    let start: RgbImage;
    if (image) start = await resizeImage(image, width, height);
    else if ((options.init ?? (content ? 'content' : 'noise')) === 'content' && scaledContent) start = scaledContent;
    else if (options.init === 'style') start = await resizeImage(styles[0].image, width, height);
    else start = noiseImage(width, height, options.seed ?? 1);
    const x = start.data.slice();

    const result = await withModel(lossBytes, runtime, 'Gatys loss', (loss) => runScale(loss, feeds, x, width, height, {
      iterations, optimizer: options.optimizer ?? 'lbfgs', learningRate: options.learningRate,
      signal: options.signal, scale: scaleIndex, scales: schedule.length,
      onProgress: options.onProgress, onSnapshot: options.onSnapshot, snapshotEvery: options.snapshotEvery,
      evaluationsBefore: evaluations,
    }));
    evaluations += result.evaluations;
    image = { data: result.best, width, height };
    history.push({ first: result.first, last: result.last, width, height, iterations: result.iterations });
    if (result.aborted) {
      aborted = true;
      break;
    }
  }
  let output = clampImage(image!);
  if (luminanceOnly && originalContent) output = preserveLuminance(output, await resizeImage(originalContent, output.width, output.height));
  return { image: output, history, evaluations, seconds: (performance.now() - started) / 1000, aborted };
}

function clampImage(image: RgbImage): RgbImage {
  return { ...image, data: image.data.map((v) => (v < 0 ? 0 : v > 255 ? 255 : v)) };
}

/**
 * L-BFGS keeps 2 vectors per curvature pair: 20 pairs at up to ~1 MP, fewer above so the history
 * stays within 1 GiB (a 2048² image has 12.6 M values: 10 pairs), at least 5.
 */
function historySizeFor(values: number): number {
  return Math.max(5, Math.min(20, Math.floor(2 ** 30 / (8 * values))));
}

interface ScaleOptions {
  readonly iterations: number;
  readonly optimizer: 'lbfgs' | 'adam';
  readonly learningRate?: number;
  readonly signal?: AbortSignal;
  readonly scale: number;
  readonly scales: number;
  readonly evaluationsBefore: number;
  readonly onProgress?: OptimizeOptions['onProgress'];
  readonly onSnapshot?: OptimizeOptions['onSnapshot'];
  readonly snapshotEvery?: number;
}

/** One scale of the schedule: the optimiser loop, tracking the best image seen. */
async function runScale(
  model: Model, targets: Record<string, { data: Float32Array; dims: readonly number[] }>, x: Float32Array,
  width: number, height: number, options: ScaleOptions,
): Promise<{ best: Float32Array; first: LossTerms; last: LossTerms; evaluations: number; iterations: number; aborted: boolean }> {
  let first: LossTerms | null = null;
  let latest: LossTerms = { loss: Number.NaN, content: Number.NaN, style: Number.NaN, tv: Number.NaN };
  let best = { loss: Infinity, x: x.slice(), terms: latest };
  const objective = async (point: Float32Array): Promise<{ loss: number; grad: Float32Array }> => {
    const out = await model.run({ ...targets, image: { data: point, dims: [1, 3, height, width] } });
    latest = { loss: out.loss.data[0], content: out.content_loss.data[0], style: out.style_loss.data[0], tv: out.tv_loss.data[0] };
    first ??= latest;
    if (latest.loss < best.loss) best = { loss: latest.loss, x: point.slice(), terms: latest };
    return { loss: latest.loss, grad: out.grad.data };
  };
  const optimizer: Optimizer & { evaluations: number } = options.optimizer === 'adam'
    ? new Adam(objective, x, { learningRate: options.learningRate })
    : new Lbfgs(objective, x, { learningRate: options.learningRate, historySize: historySizeFor(x.length) });
  let iteration = 0;
  let aborted = false;
  while (iteration < options.iterations) {
    if (options.signal?.aborted) {
      aborted = true;
      break;
    }
    const step = await optimizer.step();
    iteration++;
    const progress: OptimizeProgress = {
      ...best.terms, iteration, iterations: options.iterations, scale: options.scale, scales: options.scales,
      width, height, evaluations: options.evaluationsBefore + optimizer.evaluations,
    };
    options.onProgress?.(progress);
    if (options.onSnapshot && options.snapshotEvery && iteration % options.snapshotEvery === 0) {
      await options.onSnapshot(clampImage({ data: best.x, width, height }), progress);
    }
    if (step.converged) break;
  }
  if (first === null) await objective(x); // zero iterations: still report the loss
  return { best: best.x, first: first ?? latest, last: best.terms, evaluations: optimizer.evaluations, iterations: iteration, aborted };
}
