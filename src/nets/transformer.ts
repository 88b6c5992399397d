/**
 * The image transformation network of Johnson et al. (2016): three convolutions down, residual
 * blocks, two upsamplings and a final convolution, instance norm + ReLU between them. One
 * definition covers the lengstrom/ml5 TensorFlow checkpoints, pytorch/examples' TransformerNet and
 * smaller real-time variants; they differ only in the configuration.
 *
 * Parameter names follow pytorch/examples (`conv1.conv2d.weight`, `in1.weight` = scale,
 * `in1.bias` = shift, `res1.conv1.conv2d.weight`, `deconv1.conv2d.weight` ...), layouts are ONNX's:
 * conv weights [out, in, kh, kw], transposed-conv weights [in, out, kh, kw].
 */
import { Graph, F, type Tensor, type Value } from '../graph/index.js';

export interface TransformerConfig {
  /** Channels after the first, second and third convolution. */
  readonly widths: readonly [number, number, number];
  readonly residualBlocks: number;
  /** Kernel size of the first and last convolution. */
  readonly outerKernel: number;
  /** 'same-zero': TensorFlow SAME zero padding (lengstrom); 'reflect': reflection padding of k/2 (pytorch). */
  readonly padding: 'same-zero' | 'reflect';
  /** 'transposed': stride-2 transposed convolutions (lengstrom); 'nearest-conv': nearest 2x resize then a convolution (pytorch). */
  readonly upsample: 'transposed' | 'nearest-conv';
  readonly normEpsilon: number;
  /** Whether convolutions carry a bias (pytorch) or rely on the norm's shift (lengstrom). */
  readonly convBias: boolean;
  /** Whether the last convolution is followed by instance norm (lengstrom) or not (pytorch). */
  readonly finalNorm: boolean;
  /** 'tanh': tanh(x)·150 + 127.5 (lengstrom); 'linear': the raw convolution output (pytorch). Both clipped to 0..255. */
  readonly output: 'tanh' | 'linear';
}

/** lengstrom/fast-style-transfer, as in the ml5 / deeplearn.js checkpoints. */
export const LENGSTROM: TransformerConfig = {
  widths: [32, 64, 128], residualBlocks: 5, outerKernel: 9, padding: 'same-zero', upsample: 'transposed',
  normEpsilon: 1e-3, convBias: false, finalNorm: true, output: 'tanh',
};

/** pytorch/examples fast_neural_style TransformerNet. */
export const PYTORCH_EXAMPLES: TransformerConfig = {
  widths: [32, 64, 128], residualBlocks: 5, outerKernel: 9, padding: 'reflect', upsample: 'nearest-conv',
  normEpsilon: 1e-5, convBias: true, finalNorm: false, output: 'linear',
};

/** A compact network for real-time video on small CPUs: half the widths, three residual blocks. */
export const COMPACT: TransformerConfig = {
  widths: [16, 32, 64], residualBlocks: 3, outerKernel: 9, padding: 'reflect', upsample: 'nearest-conv',
  normEpsilon: 1e-5, convBias: true, finalNorm: false, output: 'tanh',
};

export const ARCHITECTURES = { lengstrom: LENGSTROM, 'pytorch-examples': PYTORCH_EXAMPLES, compact: COMPACT } as const;
export type ArchitectureName = keyof typeof ARCHITECTURES;

interface ConvSpec {
  readonly name: string;
  readonly inC: number;
  readonly outC: number;
  readonly kernel: number;
  readonly stride: number;
  readonly kind: 'conv' | 'transposed';
  readonly norm?: string;
  /** Nearest-neighbour upsampling factor applied before the convolution. */
  readonly upsample?: number;
}

/** The layers of the network in order: a list, so shapes and construction share one source. */
function layers(c: TransformerConfig): { head: ConvSpec[]; blocks: ConvSpec[][]; tail: ConvSpec[] } {
  const [w1, w2, w3] = c.widths;
  const up = (name: string, inC: number, outC: number, norm: string): ConvSpec => c.upsample === 'transposed'
    ? { name, inC, outC, kernel: 3, stride: 2, kind: 'transposed', norm }
    : { name, inC, outC, kernel: 3, stride: 1, kind: 'conv', norm, upsample: 2 };
  const head: ConvSpec[] = [
    { name: 'conv1', inC: 3, outC: w1, kernel: c.outerKernel, stride: 1, kind: 'conv', norm: 'in1' },
    { name: 'conv2', inC: w1, outC: w2, kernel: 3, stride: 2, kind: 'conv', norm: 'in2' },
    { name: 'conv3', inC: w2, outC: w3, kernel: 3, stride: 2, kind: 'conv', norm: 'in3' },
  ];
  const blocks = Array.from({ length: c.residualBlocks }, (_, b): ConvSpec[] => [
    { name: `res${b + 1}.conv1`, inC: w3, outC: w3, kernel: 3, stride: 1, kind: 'conv', norm: `res${b + 1}.in1` },
    { name: `res${b + 1}.conv2`, inC: w3, outC: w3, kernel: 3, stride: 1, kind: 'conv', norm: `res${b + 1}.in2` },
  ]);
  const tail: ConvSpec[] = [
    up('deconv1', w3, w2, 'in4'),
    up('deconv2', w2, w1, 'in5'),
    { name: 'deconv3', inC: w1, outC: 3, kernel: c.outerKernel, stride: 1, kind: 'conv', norm: c.finalNorm ? 'in6' : undefined },
  ];
  return { head, blocks, tail };
}

/** Every parameter of the network with its shape, in a stable order. */
export function transformerParamShapes(config: TransformerConfig): Map<string, number[]> {
  const { head, blocks, tail } = layers(config);
  const shapes = new Map<string, number[]>();
  for (const l of [...head, ...blocks.flat(), ...tail]) {
    const w = `${l.name}.conv2d.weight`;
    shapes.set(w, l.kind === 'transposed' ? [l.inC, l.outC, l.kernel, l.kernel] : [l.outC, l.inC, l.kernel, l.kernel]);
    if (config.convBias) shapes.set(`${l.name}.conv2d.bias`, [l.outC]);
    if (l.norm) {
      shapes.set(`${l.norm}.weight`, [l.outC]);
      shapes.set(`${l.norm}.bias`, [l.outC]);
    }
  }
  return shapes;
}

/** Parameters for an untrained network: He-initialised convolutions, identity norms. */
export function initTransformerParams(config: TransformerConfig, seed = 1): Map<string, Tensor> {
  let state = seed >>> 0 || 1;
  const uniform = (): number => {
    state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
    return state / 0x100000000;
  };
  const params = new Map<string, Tensor>();
  for (const [name, shape] of transformerParamShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('conv2d.weight')) {
      const fanIn = shape[1] * shape[2] * shape[3];
      const bound = Math.sqrt(6 / fanIn);
      for (let i = 0; i < data.length; i++) data[i] = (uniform() * 2 - 1) * bound;
    } else if (/^(res\d+\.)?in\d\.weight$/.test(name)) {
      data.fill(1);
    }
    params.set(name, { data, shape });
  }
  return params;
}

/**
 * conv3x3(reflectPad1(upsampleNearest2(x))) without the upsampled image: each output phase (a, b)
 * sees a 2x2 neighbourhood of edgePad1(x) — reflecting a nearest-upsampled border repeats its edge
 * pixel — with the 3x3 kernel's rows and columns summed onto it (phase 0: [w0, w1+w2] from row i,
 * phase 1: [w0+w1, w2] from row i+1). The four phase kernels, embedded at their offsets in 3x3
 * kernels, make one convolution at the input's resolution with 4x the output channels, and
 * depth-to-space interleaves them. Same result and FLOPs; none of the 4x-size tensors (upsampled,
 * padded, and their gradients), which cost more than the convolution on a memory-bound CPU.
 */
function upsampleConv3x3(x: Value, w: Value, b: Value | undefined, name: string): Value {
  const [k, c] = w.shape as number[];
  const graph = x.graph;
  const zeros = (shape: number[]): Value => graph.constant({ data: new Float32Array(shape.reduce((p, q) => p * q, 1)), shape }, 'zeros');
  // Phase kernels along one spatial axis: [t0, t1+t2, 0] (phase 0) and [0, t0+t1, t2] (phase 1).
  const phases = (kernel: Value, axis: 2 | 3): [Value, Value] => {
    const tap = (i: number): Value => F.slice(kernel, axis, i, i + 1);
    const zero = zeros(kernel.shape.map((d, i) => (i === axis ? 1 : d)) as number[]);
    return [F.concat([tap(0), F.add(tap(1), tap(2)), zero], axis), F.concat([zero, F.add(tap(0), tap(1)), tap(2)], axis)];
  };
  const kernels = phases(w, 2).flatMap((rows) => phases(rows, 3)).map((kernel) => F.reshape(kernel, [k, 1, c, 3, 3]));
  // Depth-to-space reads output channel k·4 + (a·2 + b) for phase (a, b) of channel k.
  const stacked = F.reshape(F.concat(kernels, 1), [4 * k, c, 3, 3]);
  const bias = b ? F.reshape(F.broadcastTo(F.reshape(b, [k, 1]), [k, 4]), [4 * k]) : undefined;
  const padded = F.pad2d(x, [1, 1, 1, 1], 'edge');
  return F.depthToSpace(F.conv2d(padded, stacked, bias, { stride: 1, padding: [0, 0, 0, 0] }, name), 2);
}

export interface BuiltTransformer {
  readonly graph: Graph;
  readonly input: Value;
  readonly output: Value;
}

/**
 * Where the network's parameters come from: fixed tensors (an inference model's initializers) or
 * graph inputs fed at every run (a training graph, which differentiates with respect to them).
 */
export type TransformerParams = ReadonlyMap<string, Tensor> | 'inputs';

export interface TransformerGraphOptions {
  /**
   * Clip the output to 0..255 (default true). Training leaves a linear output unclipped, since the
   * clip's zero gradient outside the range would stall pixels that overshoot.
   */
  readonly clip?: boolean;
}

/**
 * Builds the network into `graph` on `input` [N, 3, H, W] (RGB 0..255), composing like `buildVgg`.
 * With `params` = 'inputs' each parameter becomes a graph input of its concrete shape, named as in
 * `transformerParamShapes`; the returned map holds those values (to differentiate against).
 */
export function buildTransformerInto(
  graph: Graph, input: Value, config: TransformerConfig, params: TransformerParams, options: TransformerGraphOptions = {},
): { output: Value; params: Map<string, Value> } {
  const expected = transformerParamShapes(config);
  const values = new Map<string, Value>();
  const param = (name: string): Value => {
    const shape = expected.get(name)!;
    let value: Value;
    if (params === 'inputs') {
      value = graph.input(name, shape);
    } else {
      const tensor = params.get(name);
      if (!tensor) throw new Error(`Missing parameter '${name}' for the transformer network`);
      if (tensor.shape.join() !== shape.join()) {
        throw new RangeError(`Parameter '${name}' has shape [${tensor.shape.join(', ')}] but the network needs [${shape.join(', ')}]`);
      }
      value = graph.param(name, tensor);
    }
    values.set(name, value);
    return value;
  };

  const convLayer = (x: Value, l: ConvSpec, relu: boolean): Value => {
    const w = param(`${l.name}.conv2d.weight`);
    const b = config.convBias ? param(`${l.name}.conv2d.bias`) : undefined;
    let y: Value;
    if (l.kind === 'transposed') {
      // TensorFlow conv2d_transpose with SAME padding and output = 2·input: crop 0 before, 1 after.
      const crop = l.kernel - l.stride;
      const before = Math.floor(crop / 2);
      y = F.convTranspose2d(x, w, b, { stride: l.stride, pads: [before, before, crop - before, crop - before] }, l.name);
    } else if (l.upsample === 2 && l.kernel === 3 && config.padding === 'reflect') {
      y = upsampleConv3x3(x, w, b, l.name);
    } else {
      const upsampled = l.upsample ? F.upsampleNearest(x, l.upsample) : x;
      if (config.padding === 'reflect') {
        const p = Math.floor(l.kernel / 2);
        y = F.conv2d(F.pad2d(upsampled, [p, p, p, p], 'reflect'), w, b, { stride: l.stride, padding: [0, 0, 0, 0] }, l.name);
      } else {
        y = F.conv2d(upsampled, w, b, { stride: l.stride, padding: 'same' }, l.name);
      }
    }
    if (l.norm) y = F.instanceNorm(y, param(`${l.norm}.weight`), param(`${l.norm}.bias`), config.normEpsilon);
    return relu ? F.relu(y) : y;
  };

  const { head, blocks, tail } = layers(config);
  let x = input;
  for (const l of head) x = convLayer(x, l, true);
  for (const [first, second] of blocks) x = F.add(x, convLayer(convLayer(x, first, true), second, false));
  x = convLayer(x, tail[0], true);
  x = convLayer(x, tail[1], true);
  x = convLayer(x, tail[2], false);
  if (config.output === 'tanh') x = F.affine(F.tanh(x), 150, 127.5);
  const output = options.clip ?? true ? F.clip(x, 0, 255) : x;
  return { output, params: values };
}

/**
 * Builds the inference network on a new graph: input 'image' [N, 3, H, W] (RGB 0..255), output
 * 'stylized' of the same layout, clipped to 0..255. `params` must hold every entry of `transformerParamShapes`.
 */
export function buildTransformer(config: TransformerConfig, params: ReadonlyMap<string, Tensor>): BuiltTransformer {
  const graph = new Graph();
  const input = graph.input('image', ['N', 3, 'H', 'W']);
  const { output } = buildTransformerInto(graph, input, config, params);
  graph.output(output, 'stylized');
  return { graph, input, output };
}

/**
 * A named architecture, optionally with other widths or another number of residual blocks
 * ("custom widths/blocks"): the name records both, e.g. `compact[24,48,96]x4`.
 * @throws RangeError for an unknown name or out-of-range sizes.
 */
export function resolveArchitecture(name: string, overrides: { widths?: readonly number[]; residualBlocks?: number } = {}): { name: string; config: TransformerConfig } {
  if (!(name in ARCHITECTURES)) throw new RangeError(`Expected one of ${Object.keys(ARCHITECTURES).join(', ')} for the architecture but received '${name}'`);
  const base = ARCHITECTURES[name as ArchitectureName];
  const { widths, residualBlocks } = overrides;
  if (widths !== undefined && (widths.length !== 3 || widths.some((w) => !Number.isInteger(w) || w < 1 || w > 1024))) {
    throw new RangeError(`Expected three widths between 1 and 1024 (e.g. 16,32,64) but received ${widths.join(',')}`);
  }
  if (residualBlocks !== undefined && (!Number.isInteger(residualBlocks) || residualBlocks < 0 || residualBlocks > 64)) {
    throw new RangeError(`Expected a number of residual blocks between 0 and 64 but received ${residualBlocks}`);
  }
  if (widths === undefined && residualBlocks === undefined) return { name, config: base };
  const config: TransformerConfig = {
    ...base,
    widths: (widths ?? base.widths) as [number, number, number],
    residualBlocks: residualBlocks ?? base.residualBlocks,
  };
  return { name: `${name}[${config.widths.join(',')}]x${config.residualBlocks}`, config };
}
