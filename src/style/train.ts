/**
 * Training a transformation network (Johnson et al. 2016) with the perceptual loss on a folder of
 * photos, or distilling a teacher network into a (smaller) student. The training graph gives the
 * loss and every parameter's gradient in one onnxruntime run (train-graph.ts); Adam updates the
 * parameters in TypeScript between runs; the photo loader decodes the next batches meanwhile.
 * Checkpoints carry everything needed to continue bit for bit.
 */
import { createHash } from 'node:crypto';
import { totalmem } from 'node:os';
import { Graph, toOnnxBytes, type Tensor } from '../graph/index.js';
import { buildTransformer, buildTransformerInto, initTransformerParams, transformerParamShapes, type TransformerConfig } from '../nets/transformer.js';
import { checkTaps } from '../nets/vgg.js';
import { clampToPixelRange } from '../image/pixels.js';
import { fitLongerSide, resizeImage } from '../image/resize.js';
import type { RgbImage } from '../image/types.js';
import { Model, withModel, type RuntimeOptions } from '../runtime/index.js';
import { throwIfAborted } from '../util/errors.js';
import { expectInteger, expectNumber } from '../util/validate.js';
import { targetsModel, type VggWeights } from './gatys-graphs.js';
import { Adam } from './optim/adam.js';
import type { PerceptualLossOptions } from './losses.js';
import { gradName, lossTermNames, termName, trainingModel, type TrainingLoss } from './train-graph.js';
import type { LossEntry, TrainRecord, TrainState } from './train-checkpoint.js';
import { PhotoLoader } from './train-data.js';
import { KERNEL_INPUT, PERTURBED_INPUT, checkStability, perturbBatch, stabilityRadius, type StabilityLoss } from './stability.js';

export const TRAIN_DEFAULTS = {
  batch: 4, size: 256, styleSize: 512, steps: 10_000, learningRate: 1e-3, seed: 1,
  contentWeight: 7.5, styleWeight: 100, tvWeight: 200, pixelWeight: 1, featureWeight: 0,
  checkpointEvery: 500, previewEvery: 500,
} as const;
export const TRAIN_CONTENT_LAYERS = ['relu4_2'];
export const TRAIN_STYLE_LAYERS = ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'];
export const DISTILL_FEATURE_LAYER = 'relu2_2';

/**
 * Peak memory per training pixel (batch × size²), measured with VGG19 to relu5_1 at batch 4, 256²
 * (3.6 GiB): the basis of the up-front refusal of a batch and size that would not fit.
 */
export const BYTES_PER_TRAINING_PIXEL = 14_000;
const FIXED_BYTES = 600 * 2 ** 20;

export interface TrainStyle {
  readonly image: RgbImage;
  /** Blend weight relative to the other styles (default 1). */
  readonly weight?: number;
  /** What to record about it (file name). */
  readonly name: string;
  /** Where it was read from, recorded so a resume can read it again. */
  readonly path?: string;
}

export interface TrainTeacher {
  readonly session: Model;
  readonly input: string;
  readonly output: string;
  readonly label: string;
}

export interface TrainProgress {
  /** Steps completed, and the run's total. */
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
  readonly terms: Readonly<Record<string, number>>;
  readonly epoch: number;
  readonly imagesPerSecond: number;
  readonly etaSeconds: number;
  /** Milliseconds this step waited for its photos (0 when decoding kept ahead). */
  readonly dataWaitMs: number;
  readonly stepMs: number;
}

export interface TrainOptions extends PerceptualLossOptions {
  readonly architecture: { readonly name: string; readonly config: TransformerConfig };
  /** Photos (paths), e.g. from `listPhotos`. */
  readonly photos: readonly string[];
  /** The folder they came from, for the record. */
  readonly dataLabel?: string;
  /** Style images (perceptual loss), or a teacher (distillation): exactly one of the two. */
  readonly styles?: readonly TrainStyle[];
  readonly teacher?: TrainTeacher;
  readonly vgg?: VggWeights;
  /** Where the VGG weights came from, for the record. */
  readonly vggSource?: string;
  /** The model's name, for the record (not part of what a resume must match). */
  readonly name?: string;
  readonly batch?: number;
  readonly size?: number;
  /** Longer side of the style images when their Gram targets are computed (default 512). */
  readonly styleSize?: number;
  readonly steps?: number;
  readonly learningRate?: number;
  readonly seed?: number;
  readonly pixelWeight?: number;
  readonly featureWeight?: number;
  readonly featureLayer?: string;
  /** Penalise flicker (stability.ts): weight 0 or absent leaves it out. Works with both objectives. */
  readonly stability?: StabilityLoss;
  /** Starting parameters (fine-tuning); default a fresh seeded initialisation. */
  readonly init?: { readonly params: ReadonlyMap<string, Tensor>; readonly label: string };
  /** Continue this checkpoint (its record must match these options). */
  readonly resume?: TrainState;
  /** Refuse a batch × size whose estimated peak exceeds this many bytes (default 85% of RAM). */
  readonly memoryBudget?: number;
  readonly runtime?: RuntimeOptions;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: TrainProgress) => void;
  readonly onSkip?: (file: string, reason: string) => void;
  /** Called every `checkpointEvery` steps, at the end, and when aborted. */
  readonly onCheckpoint?: (state: TrainState) => Promise<void>;
  readonly checkpointEvery?: number;
  /** Called every `previewEvery` steps (and at the end) with the network's outputs on `previewPhotos`. */
  readonly onPreview?: (outputs: readonly RgbImage[], state: TrainState) => Promise<void>;
  readonly previewEvery?: number;
  readonly previewPhotos?: readonly RgbImage[];
}

export interface TrainResult {
  readonly state: TrainState;
  /** The trained network as an inference ONNX model (symbolic H and W). */
  readonly onnx: Uint8Array;
  readonly aborted: boolean;
  /** Photos this session's loader could not read (skipped, with their reasons). */
  readonly skippedPhotos: ReadonlyMap<string, string>;
}

/** Estimated peak bytes of a training step. */
export function estimateTrainingBytes(batch: number, size: number): number {
  return FIXED_BYTES + BYTES_PER_TRAINING_PIXEL * batch * size * size;
}

/**
 * Refuses a batch × size whose estimated peak (`estimateTrainingBytes`) exceeds `budget`: checked
 * before anything is read, so a run that cannot fit fails at once rather than hours in.
 * @throws RangeError stating the estimate and the budget.
 */
export function checkTrainingMemory(batch: number, size: number, budget = 0.85 * totalmem()): void {
  const needed = estimateTrainingBytes(batch, size);
  if (needed > budget) {
    throw new RangeError(`Training at batch ${batch} and ${size}x${size} needs about ${gib(needed)} of memory but the budget is ${gib(budget)}; lower --batch or --size`);
  }
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
const sha256 = (data: Float32Array): string => createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');

function checkOptions(o: TrainOptions): void {
  if ((o.styles?.length ?? 0) > 0 === Boolean(o.teacher)) throw new TypeError('Expected either style images or a teacher model to train from, not both or neither');
  if (o.photos.length === 0) throw new RangeError('Expected at least one training photo');
  if (o.batch !== undefined) expectInteger('batch', o.batch, 1, 256);
  if (o.size !== undefined) expectInteger('size', o.size, 32, 4096);
  if (o.size !== undefined && o.size % 4 !== 0) throw new RangeError(`Expected a multiple of 4 for size (the network halves it twice) but received ${o.size}`);
  if (o.styleSize !== undefined) expectInteger('styleSize', o.styleSize, 32, 8192);
  if (o.steps !== undefined) expectInteger('steps', o.steps, 1, 10_000_000);
  if (o.learningRate !== undefined) expectNumber('learningRate', o.learningRate, 1e-9, 10);
  for (const key of ['contentWeight', 'styleWeight', 'tvWeight', 'pixelWeight', 'featureWeight'] as const) {
    if (o[key] !== undefined) expectNumber(key, o[key], 0);
  }
  if (o.styles && !o.vgg) throw new TypeError('The perceptual loss needs VGG weights (vgg)');
  if (o.vgg) checkTaps(o.vgg.depth, [...(o.contentLayers ?? TRAIN_CONTENT_LAYERS), ...(o.styleLayers ?? TRAIN_STYLE_LAYERS)]);
  const layers = o.styleLayers ?? TRAIN_STYLE_LAYERS;
  if (o.styleLayerWeights && o.styleLayerWeights.length !== layers.length) {
    throw new RangeError(`Expected ${layers.length} style layer weights (one per style layer) but received ${o.styleLayerWeights.length}`);
  }
  for (const s of o.styles ?? []) if (s.weight !== undefined) expectNumber(`weight of style ${s.name}`, s.weight, 0);
  if (o.stability) checkStability(o.stability);
}

/** Gram targets of each style image at `styleSize`: `style<s>.<layer>` → [C, C]. */
async function styleTargets(styles: readonly TrainStyle[], vgg: VggWeights, layers: readonly string[], styleSize: number, runtime: RuntimeOptions): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const targets: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const [s, style] of styles.entries()) {
    const { width, height } = fitLongerSide(style.image.width, style.image.height, Math.min(styleSize, Math.max(style.image.width, style.image.height)));
    const image = width === style.image.width && height === style.image.height ? style.image : await resizeImage(style.image, width, height);
    const bytes = targetsModel(vgg, { content: [], style: layers, styleLayerWeights: layers.map(() => 1), pooling: 'max' }, width, height);
    const out = await withModel(bytes, runtime, `style targets of ${style.name}`, (m) => m.run({ image: { data: image.data, dims: [1, 3, height, width] } }));
    for (const layer of layers) {
      const gram = out[`gram.${layer}`];
      const c = Math.round(Math.sqrt(gram.data.length));
      targets[`style${s}.${layer}`] = { data: gram.data.slice(), dims: [c, c] };
    }
  }
  return targets;
}

type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;

/**
 * Where each network parameter lives in one flat vector (Adam's parameters and moments): views
 * to feed the graph, copies for checkpoints, and the vector made from named tensors.
 */
class ParamLayout {
  private readonly slots = new Map<string, { offset: number; length: number; shape: number[] }>();
  readonly total: number;

  constructor(shapes: ReadonlyMap<string, number[]>, private readonly network: string) {
    let total = 0;
    for (const [name, shape] of shapes) {
      const length = shape.reduce((a, b) => a * b, 1);
      this.slots.set(name, { offset: total, length, shape });
      total += length;
    }
    this.total = total;
  }

  get names(): IterableIterator<string> {
    return this.slots.keys();
  }

  view(vector: Float32Array, name: string): Float32Array {
    const { offset, length } = this.slots.get(name)!;
    return vector.subarray(offset, offset + length);
  }

  /** Every parameter as a graph feed viewing `vector` (no copy). */
  feeds(vector: Float32Array, into: Feeds = {}): Feeds {
    for (const [name, { shape }] of this.slots) into[name] = { data: this.view(vector, name), dims: shape };
    return into;
  }

  /** Copies of every parameter's slice of `vector`, by name. */
  split(vector: Float32Array): Map<string, Float32Array> {
    return new Map([...this.slots.keys()].map((name) => [name, this.view(vector, name).slice()]));
  }

  /** Named tensors as one vector. @throws RangeError naming the first one missing or misshapen. */
  join(parts: ReadonlyMap<string, { readonly data: Float32Array; readonly shape?: readonly number[] }>, what: string): Float32Array {
    const out = new Float32Array(this.total);
    for (const [name, { offset, length, shape }] of this.slots) {
      const part = parts.get(name);
      if (!part || part.data.length !== length) {
        throw new RangeError(`${what} lack '${name}' of shape [${shape.join(', ')}] for the ${this.network} network${part ? ` (it has ${part.shape ? `[${part.shape.join(', ')}]` : `${part.data.length} values`})` : ''}`);
      }
      out.set(part.data, offset);
    }
    return out;
  }

  tensors(vector: Float32Array): Map<string, Tensor> {
    return new Map([...this.slots].map(([name, { shape }]) => [name, { data: this.view(vector, name).slice(), shape }]));
  }
}

/** The inference graph with parameters as inputs: one session renders previews at any step. */
function previewModel(config: TransformerConfig): Uint8Array {
  const graph = new Graph();
  const input = graph.input('image', ['N', 3, 'H', 'W']);
  const { output } = buildTransformerInto(graph, input, config, 'inputs');
  graph.output(output, 'stylized');
  return toOnnxBytes(graph);
}

/**
 * Trains a transformation network. Progress is reported after every step; checkpoints and
 * previews go to the callbacks. Aborting (`signal`) stops after the current step, checkpoints,
 * and returns with `aborted: true`.
 * @throws RangeError/TypeError for invalid options; Error naming the file for unreadable photos
 * when none can be read; RangeError when batch × size would not fit in memory.
 */
export async function trainTransformer(options: TrainOptions): Promise<TrainResult> {
  checkOptions(options);
  const { config, name: architecture } = options.architecture;
  const batch = options.batch ?? TRAIN_DEFAULTS.batch;
  const size = options.size ?? TRAIN_DEFAULTS.size;
  const steps = options.steps ?? TRAIN_DEFAULTS.steps;
  const learningRate = options.learningRate ?? TRAIN_DEFAULTS.learningRate;
  const seed = options.seed ?? TRAIN_DEFAULTS.seed;
  const runtime = options.runtime ?? {};
  checkTrainingMemory(batch, size, options.memoryBudget);

  const styleLayers = options.styleLayers ?? TRAIN_STYLE_LAYERS;
  const stability = options.stability && options.stability.weight > 0 ? options.stability : undefined;
  const loss: TrainingLoss = options.styles
    ? {
      kind: 'perceptual', vgg: options.vgg!, contentLayers: options.contentLayers ?? TRAIN_CONTENT_LAYERS, styleLayers,
      styleLayerWeights: options.styleLayerWeights ?? styleLayers.map(() => 1),
      styleBlend: normalisedBlend(options.styles),
      contentWeight: options.contentWeight ?? TRAIN_DEFAULTS.contentWeight,
      styleWeight: options.styleWeight ?? TRAIN_DEFAULTS.styleWeight,
      tvWeight: options.tvWeight ?? TRAIN_DEFAULTS.tvWeight, stability,
    }
    : {
      kind: 'distill', pixelWeight: options.pixelWeight ?? TRAIN_DEFAULTS.pixelWeight,
      featureWeight: options.featureWeight ?? TRAIN_DEFAULTS.featureWeight,
      featureLayer: options.featureLayer ?? DISTILL_FEATURE_LAYER, vgg: options.vgg, stability,
    };
  if (loss.kind === 'distill' && loss.featureWeight > 0 && !loss.vgg) throw new TypeError('A feature loss (featureWeight > 0) needs VGG weights (vgg)');
  const record: TrainRecord = {
    ...(options.name ? { name: options.name } : {}),
    architecture, config, batch, size, steps, learningRate, seed, data: options.dataLabel ?? '',
    loss: describeLoss(loss, options),
    ...(options.init ? { init: options.init.label } : {}),
  };
  const resume = options.resume;
  if (resume) checkResumable(resume.record, record);

  // Parameters: one flat vector (Adam's), with a view per tensor fed to the graph.
  const layout = new ParamLayout(transformerParamShapes(config), architecture);
  const flat = layout.join(resume?.params ?? options.init?.params ?? initTransformerParams(config, seed), 'The starting parameters');

  const styleFeeds = options.styles ? await styleTargets(options.styles, options.vgg!, styleLayers, options.styleSize ?? TRAIN_DEFAULTS.styleSize, runtime) : {};
  throwIfAborted(options.signal);
  const terms = lossTermNames(loss);
  const loader = new PhotoLoader(options.photos, { batch, size, seed, order: resume?.order, onSkip: options.onSkip });
  const history: LossEntry[] = [...(resume?.history ?? [])];
  let step = resume?.step ?? 0;
  let imagesSeen = resume?.imagesSeen ?? 0;
  const secondsBefore = resume?.seconds ?? 0;
  const started = performance.now();
  const stateNow = (adam: Adam): TrainState => ({
    record, step, imagesSeen, order: loader.order(), seconds: secondsBefore + (performance.now() - started) / 1000,
    // A snapshot: a caller may keep the state while the run goes on.
    history: [...history],
    params: layout.tensors(flat),
    adam: { m: layout.split(adam.m), v: layout.split(adam.v), step: adam.iteration },
  });

  try {
    return await withModel(trainingModel({ config, batch, size, loss }), runtime, `${architecture} training graph`, async (model) => {
      const grad = new Float32Array(layout.total);
      let current: { batch: Float32Array; teacher?: Float32Array; perturbed?: { perturbed: Float32Array; kernel: Float32Array } } = { batch: new Float32Array(0) };
      let lastTerms: Record<string, number> = {};
      const adam = new Adam(async (x) => {
        const feeds: Feeds = { ...styleFeeds, content: { data: current.batch, dims: [batch, 3, size, size] } };
        if (current.teacher) feeds.teacher = { data: current.teacher, dims: [batch, 3, size, size] };
        if (current.perturbed) {
          const k = 2 * stabilityRadius(stability!) + 1;
          feeds[PERTURBED_INPUT] = { data: current.perturbed.perturbed, dims: [batch, 3, size, size] };
          feeds[KERNEL_INPUT] = { data: current.perturbed.kernel, dims: [3, 3, k, k] };
        }
        const out = await model.run(layout.feeds(x, feeds));
        for (const name of layout.names) layout.view(grad, name).set(out[gradName(name)].data);
        lastTerms = Object.fromEntries(terms.map((t) => [t, out[termName(t)].data[0]]));
        return { loss: out.loss.data[0], grad };
      }, flat, { learningRate });
      if (resume) {
        const moments = (parts: ReadonlyMap<string, Float32Array>): Float32Array =>
          layout.join(new Map([...parts].map(([name, data]) => [name, { data }])), "The checkpoint's optimiser moments");
        adam.restore({ m: moments(resume.adam.m), v: moments(resume.adam.v), iteration: resume.adam.step });
      }

      const preview = options.onPreview && options.previewPhotos?.length
        ? await previewRenderer(config, layout, options.previewPhotos, runtime)
        : undefined;
      const checkpointEvery = options.checkpointEvery ?? TRAIN_DEFAULTS.checkpointEvery;
      const previewEvery = options.previewEvery ?? TRAIN_DEFAULTS.previewEvery;
      const firstStep = step;
      let aborted = false;
      try {
        while (step < steps) {
          if (options.signal?.aborted) { aborted = true; break; }
          const t0 = performance.now();
          const photos = await loader.next();
          current = {
            batch: photos.data,
            teacher: options.teacher ? await runTeacher(options.teacher, photos.data, batch, size) : undefined,
            perturbed: stability ? perturbBatch(photos.data, batch, size, stability, seed, step) : undefined,
          };
          const { loss: value } = await adam.step();
          if (!Number.isFinite(value)) {
            throw new Error(`Training diverged at step ${step + 1}: the loss is ${value}; lower --learning-rate or the loss weights`);
          }
          step++;
          imagesSeen += batch;
          history.push({ step, loss: value, terms: lastTerms });
          const stepMs = performance.now() - t0;
          const rate = ((step - firstStep) * batch) / ((performance.now() - started) / 1000);
          options.onProgress?.({
            step, steps, loss: value, terms: lastTerms, epoch: photos.epoch, imagesPerSecond: rate,
            etaSeconds: ((steps - step) * batch) / rate, dataWaitMs: photos.waitMs, stepMs,
          });
          if (options.onCheckpoint && step % checkpointEvery === 0 && step < steps) await options.onCheckpoint(stateNow(adam));
          if (preview && step % previewEvery === 0 && step < steps) await options.onPreview!(await preview.render(flat), stateNow(adam));
        }
        const state = stateNow(adam);
        if (options.onCheckpoint && step > firstStep) await options.onCheckpoint(state);
        if (preview && !aborted) await options.onPreview!(await preview.render(flat), state);
        const onnx = toOnnxBytes(buildTransformer(config, state.params).graph);
        return { state, onnx, aborted, skippedPhotos: new Map(loader.skipped) };
      } finally {
        await preview?.release();
      }
    });
  } finally {
    loader.close();
  }
}

/** Blend weights scaled to sum to 1, so the style weight means the same for one style or several. */
function normalisedBlend(styles: readonly TrainStyle[]): number[] {
  const weights = styles.map((s) => s.weight ?? 1);
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) throw new RangeError('Expected at least one style with a weight above 0');
  return weights.map((w) => w / sum);
}

function describeLoss(loss: TrainingLoss, options: TrainOptions): Record<string, unknown> {
  // Only when active, so records (and checkpoints) of runs without it read as before.
  const stability = loss.stability ? { stability: { ...loss.stability } } : {};
  return { ...describeObjective(loss, options), ...stability };
}

function describeObjective(loss: TrainingLoss, options: TrainOptions): Record<string, unknown> {
  if (loss.kind === 'perceptual') {
    return {
      kind: 'perceptual', vgg: `VGG${loss.vgg.depth}/${loss.vgg.preprocessing}`, vggSource: options.vggSource ?? '',
      contentLayers: loss.contentLayers, styleLayers: loss.styleLayers, styleLayerWeights: loss.styleLayerWeights,
      contentWeight: loss.contentWeight, styleWeight: loss.styleWeight, tvWeight: loss.tvWeight,
      styleSize: options.styleSize ?? TRAIN_DEFAULTS.styleSize,
      styles: options.styles!.map((s, i) => ({ name: s.name, path: s.path ?? '', weight: loss.styleBlend[i], givenWeight: s.weight ?? 1, sha256: sha256(s.image.data), width: s.image.width, height: s.image.height })),
    };
  }
  return {
    kind: 'distill', teacher: options.teacher!.label, pixelWeight: loss.pixelWeight, featureWeight: loss.featureWeight,
    ...(loss.featureWeight > 0 ? { featureLayer: loss.featureLayer, vgg: `VGG${loss.vgg!.depth}/${loss.vgg!.preprocessing}`, vggSource: options.vggSource ?? '' } : {}),
  };
}

/** A checkpoint continues only the run it came from: same network, data, loss and schedule. */
function checkResumable(saved: TrainRecord, now: TrainRecord): void {
  const differences: string[] = [];
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]) as Set<keyof TrainRecord>;
  for (const key of keys) {
    if (key === 'steps' || key === 'name') continue;
    if (JSON.stringify(saved[key]) !== JSON.stringify(now[key])) differences.push(`${key} (checkpoint: ${JSON.stringify(saved[key])}, now: ${JSON.stringify(now[key])})`);
  }
  if (differences.length > 0) {
    throw new RangeError(`The checkpoint was made by a different training setup; it differs in ${differences.map((d) => d.length > 200 ? `${d.slice(0, 200)}…` : d).join('; ')}`);
  }
}

async function runTeacher(teacher: TrainTeacher, batch: Float32Array, n: number, size: number): Promise<Float32Array> {
  const out = await teacher.session.run({ [teacher.input]: { data: batch, dims: [n, 3, size, size] } });
  const result = out[teacher.output];
  if (result.dims.join() !== [n, 3, size, size].join()) {
    throw new Error(`${teacher.label}: the teacher produced [${result.dims.join(', ')}] for a batch of [${n}, 3, ${size}, ${size}]`);
  }
  return clampToPixelRange(result.data);
}

/** Renders the preview photos through the current parameters. */
async function previewRenderer(config: TransformerConfig, layout: ParamLayout, photos: readonly RgbImage[], runtime: RuntimeOptions) {
  const model = await Model.create(previewModel(config), 'preview network', runtime);
  return {
    async render(flat: Float32Array): Promise<RgbImage[]> {
      const outputs: RgbImage[] = [];
      for (const photo of photos) {
        const out = await model.run(layout.feeds(flat, { image: { data: photo.data, dims: [1, 3, photo.height, photo.width] } }));
        outputs.push({ data: out.stylized.data, width: photo.width, height: photo.height });
      }
      return outputs;
    },
    release: () => model.release(),
  };
}

