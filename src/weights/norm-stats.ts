/**
 * Model surgery for tiled inference with whole-image statistics. Instance normalisation computes
 * its mean and variance over the whole image, so running tiles separately changes every tile's
 * colours (31.8/255 mean error at 256 px tiles on a 600x450 photo). This rewrite turns each
 * InstanceNormalization of any ONNX style model into arithmetic on statistics fed from outside,
 * and exposes each norm's input as an extra output, so the caller can accumulate the exact
 * whole-image statistics over tiles, one norm after another. A second rewrite keeps the norms and
 * reports the statistics each one used, so one pass over a (downscaled) image yields them all.
 */
import onnxProto, { type onnx } from 'onnx-proto';
import { decodeOnnx, encodeOnnx } from './onnx-file.js';

const { TensorProto, AttributeProto } = onnxProto.onnx;

export interface NormSite {
  /** The activation the norm normalises, as named in the model. */
  readonly input: string;
  /** Extra output holding the norm's input activation [N, C, h, w]. */
  readonly inputOutput: string;
  /** Extra inputs to feed, [1, C, 1, 1] each. */
  readonly meanInput: string;
  readonly varianceInput: string;
  readonly channels: number;
}

export interface NormStatsModel {
  /** The whole rewritten model: the image output needs every norm's statistics fed. */
  readonly bytes: Uint8Array;
  /** In graph order: a norm's statistics depend only on earlier ones. */
  readonly norms: readonly NormSite[];
  /**
   * The part of the model that computes norm k's input, alone: onnxruntime runs every node of a
   * session whatever outputs are fetched, so each statistics pass gets its own pruned model.
   */
  prefix(k: number): Uint8Array;
  /**
   * The model cut into consecutive pieces at its norms, so each piece runs once per tile and hands
   * its activations to the next (see {@link NormSegment}); null when a tensor crossing a cut is not
   * a float activation (then the caller recomputes with {@link prefix}).
   */
  segments(): NormSegment[] | null;
}

/**
 * One piece of the rewritten model between two norms. Segment 0 runs from the image to the first
 * norm's input; segment s (1..K) applies norm s-1 (its statistics fed) and runs on to norm s's
 * input, or to the image output for the last. The tensors that cross a cut are graph inputs and
 * outputs of the pieces on either side; a tensor that crosses several cuts (a residual block's
 * skip) is carried by the caller from the segment that made it to the one that reads it.
 */
export interface NormSegment {
  readonly bytes: Uint8Array;
  /** Tensors read from earlier segments (or the image input). */
  readonly inputs: readonly string[];
  /** Statistics inputs (NormSite mean/variance) this segment's norm needs. */
  readonly statsInputs: readonly string[];
  /** Tensors this segment makes that later segments (or the caller: the image output) read. */
  readonly outputs: readonly string[];
  /** Every tensor alive after this segment: its outputs and what it carries through. */
  readonly live: readonly string[];
}

/** Ops whose outputs are not float activations: a cut through one of them cannot be fed back as float. */
const NON_FLOAT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual',
  'Not', 'And', 'Or', 'Xor', 'Cast', 'CastLike', 'Range', 'TopK', 'ConstantOfShape', 'IsNaN', 'IsInf']);

function floatInfo(name: string): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: TensorProto.DataType.FLOAT } } };
}

/** The rewritten `model` cut before each norm's first node (its Identity at `cuts[k]`); null when a crossing tensor is not float. */
function cutAtNorms(model: onnx.ModelProto, cuts: readonly number[], statsNames: ReadonlySet<string>, output: string): NormSegment[] | null {
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  const imageInputs = (graph.input ?? []).map((v) => v.name ?? '').filter((n) => !statsNames.has(n));
  // Tensors that do not depend on the image: initializers and what is computed from them alone.
  // Every segment that needs one recomputes it (they are weights reshaped, constants sliced).
  const constant = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const constantNodes = new Map<string, number>();
  nodes.forEach((node, i) => {
    if ((node.input ?? []).every((n) => !n || constant.has(n))) {
      for (const o of node.output ?? []) {
        constant.add(o);
        constantNodes.set(o, i);
      }
    }
  });
  const producer = new Map<string, number>(imageInputs.map((n) => [n, -1]));
  const lastUse = new Map<string, number>([[output, Infinity]]);
  nodes.forEach((node, i) => {
    if (constantNodes.has(node.output?.[0] ?? '')) return;
    for (const o of node.output ?? []) producer.set(o, i);
    for (const n of node.input ?? []) if (n && !constant.has(n) && !statsNames.has(n)) lastUse.set(n, Math.max(lastUse.get(n) ?? -1, i));
  });
  const bounds = [0, ...cuts, nodes.length];
  const segments: NormSegment[] = [];
  for (let s = 0; s + 1 < bounds.length; s++) {
    const [start, end] = [bounds[s], bounds[s + 1]];
    const last = end === nodes.length;
    // Alive after the segment: made before its end, read at or after it.
    const live = [...producer].filter(([n, at]) => at < end && (lastUse.get(n) ?? -1) >= end).map(([n]) => n);
    if (last && !live.includes(output)) live.push(output);
    const outputs = live.filter((n) => (producer.get(n) ?? -1) >= start);
    if (outputs.some((n) => NON_FLOAT.has(nodes[producer.get(n)!].opType ?? ''))) return null;
    const needed = new Set(outputs);
    const kept: number[] = [];
    for (let i = end - 1; i >= start; i--) {
      if (constantNodes.has(nodes[i].output?.[0] ?? '') || !(nodes[i].output ?? []).some((o) => needed.has(o))) continue;
      kept.unshift(i);
      for (const n of nodes[i].input ?? []) if (n) needed.add(n);
    }
    // The constants those nodes read, and the constants those are made from.
    const constants = new Set<number>();
    const pending = [...needed].filter((n) => constantNodes.has(n));
    while (pending.length > 0) {
      const i = constantNodes.get(pending.pop()!)!;
      if (constants.has(i)) continue;
      constants.add(i);
      for (const n of nodes[i].input ?? []) {
        if (!n) continue;
        needed.add(n);
        if (constantNodes.has(n)) pending.push(n);
      }
    }
    const made = new Set(kept.flatMap((i) => nodes[i].output ?? []));
    const inputs = [...needed].filter((n) => !made.has(n) && !constant.has(n) && !statsNames.has(n));
    if (inputs.some((n) => producer.has(n) && producer.get(n)! >= 0 && NON_FLOAT.has(nodes[producer.get(n)!].opType ?? ''))) return null;
    const statsInputs = [...needed].filter((n) => statsNames.has(n));
    const piece = onnxProto.onnx.ModelProto.create({
      ...model,
      graph: {
        ...graph,
        name: `${graph.name ?? 'graph'}_segment${s}`,
        node: [...[...constants].sort((a, b) => a - b), ...kept].map((i) => nodes[i]),
        initializer: (graph.initializer ?? []).filter((t) => needed.has(t.name ?? '')),
        input: [...inputs.map(floatInfo), ...(graph.input ?? []).filter((v) => statsInputs.includes(v.name ?? ''))],
        output: outputs.map(floatInfo),
        valueInfo: [],
      },
    });
    segments.push({ bytes: encodeOnnx(piece), inputs, statsInputs, outputs, live });
  }
  return segments;
}

/** Keeps only what `output` depends on. */
function pruneTo(model: onnx.ModelProto, output: string): Uint8Array {
  const graph = model.graph!;
  const needed = new Set<string>([output]);
  const kept: onnx.INodeProto[] = [];
  const nodes = graph.node ?? [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!(nodes[i].output ?? []).some((o) => needed.has(o))) continue;
    kept.unshift(nodes[i]);
    for (const input of nodes[i].input ?? []) if (input) needed.add(input);
  }
  const pruned = onnxProto.onnx.ModelProto.create({
    ...model,
    graph: {
      ...graph,
      node: kept,
      initializer: (graph.initializer ?? []).filter((t) => needed.has(t.name ?? '')),
      input: (graph.input ?? []).filter((v) => needed.has(v.name ?? '')),
      output: (graph.output ?? []).filter((v) => v.name === output),
      valueInfo: [],
    },
  });
  return encodeOnnx(pruned);
}

function tensorInfo(name: string, dims: (number | null)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (d === null ? {} : { dimValue: d })) } } },
  };
}

/**
 * Rewrites every InstanceNormalization node; returns null when the model has none (tiles then
 * need no shared statistics).
 */
export function withExternalNormStats(bytes: Uint8Array, label: string): NormStatsModel | null {
  const model = decodeOnnx(bytes, label);
  const graph = model.graph!;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const nodes: onnx.INodeProto[] = [];
  const norms: NormSite[] = [];
  const extraInitializers: onnx.ITensorProto[] = [];
  const int64 = (name: string, values: number[]): string => {
    const data = BigInt64Array.from(values.map(BigInt));
    extraInitializers.push({ name, dims: [values.length], dataType: TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  };
  const float = (name: string, value: number): string => {
    extraInitializers.push({ name, dims: [], dataType: TensorProto.DataType.FLOAT, rawData: new Uint8Array(Float32Array.of(value).buffer) });
    return name;
  };
  const shape4 = int64('pastiche_norm_shape', [1, -1, 1, 1]);

  for (const node of graph.node ?? []) {
    if (node.opType !== 'InstanceNormalization' || (node.domain ?? '') !== '') {
      nodes.push(node);
      continue;
    }
    const k = norms.length;
    const [x, scale, bias] = node.input!;
    const [y] = node.output!;
    const epsAttr = (node.attribute ?? []).find((a) => a.name === 'epsilon');
    const epsilon = epsAttr && epsAttr.type === AttributeProto.AttributeType.FLOAT ? epsAttr.f ?? 1e-5 : 1e-5;
    const channels = Number(initializers.get(scale)?.dims?.[0] ?? 0);
    const p = `pastiche_norm${k}`;
    const site: NormSite = { input: x, inputOutput: `${p}_input`, meanInput: `${p}_mean`, varianceInput: `${p}_var`, channels };
    norms.push(site);
    const op = (opType: string, input: string[], output: string): void => {
      nodes.push({ opType, input, output: [output], name: `${p}_${opType}_${output}` });
    };
    op('Identity', [x], site.inputOutput);
    op('Sub', [x, site.meanInput], `${p}_centered`);
    op('Add', [site.varianceInput, float(`${p}_eps`, epsilon)], `${p}_var_eps`);
    op('Sqrt', [`${p}_var_eps`], `${p}_std`);
    op('Div', [`${p}_centered`, `${p}_std`], `${p}_normalized`);
    op('Reshape', [scale, shape4], `${p}_scale4`);
    op('Reshape', [bias, shape4], `${p}_bias4`);
    op('Mul', [`${p}_normalized`, `${p}_scale4`], `${p}_scaled`);
    op('Add', [`${p}_scaled`, `${p}_bias4`], y);
  }
  if (norms.length === 0) return null;
  graph.node = nodes;
  graph.initializer = [...(graph.initializer ?? []), ...extraInitializers];
  for (const site of norms) {
    const c = site.channels || null;
    graph.input = [...(graph.input ?? []), tensorInfo(site.meanInput, [1, c, 1, 1]), tensorInfo(site.varianceInput, [1, c, 1, 1])];
    graph.output = [...(graph.output ?? []), tensorInfo(site.inputOutput, [null, c, null, null])];
  }
  const output = graph.output?.[0]?.name ?? '';
  const cuts = norms.map((site) => nodes.findIndex((node) => node.output?.[0] === site.inputOutput));
  const statsNames = new Set(norms.flatMap((site) => [site.meanInput, site.varianceInput]));
  return {
    bytes: encodeOnnx(model),
    norms,
    prefix: (k) => pruneTo(model, norms[k].inputOutput),
    segments: () => cutAtNorms(model, cuts, statsNames, output),
  };
}

/**
 * The model unchanged, plus two outputs per InstanceNormalization: the mean and (biased) variance
 * it normalised with, [1, C, 1, 1], named as the {@link NormSite} inputs of
 * {@link withExternalNormStats}, so one run's outputs feed the rewritten model directly. Null when
 * the model has no instance norm. GlobalAveragePool does the reductions in every opset (ReduceMean
 * moved its axes from an attribute to an input at opset 18), and in the graph, so the activations
 * themselves never cross into JavaScript. Batch 1: a batch would average over its images.
 */
export function withNormStatsOutputs(bytes: Uint8Array, label: string): Uint8Array | null {
  const model = decodeOnnx(bytes, label);
  const graph = model.graph!;
  const nodes: onnx.INodeProto[] = [];
  const outputs: onnx.IValueInfoProto[] = [];
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const node of graph.node ?? []) {
    nodes.push(node);
    if (node.opType !== 'InstanceNormalization' || (node.domain ?? '') !== '') continue;
    const k = outputs.length / 2;
    const p = `pastiche_norm${k}`;
    const [x, scale] = node.input!;
    const op = (opType: string, input: string[], output: string): void => {
      nodes.push({ opType, input, output: [output], name: `${p}_stats_${opType}_${output}` });
    };
    op('GlobalAveragePool', [x], `${p}_mean`);
    op('Sub', [x, `${p}_mean`], `${p}_deviation`);
    op('Mul', [`${p}_deviation`, `${p}_deviation`], `${p}_squared`);
    op('GlobalAveragePool', [`${p}_squared`], `${p}_var`);
    const c = Number(initializers.get(scale)?.dims?.[0] ?? 0) || null;
    outputs.push(tensorInfo(`${p}_mean`, [1, c, 1, 1]), tensorInfo(`${p}_var`, [1, c, 1, 1]));
  }
  if (outputs.length === 0) return null;
  graph.node = nodes;
  graph.output = [...(graph.output ?? []), ...outputs];
  return encodeOnnx(model);
}
