/**
 * Post-training static int8 quantisation of a style network, in the QDQ form that onnxruntime's
 * CPU provider fuses into QLinearConv (u8 activations x s8 weights, VNNI where the CPU has it).
 *
 * Only convolutions are quantised: each Conv gets QuantizeLinear → DequantizeLinear on its input
 * and its output (uint8, per-tensor, ranges calibrated on photos), int8 weights with per-output-
 * channel symmetric scales and int32 biases (scale x_scale · w_scale[c], as the QDQ convention
 * and onnxruntime's fusion require: a float bias, or a Conv output not followed by Q, keeps the
 * Conv in float). A reflection or edge Pad feeding only quantised Convs runs on the uint8
 * tensor (QuantizeLinear → Pad → DequantizeLinear → Conv, exact, a quarter of the bytes, and the
 * Relu before it folds into the QuantizeLinear); instance norm, the other activations and
 * depth-to-space stay float. The QuantizeLinear → Pad move measured 45.5 → 33.3 ms of kernel time
 * for REALTIME at 640x480 (onnxruntime profile, 2 threads).
 *
 * Weights that the graph computes from initializers (the phase-stacked kernels of an upsampling
 * convolution) are evaluated by the calibration run itself and stored already quantised.
 */
import onnxProto, { type onnx } from 'onnx-proto';
import type { RgbImage } from '../image/types.js';
import { withModel } from '../runtime/index.js';
import { FileError } from '../util/errors.js';
import { expectNumber } from '../util/validate.js';
import { checkStyleModel, decodeOnnx, encodeOnnx, setMetadata } from './onnx-file.js';

const { AttributeProto, ModelProto, TensorProto } = onnxProto.onnx;

/** Metadata keys the quantiser writes. */
export const QUANTIZE_META = {
  quantized: 'pastiche.quantized',
  /** JSON: images, their sizes, range method, formats. */
  calibration: 'pastiche.quantization',
} as const;

export interface QuantizeOptions {
  /**
   * Activation range per tensor: the lower and upper `percentile` of its values on each image,
   * widened over the images (default 100: the plain minimum and maximum). 99.99 measured worse
   * on the wave network (25.6-26.7 dB against 26.9-27.2, every Conv quantised): the clipped
   * outliers cost more than the finer step gains.
   */
  readonly percentile?: number;
  /** Names the model in errors (default 'model'). */
  readonly label?: string;
  /**
   * Quantise the last convolution too (default false). Its output feeds tanh · 150 almost
   * directly, so its uint8 step shows in every pixel: on the lengstrom wave network, 27.2 dB
   * against the float model with it, 32.4 dB without (4 photos), for one float layer of 16. A
   * trained REALTIME network (wave student) loses less: 41.3 dB with it, 42.2 dB without.
   */
  readonly quantizeLastConv?: boolean;
  /** Threads for the calibration runs (default: every core). */
  readonly threads?: number;
}

/** The opset DequantizeLinear needs for per-axis scales. */
const MIN_OPSET = 13;

interface Range { min: number; max: number }
interface Weight { data: Float32Array; dims: number[] }

/**
 * Quantises a float32 style model (ONNX bytes) to int8 QDQ, calibrating activation ranges on
 * `calibration` (RGB 0..255 images; photos like the ones it will stylise, a few suffice).
 * Input and output names, symbolic sizes and metadata are kept.
 * @example const int8 = await quantizeModel(await readFile('wave.onnx'), photos);
 * @throws FileError naming the model when it is not ONNX or not a style model; RangeError for no
 *   calibration images or a bad percentile; Error when it has no convolution to quantise.
 */
export async function quantizeModel(fp32: Uint8Array, calibration: readonly RgbImage[], options: QuantizeOptions = {}): Promise<Uint8Array> {
  const label = options.label ?? 'model';
  const percentile = expectNumber('the calibration percentile', options.percentile ?? 100, 50, 100);
  if (!(fp32 instanceof Uint8Array)) throw new TypeError(`Expected ONNX bytes (a Uint8Array) for ${label}`);
  if (!Array.isArray(calibration) || calibration.length === 0) {
    throw new RangeError(`Expected at least one calibration image for ${label} but received ${Array.isArray(calibration) ? 0 : 'none'}`);
  }
  calibration.forEach((image, i) => {
    if (image?.data?.length !== 3 * image.width * image.height || image.width < 1 || image.height < 1) {
      throw new TypeError(`Expected an RGB image (3·width·height float values) for calibration image ${i}`);
    }
  });
  const model = decodeOnnx(fp32, label);
  const { input } = checkStyleModel(model, label);
  const graph = model.graph!;
  const all = graph.node!.filter((n) => n.opType === 'Conv' && (n.domain ?? '') === '');
  if (all.length === 0) throw new Error(`${label}: has no convolution to quantise`);
  const convs = options.quantizeLastConv || all.length === 1 ? all : all.slice(0, -1);
  const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));

  // One calibration model answers everything: every Conv's input and output, and any weight or
  // bias the graph computes rather than stores.
  const activations = [...new Set(convs.flatMap((n) => [n.input![0], n.output![0]]))];
  const computed = [...new Set(convs.flatMap((n) => n.input!.slice(1).filter((name) => name && !initializers.has(name))))];
  const ranges = new Map<string, Range>();
  const values = new Map<string, Weight>();
  const probe = ModelProto.decode(fp32);
  const known = new Set(probe.graph!.output!.map((o) => o.name));
  for (const name of [...activations, ...computed]) {
    if (!known.has(name)) probe.graph!.output!.push({ name, type: { tensorType: { elemType: TensorProto.DataType.FLOAT } } });
  }
  await withModel(encodeOnnx(probe), { threads: options.threads, memoryArena: false }, `${label} (calibration)`, async (session) => {
    for (const [i, image] of calibration.entries()) {
      const fetches = i === 0 ? [...activations, ...computed] : activations;
      const out = await session.run({ [input]: { data: image.data, dims: [1, 3, image.height, image.width] } }, fetches);
      for (const name of activations) widen(ranges, name, rangeOf(out[name].data, percentile));
      if (i === 0) for (const name of computed) values.set(name, { data: out[name].data, dims: [...out[name].dims] });
    }
  });

  const weightOf = (name: string): Weight => values.get(name) ?? { data: floatData(initializers.get(name)!, label), dims: initializers.get(name)!.dims!.map(Number) };
  rewrite(graph, convs, ranges, weightOf);
  const opset = model.opsetImport!.find((o) => (o.domain ?? '') === '');
  if (!opset || Number(opset.version) < MIN_OPSET) {
    model.opsetImport = [...model.opsetImport!.filter((o) => (o.domain ?? '') !== ''), { domain: '', version: MIN_OPSET }];
  }
  setMetadata(model, {
    [QUANTIZE_META.quantized]: 'int8',
    [QUANTIZE_META.calibration]: JSON.stringify({
      images: calibration.length,
      sizes: [...new Set(calibration.map((im) => `${im.width}x${im.height}`))],
      range: percentile === 100 ? 'min/max' : `percentile ${percentile}`,
      activations: 'uint8 per tensor (Conv inputs and outputs)',
      weights: 'int8 per output channel, symmetric',
      bias: 'int32',
      convolutions: `${convs.length} of ${all.length}`,
    }),
  });
  return encodeOnnx(model);
}

function widen(ranges: Map<string, Range>, name: string, r: Range): void {
  const old = ranges.get(name);
  ranges.set(name, old ? { min: Math.min(old.min, r.min), max: Math.max(old.max, r.max) } : r);
}

/** The tensor's range, or its lower and upper percentile (from a sorted sample of ≤ 2^18 values). */
function rangeOf(data: Float32Array, percentile: number): Range {
  if (percentile === 100) {
    let min = Infinity;
    let max = -Infinity;
    for (const v of data) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return { min, max };
  }
  const step = Math.max(1, Math.floor(data.length / 2 ** 18));
  const sample = new Float32Array(Math.ceil(data.length / step));
  for (let i = 0, j = 0; i < data.length; i += step) sample[j++] = data[i];
  sample.sort();
  const at = (q: number): number => sample[Math.min(sample.length - 1, Math.max(0, Math.round(q * (sample.length - 1))))];
  return { min: at(1 - percentile / 100), max: at(percentile / 100) };
}

function floatData(tensor: onnx.ITensorProto, label: string): Float32Array {
  if (tensor.dataType !== TensorProto.DataType.FLOAT) throw new FileError(label, `initializer '${tensor.name}' is not float32`);
  if (tensor.floatData?.length) return Float32Array.from(tensor.floatData);
  const raw = tensor.rawData!;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/** uint8 scale and zero point for a range; the range always holds 0, so zero is exact (padding). */
function activationParams({ min, max }: Range): { scale: number; zero: number } {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zero: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

function tensor(name: string, dataType: number, dims: number[], data: ArrayBufferView): onnx.ITensorProto {
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Rewrites the graph in place: Q/DQ around every Conv, quantised weights and biases, dead nodes removed. */
function rewrite(graph: onnx.IGraphProto, convs: onnx.INodeProto[], ranges: Map<string, Range>, weightOf: (name: string) => Weight): void {
  const T = TensorProto.DataType;
  const taken = new Set([...graph.node!.flatMap((n) => [...n.input!, ...n.output!]), ...graph.initializer!.map((t) => t.name!)]);
  const fresh = (hint: string): string => {
    let name = hint;
    for (let i = 1; taken.has(name); i++) name = `${hint}_${i}`;
    taken.add(name);
    return name;
  };
  const added: onnx.ITensorProto[] = [];
  const axis0 = [{ name: 'axis', type: AttributeProto.AttributeType.INT, i: 0 }];
  const node = (opType: string, input: string[], output: string[], attribute: onnx.IAttributeProto[] = []): onnx.INodeProto =>
    ({ opType, name: fresh(`${opType}_${output[0]}`), input, output, attribute });

  const params = new Map([...ranges].map(([name, r]) => [name, activationParams(r)]));
  /** The Q/DQ pair for an activation: scale and zero-point initializers, then the two nodes. */
  const qdq = (source: string, target: string, range: string): onnx.INodeProto[] => {
    const { scale, zero } = params.get(range)!;
    const s = fresh(`${target}_scale`);
    const z = fresh(`${target}_zero_point`);
    added.push(tensor(s, T.FLOAT, [], Float32Array.of(scale)), tensor(z, T.UINT8, [], Uint8Array.of(zero)));
    const q = fresh(`${target}_quantized`);
    return [node('QuantizeLinear', [source, s, z], [q]), node('DequantizeLinear', [q, s, z], [target])];
  };

  const convSet = new Set(convs);
  const convOutputs = new Set(convs.map((n) => n.output![0]));
  const producers = new Map(graph.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
  const graphOutputs = new Set(graph.output!.map((o) => o.name));
  /** The Pad making a Conv input, when only quantised Convs read it and its padding adds no new value. */
  const quantizablePad = (x: string): onnx.INodeProto | null => {
    const pad = producers.get(x);
    if (!pad || pad.opType !== 'Pad' || graphOutputs.has(x)) return null;
    const mode = padMode(pad);
    const constant = pad.input![2];
    if (!['reflect', 'edge', 'constant'].includes(mode) || (mode === 'constant' && constant)) return null;
    const readers = graph.node!.filter((m) => m.input!.includes(x));
    return readers.every((m) => convSet.has(m) && m.input![0] === x && !m.input!.slice(1).includes(x)) ? pad : null;
  };
  const dequantized = new Map<string, string>(); // activation → its DQ output
  const nodes: onnx.INodeProto[] = [];
  for (const n of graph.node!) {
    if (!convSet.has(n)) {
      nodes.push(n);
      continue;
    }
    const [x, w, b] = n.input!;
    // A Conv's output is dequantised under its own name, so its consumers are untouched.
    if (!convOutputs.has(x) && !dequantized.has(x)) {
      const target = fresh(`${x}_dequantized`);
      const pad = quantizablePad(x);
      if (pad) {
        // Pad the uint8 tensor rather than the float one: a quarter of the bytes, and a Relu
        // before it is then absorbed by the QuantizeLinear (zero point 0 clamps at zero).
        const [q, dq] = qdq(pad.input![0], target, x);
        const padded = fresh(`${x}_quantized_padded`);
        const padInputs = [...pad.input!];
        padInputs[0] = q.output![0];
        if (padMode(pad) === 'constant') padInputs[2] = q.input![2]; // zero, as uint8
        nodes.push(q, { ...pad, name: fresh(`${pad.name}_uint8`), input: padInputs, output: [padded] }, { ...dq, input: [padded, ...dq.input!.slice(1)] });
      } else {
        nodes.push(...qdq(x, target, x));
      }
      dequantized.set(x, target);
    }
    const xScale = params.get(x)!.scale;
    const { data: weights, dims } = weightOf(w);
    const channels = dims[0];
    const per = weights.length / channels;
    const wScale = new Float32Array(channels);
    const q8 = new Int8Array(weights.length);
    for (let c = 0; c < channels; c++) {
      let m = 0;
      for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(weights[i]));
      const s = m > 0 ? m / 127 : 1;
      wScale[c] = s;
      for (let i = c * per; i < (c + 1) * per; i++) q8[i] = Math.round(weights[i] / s);
    }
    const wq = fresh(`${n.output![0]}.weight_int8`);
    const ws = fresh(`${n.output![0]}.weight_scale`);
    const wz = fresh(`${n.output![0]}.weight_zero_point`);
    const wd = fresh(`${n.output![0]}.weight_dequantized`);
    added.push(tensor(wq, T.INT8, dims, q8), tensor(ws, T.FLOAT, [channels], wScale), tensor(wz, T.INT8, [channels], new Int8Array(channels)));
    nodes.push(node('DequantizeLinear', [wq, ws, wz], [wd], axis0));
    const inputs = [dequantized.get(x) ?? x, wd];
    if (b) {
      const bias = weightOf(b).data;
      const bScale = wScale.map((s) => s * xScale);
      const b32 = Int32Array.from(bias, (v, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / bScale[c]))));
      const bq = fresh(`${n.output![0]}.bias_int32`);
      const bs = fresh(`${n.output![0]}.bias_scale`);
      const bz = fresh(`${n.output![0]}.bias_zero_point`);
      const bd = fresh(`${n.output![0]}.bias_dequantized`);
      added.push(tensor(bq, T.INT32, [channels], b32), tensor(bs, T.FLOAT, [channels], bScale), tensor(bz, T.INT32, [channels], new Int32Array(channels)));
      nodes.push(node('DequantizeLinear', [bq, bs, bz], [bd], axis0));
      inputs.push(bd);
    }
    const y = n.output![0];
    const raw = fresh(`${y}_float`);
    nodes.push({ ...n, input: inputs, output: [raw] });
    nodes.push(...qdq(raw, y, y));
  }
  graph.node = pruneDead(nodes, new Set(graph.output!.map((o) => o.name!)));
  const used = new Set(graph.node.flatMap((n) => n.input!));
  const stored = new Set(graph.initializer!.map((t) => t.name));
  graph.initializer = [...graph.initializer!, ...added].filter((t) => used.has(t.name!));
  // Initializers listed as inputs too (older exporters) must not outlive their tensors.
  const kept = new Set(graph.initializer.map((t) => t.name));
  graph.input = graph.input!.filter((i) => !stored.has(i.name!) || kept.has(i.name!));
}

function padMode(pad: onnx.INodeProto): string {
  const mode = pad.attribute?.find((a) => a.name === 'mode')?.s;
  return mode ? new TextDecoder().decode(mode) : 'constant';
}

/** Drops nodes whose outputs nothing reads (the float weight computations the int8 weights replace). */
function pruneDead(nodes: onnx.INodeProto[], outputs: ReadonlySet<string>): onnx.INodeProto[] {
  let live = nodes;
  for (;;) {
    const read = new Set([...live.flatMap((n) => n.input!), ...outputs]);
    const next = live.filter((n) => n.output!.some((o) => read.has(o)));
    if (next.length === live.length) return live;
    live = next;
  }
}
