/**
 * ONNX serialisation: a Graph becomes a ModelProto with parameters and constants as initializers
 * and symbolic dimensions exported as `dim_param`, so one file serves every image size.
 */
import onnxProto, { type onnx } from 'onnx-proto';
import type { Graph, Value } from './builder.js';
import type { AttrValue, Emitter, Lowering } from './op.js';
import type { Shape, Tensor } from './shape.js';
import { fusePhaseRoundTrips } from './peephole.js';

// onnx-proto is CommonJS: its namespace is a type here and a value through the default import.
const { AttributeProto, ModelProto, TensorProto } = onnxProto.onnx;

/** The opset pastiche emits; onnxruntime 1.17+ and onnxruntime-web run it. */
export const OPSET = 17;

export interface OnnxExportOptions {
  /** Stored in the model's `metadata_props` (name, architecture, source, description ...). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly docString?: string;
  readonly graphName?: string;
  /**
   * 'direct' writes every op as its plain ONNX operator, without the CPU-tuned formulations of
   * ops/conv-lowering.ts: for comparison, or for an execution provider where they do not pay.
   */
  readonly lowering?: Lowering;
}

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const A = AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TypeError(`attribute ${name}: write {float: ${value}} for a float`);
    return { name, type: A.INT, i: value };
  }
  if (Array.isArray(value)) return { name, type: A.INTS, ints: [...value] };
  if ('float' in value) return { name, type: A.FLOAT, f: value.float };
  return { name, type: A.FLOATS, floats: [...(value as { floats: readonly number[] }).floats] };
}

function floatTensor(name: string, tensor: Tensor): onnx.ITensorProto {
  const { data } = tensor;
  return {
    name,
    dims: [...tensor.shape],
    dataType: TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

function int64Tensor(name: string, values: readonly number[], dims: readonly number[] = [values.length]): onnx.ITensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims: [...dims], dataType: TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) };
}

/** A float tensor type whose plain symbolic dims ('H') become dim_params; derived ones stay unnamed. */
function valueInfo(name: string, shape: Shape, inputSymbols: ReadonlySet<string>): onnx.IValueInfoProto {
  const dim = shape.map((d): onnx.TensorShapeProto.IDimension =>
    typeof d === 'number' ? { dimValue: d } : inputSymbols.has(d) ? { dimParam: d } : {});
  return { name, type: { tensorType: { elemType: TensorProto.DataType.FLOAT, shape: { dim } } } };
}

class OnnxEmitter implements Emitter {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(private readonly taken: Set<string>, readonly lowering: Lowering) {}

  temp(hint: string): string {
    let name: string;
    do name = `${hint}__${this.counter++}`; while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  node(opType: string, inputs: readonly string[], outputs: readonly string[], attrs: Record<string, AttrValue> = {}): void {
    this.nodes.push({
      opType,
      name: `${opType}_${this.nodes.length}`,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
  }

  int64s(values: readonly number[], hint: string, dims?: readonly number[]): string {
    const name = this.temp(hint);
    this.initializers.push(int64Tensor(name, values, dims));
    return name;
  }

  floats(tensor: Tensor, hint: string): string {
    const name = this.temp(hint);
    this.initializers.push(floatTensor(name, tensor));
    return name;
  }
}

/** Builds the ONNX ModelProto for `graph` (its outputs must be marked with `graph.output`). */
export function toOnnxModel(graph: Graph, options: OnnxExportOptions = {}): onnx.ModelProto {
  if (graph.outputs.length === 0) throw new Error('Graph has no outputs: mark them with graph.output(value, name)');
  const taken = new Set<string>([...graph.inputs, ...graph.params, ...graph.constants].map((v) => v.name));
  for (const node of graph.nodes) taken.add(node.output.name);
  for (const { name } of graph.outputs) taken.add(name);
  const e = new OnnxEmitter(taken, options.lowering ?? 'auto');

  // Only nodes that an output depends on are emitted.
  const needed = new Set<Value>();
  const visit = (v: Value): void => {
    if (needed.has(v)) return;
    needed.add(v);
    v.node?.inputs.forEach(visit);
  };
  graph.outputs.forEach(({ value }) => visit(value));

  for (const node of graph.nodes) {
    if (!needed.has(node.output)) continue;
    node.op.emit(e, {
      inputs: node.inputs.map((v) => v.name),
      output: node.output.name,
      attrs: node.attrs as never,
      inputShapes: node.inputs.map((v) => v.shape),
      outputShape: node.output.shape,
    });
  }
  for (const { name, value } of graph.outputs) {
    if (name !== value.name) e.node('Identity', [value.name], [name]);
  }

  const constantShapes = new Map([...graph.params, ...graph.constants].map((v) => [v.name, v.tensor!.shape]));
  const nodes = fusePhaseRoundTrips(e.nodes, constantShapes, e, new Set(graph.outputs.map((o) => o.name)));
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  const symbols = new Set(graph.inputs.flatMap((v) => v.shape.filter((d): d is string => typeof d === 'string')));
  const initializers = [...graph.params, ...graph.constants]
    .filter((v) => needed.has(v))
    .map((v) => floatTensor(v.name, v.tensor!));
  return ModelProto.create({
    irVersion: 8,
    producerName: 'pastiche',
    opsetImport: [{ domain: '', version: OPSET }],
    docString: options.docString ?? '',
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: options.graphName ?? 'pastiche',
      node: nodes,
      // Rewrites may leave an emitter's initializer unused (a fused depth-to-space's kernel).
      initializer: [...initializers, ...e.initializers.filter((t) => used.has(t.name!))],
      input: graph.inputs.map((v) => valueInfo(v.name, v.shape, symbols)),
      output: graph.outputs.map(({ name, value }) => valueInfo(name, value.shape, symbols)),
    },
  });
}

/** Serialises `graph` to ONNX bytes. */
export function toOnnxBytes(graph: Graph, options: OnnxExportOptions = {}): Uint8Array {
  return ModelProto.encode(toOnnxModel(graph, options)).finish();
}
