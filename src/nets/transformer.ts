/**
 * The image transformation network of Johnson et al. (2016): three convolutions down, residual
 * blocks, two upsamplings and a final convolution, instance norm + ReLU between them. One
 * definition covers the lengstrom/ml5 TensorFlow checkpoints, pytorch/examples' TransformerNet and
 * smaller real-time variants; they differ only in the configuration.
 *
 * Parameter names follow pytorch/examples (`conv1.conv2d.weight`, `in1.weight` = scale,
 * `in1.bias` = shift, `res1.conv1.conv2d.weight`, `deconv1.conv2d.weight` ...), layouts are ONNX's:
 * conv weights [out, in, kh, kw], transposed-conv weights [in, out, kh, kw]. A network with a
 * sub-pixel output (`subpixelOutput`) has no `deconv2` / `in5`.
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
  /**
   * Stride of the first convolution (default 1). With 2 the network leaves full resolution at once
   * and conv3 keeps its input's size (stride 1), so the residual blocks still see 1/4 resolution.
   */
  readonly firstStride?: 1 | 2;
  /**
   * Whether the last convolution works at half resolution (default false): deconv3 makes 3·4
   * channels from deconv1's output, and depth-to-space (ONNX 'CRD': channel c·4 + 2a + b is pixel
   * (2i + a, 2j + b) of colour c) interleaves them into the full-resolution image. The network has
   * no deconv2 / in5 then: deconv1 and deconv3 are the two 2x steps, and no convolution runs at
   * full resolution.
   */
  readonly subpixelOutput?: boolean;
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

/**
 * A real-time network (issue 10): nothing convolves at full resolution. conv1 is a stride-2 3x3
 * (3→16), conv2 a stride-2 3x3 (16→16), conv3 a 3x3 (16→32) at 1/4 resolution, three residual
 * blocks of 32 channels there, deconv1 a nearest-2x + 3x3 (32→16) to 1/2 resolution and deconv3 a
 * sub-pixel 3x3 (16→3·4) with depth-to-space to full resolution. Instance norm + ReLU, reflection
 * padding and the tanh output as in COMPACT. Parameters: those of COMPACT less deconv2 / in5, with
 * deconv3.conv2d.weight [12, 16, 3, 3] and deconv3.conv2d.bias [12] (CRD order: colour c, phase
 * 2a + b at channel 4c + 2a + b).
 *
 * Chosen by measurement (issue 10): 640x480, batch 1, 2 threads, fp32, loadModel + Model.run,
 * Intel(R) Xeon(R) Processor (cpu family 6, 2 cores, AVX-512) shared with other jobs; all rows
 * but the last two are one interleaved run of 20 rounds after 3 warm-ups (median, minimum); the
 * last two are separate runs of 12-15 in quiet minutes:
 *
 *   config                                  GMAC   median ms  fps    min ms
 *   compact [16,32,64]x3 (9x9 at full res)  10.17  231        4.3    217
 *   compact [8,16,32]x2                      2.79  109        9.2    104
 *   realtime [16,16,32]x2                    1.36   48.4     20.7     35.4
 *   realtime [16,16,32]x3 = REALTIME         1.71   63.6     15.7     45.3
 *   realtime [8,16,32]x3                     1.68   52.0     19.2     44.0
 *   realtime [16,16,32]x4                    2.07   67.7     14.8     49.9
 *   realtime [16,24,32]x3                    2.02   66.8     15.0     57.8
 *   realtime [16,32,32]x3                    2.33   70.0     14.3     65.5
 *   realtime [16,32,48]x2                    3.31   77.6     12.9     69.9
 *   realtime [16,32,64]x3                    6.40  110        9.1    103
 *   realtime [16,16,32]x3, outerKernel 5     2.01   60.7     16.5     46.2
 *   REALTIME alone in a quiet minute         1.71   34.5     29.0     33.6
 *   ...with a 3x3 deconv2 at 1/2 res kept    1.89   39.2     25.5     38.0
 *
 * The machine's load varied 2x between runs (compact [8,16,32]x2: 90 to 245 ms), so compare
 * rows within a run, not runs. An onnxruntime profile (of the variant with deconv2) puts the
 * convolutions at ~40% of the time; reflection pads, instance norms, NCHWc reorders and
 * depth-to-space, mostly at 1/2 resolution, take the rest: layers at 1/2 resolution cost more
 * than their MACs say, channels at 1/4 less. A free sub-pixel deconv1 (4x the kernels, same
 * MACs) measured no faster than nearest-2x + conv, which also avoids checkerboard artefacts, so
 * it was not kept. Three blocks rather than two: capacity to imitate a Johnson teacher;
 * `--blocks 2` is the faster fallback.
 */
export const REALTIME: TransformerConfig = {
  widths: [16, 16, 32], residualBlocks: 3, outerKernel: 3, padding: 'reflect', upsample: 'nearest-conv',
  normEpsilon: 1e-5, convBias: true, finalNorm: false, output: 'tanh', firstStride: 2, subpixelOutput: true,
};

export const ARCHITECTURES = { lengstrom: LENGSTROM, 'pytorch-examples': PYTORCH_EXAMPLES, compact: COMPACT, realtime: REALTIME } as const;
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
  /**
   * Sub-pixel convolution: the convolution makes outC·b² channels at the input's resolution and
   * depth-to-space (block b) turns them into outC channels at b times the resolution, before the norm.
   */
  readonly depthToSpace?: number;
}

/** The layers of the network in order: a list, so shapes and construction share one source. */
function layers(c: TransformerConfig): { head: ConvSpec[]; blocks: ConvSpec[][]; tail: ConvSpec[] } {
  const [w1, w2, w3] = c.widths;
  const up = (name: string, inC: number, outC: number, norm: string): ConvSpec => c.upsample === 'transposed'
    ? { name, inC, outC, kernel: 3, stride: 2, kind: 'transposed', norm }
    : { name, inC, outC, kernel: 3, stride: 1, kind: 'conv', norm, upsample: 2 };
  const firstStride = c.firstStride ?? 1;
  const head: ConvSpec[] = [
    { name: 'conv1', inC: 3, outC: w1, kernel: c.outerKernel, stride: firstStride, kind: 'conv', norm: 'in1' },
    { name: 'conv2', inC: w1, outC: w2, kernel: 3, stride: 2, kind: 'conv', norm: 'in2' },
    { name: 'conv3', inC: w2, outC: w3, kernel: 3, stride: firstStride === 2 ? 1 : 2, kind: 'conv', norm: 'in3' },
  ];
  const blocks = Array.from({ length: c.residualBlocks }, (_, b): ConvSpec[] => [
    { name: `res${b + 1}.conv1`, inC: w3, outC: w3, kernel: 3, stride: 1, kind: 'conv', norm: `res${b + 1}.in1` },
    { name: `res${b + 1}.conv2`, inC: w3, outC: w3, kernel: 3, stride: 1, kind: 'conv', norm: `res${b + 1}.in2` },
  ]);
  const last = (inC: number): ConvSpec => ({
    name: 'deconv3', inC, outC: 3, kernel: c.outerKernel, stride: 1, kind: 'conv', norm: c.finalNorm ? 'in6' : undefined,
    ...(c.subpixelOutput ? { depthToSpace: 2 } : {}),
  });
  const tail: ConvSpec[] = c.subpixelOutput
    ? [up('deconv1', w3, w2, 'in4'), last(w2)]
    : [up('deconv1', w3, w2, 'in4'), up('deconv2', w2, w1, 'in5'), last(w1)];
  return { head, blocks, tail };
}

/** Every parameter of the network with its shape, in a stable order. */
export function transformerParamShapes(config: TransformerConfig): Map<string, number[]> {
  const { head, blocks, tail } = layers(config);
  const shapes = new Map<string, number[]>();
  for (const l of [...head, ...blocks.flat(), ...tail]) {
    const w = `${l.name}.conv2d.weight`;
    const convOut = l.outC * (l.depthToSpace ?? 1) ** 2;
    shapes.set(w, l.kind === 'transposed' ? [l.inC, l.outC, l.kernel, l.kernel] : [convOut, l.inC, l.kernel, l.kernel]);
    if (config.convBias) shapes.set(`${l.name}.conv2d.bias`, [convOut]);
    if (l.norm) {
      shapes.set(`${l.norm}.weight`, [l.outC]);
      shapes.set(`${l.norm}.bias`, [l.outC]);
    }
  }
  return shapes;
}

/**
 * Multiply-accumulates of the network's convolutions for one height x width image: k²·Cin per
 * output value (an upsample + conv counted at the output's resolution, as the phase-stacked form
 * does; a transposed convolution k²·Cout per input value). Norms, padding and activations, which
 * are memory-bound, are not counted.
 */
export function transformerMacs(config: TransformerConfig, height: number, width: number): number {
  const { head, blocks, tail } = layers(config);
  let [h, w] = [height, width];
  let macs = 0;
  for (const l of [...head, ...blocks.flat(), ...tail]) {
    if (l.kind === 'transposed') {
      macs += h * w * l.inC * l.outC * l.kernel ** 2;
      [h, w] = [h * l.stride, w * l.stride];
      continue;
    }
    if (l.upsample) [h, w] = [h * l.upsample, w * l.upsample];
    [h, w] = [Math.ceil(h / l.stride), Math.ceil(w / l.stride)];
    const b = l.depthToSpace ?? 1;
    macs += h * w * l.outC * b * b * l.inC * l.kernel ** 2;
    [h, w] = [h * b, w * b];
  }
  return macs;
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
    if (l.depthToSpace) y = F.depthToSpace(y, l.depthToSpace);
    if (l.norm) y = F.instanceNorm(y, param(`${l.norm}.weight`), param(`${l.norm}.bias`), config.normEpsilon);
    return relu ? F.relu(y) : y;
  };

  const { head, blocks, tail } = layers(config);
  let x = input;
  for (const l of head) x = convLayer(x, l, true);
  for (const [first, second] of blocks) x = F.add(x, convLayer(convLayer(x, first, true), second, false));
  for (const l of tail.slice(0, -1)) x = convLayer(x, l, true);
  x = convLayer(x, tail[tail.length - 1], false);
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
 * Whether a stored model's architecture (metadata `pastiche.architecture`, e.g. `realtime` or
 * `compact[24,48,96]x4`) pads by reflection: such networks paint no frame along the image edges,
 * so they need no margin around the image. Unknown and imported architectures answer false.
 */
export function isReflectionPadded(architecture: string): boolean {
  const name = architecture.replace(/\[.*$/, '');
  return name in ARCHITECTURES && ARCHITECTURES[name as ArchitectureName].padding === 'reflect';
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
