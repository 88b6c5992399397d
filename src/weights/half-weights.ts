/**
 * Weights stored as float16 on disk, computed in float32: each large float initializer `w` becomes
 * a float16 initializer `w.fp16` and a `Cast(to=FLOAT)` node that produces `w` again. The file is
 * half the size (what the built-in styles ship as) and any ONNX runtime reads it; the model door
 * undoes the packing when it admits a model, so inference, fine-tuning, teachers and quantisation
 * all see the plain float32 network.
 */
import onnxProto, { type onnx } from 'onnx-proto';
import { halfToFloat } from './dtypes.js';

const { DataType } = onnxProto.onnx.TensorProto;
const SUFFIX = '.fp16';
/** Initializers smaller than this stay float32: biases and norm parameters are few and sensitive. */
const MIN_ELEMENTS = 256;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → IEEE 754 half bits, rounding to nearest even; overflow gives infinity, tiny values subnormals. */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  // A carry out of the mantissa lands in the exponent, which is the right rounding (up to infinity).
  return sign | h;
}

function floatsOf(t: onnx.ITensorProto): Float32Array {
  if (t.rawData?.length) return new Float32Array(new Uint8Array(t.rawData).buffer); // a copy: rawData may sit at any offset
  return Float32Array.from(t.floatData ?? []);
}

/**
 * Packs `model`'s large float initializers as float16 (in place). Returns how many were packed.
 * @example packHalfWeights(model); await writeFile('small.onnx', encodeOnnx(model));
 */
export function packHalfWeights(model: onnx.ModelProto): number {
  const graph = model.graph;
  if (!graph) return 0;
  const casts: onnx.NodeProto[] = [];
  let packed = 0;
  graph.initializer = (graph.initializer ?? []).map((t) => {
    const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
    if (t.dataType !== DataType.FLOAT || !t.name || count < MIN_ELEMENTS) return t;
    const values = floatsOf(t);
    const bits = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) bits[i] = floatToHalf(values[i]);
    casts.push(onnxProto.onnx.NodeProto.create({
      opType: 'Cast', name: `${t.name}${SUFFIX}.cast`, input: [`${t.name}${SUFFIX}`], output: [t.name],
      attribute: [onnxProto.onnx.AttributeProto.create({ name: 'to', type: onnxProto.onnx.AttributeProto.AttributeType.INT, i: DataType.FLOAT })],
    }));
    packed++;
    return onnxProto.onnx.TensorProto.create({ name: `${t.name}${SUFFIX}`, dims: t.dims, dataType: DataType.FLOAT16, rawData: new Uint8Array(bits.buffer) });
  });
  graph.node = [...casts, ...(graph.node ?? [])];
  return packed;
}

/**
 * Undoes {@link packHalfWeights} (in place): every `Cast(to=FLOAT)` of a float16 initializer becomes
 * a float32 initializer of the Cast's output. Other models are left as they are. Returns how many
 * were unpacked.
 */
export function unpackHalfWeights(model: onnx.IModelProto): number {
  const graph = model.graph;
  if (!graph?.node?.length || !graph.initializer?.some((t) => t.dataType === DataType.FLOAT16)) return 0;
  const halves = new Map(graph.initializer.filter((t) => t.dataType === DataType.FLOAT16 && t.name).map((t) => [t.name!, t]));
  const used = new Map<string, number>();
  for (const node of graph.node) for (const name of node.input ?? []) used.set(name, (used.get(name) ?? 0) + 1);
  const unpacked = new Map<string, onnx.ITensorProto>();
  graph.node = graph.node.filter((node) => {
    const input = node.input?.[0];
    const to = node.attribute?.find((a) => a.name === 'to')?.i;
    const half = input === undefined ? undefined : halves.get(input);
    if (node.opType !== 'Cast' || Number(to) !== DataType.FLOAT || half === undefined || used.get(input!) !== 1 || !node.output?.[0] || !half.rawData) return true;
    const bits = new Uint16Array(new Uint8Array(half.rawData).buffer);
    const values = new Float32Array(bits.length);
    for (let i = 0; i < bits.length; i++) values[i] = halfToFloat(bits[i]);
    unpacked.set(input!, onnxProto.onnx.TensorProto.create({ name: node.output[0], dims: half.dims, dataType: DataType.FLOAT, rawData: new Uint8Array(values.buffer) }));
    return false;
  });
  graph.initializer = graph.initializer.map((t) => (t.name && unpacked.has(t.name) ? unpacked.get(t.name)! : t));
  return unpacked.size;
}
