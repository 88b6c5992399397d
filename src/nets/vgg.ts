/**
 * VGG16 / VGG19 convolution stacks as loss networks (Gatys et al.; Johnson et al.): named taps
 * (`relu1_1`, `relu4_2`, `conv5_1`, `pool3` …), max or average pooling, the input preprocessing the
 * weights were trained with, and only as many layers as the requested taps need.
 *
 * Parameters: `block{b}_conv{i}.weight` [out, in, 3, 3] and `.bias` [out] (Keras layer names, ONNX
 * layouts).
 */
import { F, type Graph, type Tensor, type Value } from '../graph/index.js';

export type VggDepth = 16 | 19;

/** Convolutions per block. */
const BLOCKS: Record<VggDepth, readonly number[]> = { 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4] };
const WIDTHS = [64, 128, 256, 512, 512];

/**
 * How the weights expect their input, starting from RGB 0..255:
 * 'caffe' (Keras, original VGG): BGR minus the ImageNet mean; 'torch' (torchvision): RGB/255,
 * minus mean, divided by std.
 */
export type VggPreprocessing = 'caffe' | 'torch';

const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

/** Every layer name in order, for one depth: conv{b}_{i}, relu{b}_{i}, pool{b}. */
export function vggLayerNames(depth: VggDepth): string[] {
  const names: string[] = [];
  BLOCKS[depth].forEach((count, b) => {
    for (let i = 1; i <= count; i++) names.push(`conv${b + 1}_${i}`, `relu${b + 1}_${i}`);
    names.push(`pool${b + 1}`);
  });
  return names;
}

/** Parameter names and shapes, up to and including the convolution that `lastTap` needs. */
export function vggParamShapes(depth: VggDepth, lastTap?: string): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  let inC = 3;
  for (const [b, count] of BLOCKS[depth].entries()) {
    for (let i = 1; i <= count; i++) {
      const out = WIDTHS[b];
      shapes.set(`block${b + 1}_conv${i}.weight`, [out, inC, 3, 3]);
      shapes.set(`block${b + 1}_conv${i}.bias`, [out]);
      inC = out;
      if (lastTap && (lastTap === `conv${b + 1}_${i}` || lastTap === `relu${b + 1}_${i}`)) return shapes;
    }
    if (lastTap === `pool${b + 1}`) return shapes;
  }
  return shapes;
}

/** @throws RangeError naming the unknown layers and listing the valid ones. */
export function checkTaps(depth: VggDepth, taps: readonly string[]): void {
  const names = vggLayerNames(depth);
  const unknown = taps.filter((t) => !names.includes(t));
  if (unknown.length > 0) {
    throw new RangeError(`Unknown VGG${depth} layer${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => `'${t}'`).join(', ')}; valid: ${names.join(', ')}`);
  }
}

/** The deepest of `taps` in the network's order: the layer up to which VGG must be built (and its weights read). */
export function deepestTap(depth: VggDepth, taps: readonly string[]): string {
  checkTaps(depth, taps);
  const order = vggLayerNames(depth);
  return order[Math.max(...taps.map((t) => order.indexOf(t)))];
}

export interface VggOptions {
  readonly depth: VggDepth;
  readonly pooling: 'max' | 'avg';
  readonly preprocessing: VggPreprocessing;
  /** Layers whose activations are returned. */
  readonly taps: readonly string[];
}

/**
 * The per-channel affine map (and channel order) from RGB 0..255 to the network's input, as a
 * 1x1 convolution so it differentiates like any other layer.
 */
function preprocess(graph: Graph, x: Value, kind: VggPreprocessing): Value {
  const weight = new Float32Array(9);
  const bias = new Float32Array(3);
  for (let c = 0; c < 3; c++) {
    if (kind === 'caffe') {
      weight[c * 3 + (2 - c)] = 1; // output BGR channel c reads RGB channel 2 − c
      bias[c] = -CAFFE_MEAN_BGR[c];
    } else {
      weight[c * 3 + c] = 1 / (255 * TORCH_STD[c]);
      bias[c] = -TORCH_MEAN[c] / TORCH_STD[c];
    }
  }
  return F.conv2d(x, graph.constant({ data: weight, shape: [3, 3, 1, 1] }, 'vgg_pre_w'), graph.constant({ data: bias, shape: [3] }, 'vgg_pre_b'),
    { stride: 1, padding: [0, 0, 0, 0], lowering: 'direct' }, 'vgg_preprocess');
}

/**
 * Builds VGG on `input` (RGB 0..255, NCHW) in `graph` up to the deepest tap.
 * @returns the tapped activations by name.
 */
export function buildVgg(graph: Graph, input: Value, params: ReadonlyMap<string, Tensor>, options: VggOptions): Map<string, Value> {
  const order = vggLayerNames(options.depth);
  const deepest = order.indexOf(deepestTap(options.depth, options.taps));
  const shapes = vggParamShapes(options.depth, order[deepest]);
  const param = (name: string): Value => {
    const tensor = params.get(name);
    if (!tensor) throw new Error(`VGG weights lack '${name}'`);
    if (tensor.shape.join() !== shapes.get(name)!.join()) {
      throw new RangeError(`VGG weight '${name}' has shape [${tensor.shape.join(', ')}] but VGG${options.depth} needs [${shapes.get(name)!.join(', ')}]`);
    }
    const existing = graph.params.find((p) => p.name === `vgg.${name}`);
    return existing ?? graph.param(`vgg.${name}`, tensor);
  };
  const taps = new Map<string, Value>();
  let x = preprocess(graph, input, options.preprocessing);
  for (const name of order.slice(0, deepest + 1)) {
    const [, kind, b, i] = /^(conv|relu|pool)(\d)(?:_(\d))?$/.exec(name)!;
    if (kind === 'conv') {
      x = F.conv2d(x, param(`block${b}_conv${i}.weight`), param(`block${b}_conv${i}.bias`), { stride: 1, padding: [1, 1, 1, 1] }, name);
    } else if (kind === 'relu') {
      x = F.relu(x);
    } else {
      x = options.pooling === 'max' ? F.maxPool2d(x, 2) : F.avgPool2d(x, 2);
    }
    if (options.taps.includes(name)) taps.set(name, x);
  }
  return taps;
}
