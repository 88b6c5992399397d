/**
 * Real-time candidates at 640x480, batch 1 (issue 10: ≥ 30 fps, ≤ 33 ms per frame on 2 threads):
 * the REALTIME preset and narrower or shallower variants, depthwise-separable residual blocks,
 * half internal resolution, each fp32 and int8 (random weights: timing only; quality needs a
 * trained student, see README). Every candidate runs once per round, interleaved over the rounds,
 * so a change of load on the machine hits every row alike; median and best of the rounds. Beside
 * them the CPU time of a 1-thread run, which load on the machine hardly changes.
 * Then the user path for REALTIME int8: stylizeImage with its defaults and with margin 0.
 */
import onnxProto from 'onnx-proto';
import { toOnnxBytes } from '../src/graph/index.js';
import { resizeImage } from '../src/image/resize.js';
import { syntheticPhotos } from '../src/image/synthetic-photos.js';
import { buildTransformer, initTransformerParams, resolveArchitecture, transformerMacs, type TransformerConfig } from '../src/nets/transformer.js';
import { clearModelCache, loadModel, type Model } from '../src/runtime/index.js';
import type { StyleModel } from '../src/style/model.js';
import { stylizeImage } from '../src/style/transfer.js';
import { decodeOnnx, encodeOnnx } from '../src/weights/onnx-file.js';
import { quantizeModel } from '../src/weights/quantize.js';
import { table, time } from './util.js';

const { ModelProto, TensorProto, AttributeProto } = onnxProto.onnx;
const [W, H] = [640, 480];
const ROUNDS = 15;
const TARGET_MS = 1000 / 30;

interface Candidate {
  readonly label: string;
  readonly config: TransformerConfig;
  readonly depthwise?: boolean;
  /** Run at this fraction of 640x480 and resize the output up (sharp, Lanczos-3). */
  readonly scale?: number;
}

function variant(widths: [number, number, number], blocks: number): TransformerConfig {
  return resolveArchitecture('realtime', { widths, residualBlocks: blocks }).config;
}

const CANDIDATES: Candidate[] = [
  { label: 'REALTIME [16,16,32]x3', config: variant([16, 16, 32], 3) },
  { label: '[16,16,32]x2', config: variant([16, 16, 32], 2) },
  { label: '[8,16,32]x3', config: variant([8, 16, 32], 3) },
  { label: '[8,16,32]x2', config: variant([8, 16, 32], 2) },
  { label: '[8,8,16]x3', config: variant([8, 8, 16], 3) },
  { label: '[16,16,32]x3 depthwise-separable blocks', config: variant([16, 16, 32], 3), depthwise: true },
  { label: '[16,16,64]x3 depthwise-separable blocks', config: variant([16, 16, 64], 3), depthwise: true },
  { label: '[8,16,32]x2 depthwise-separable blocks', config: variant([8, 16, 32], 2), depthwise: true },
  { label: 'REALTIME at 320x240, output resized up', config: variant([16, 16, 32], 3), scale: 0.5 },
];

/**
 * Each residual 3x3 convolution C→C becomes a depthwise 3x3 (group C) then a pointwise 1x1 C→C
 * carrying the bias (MobileNet's separable block): 9C + C² MACs per pixel instead of 9C².
 */
function depthwiseBlocks(bytes: Uint8Array, seed: number): Uint8Array {
  const model = ModelProto.decode(bytes);
  const graph = model.graph!;
  let state = seed;
  const random = (): number => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const tensor = (name: string, dims: number[], bound: number): onnxProto.onnx.ITensorProto => {
    const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => random() * bound);
    return { name, dims, dataType: TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) };
  };
  const nodes: onnxProto.onnx.INodeProto[] = [];
  for (const node of graph.node!) {
    const weight = node.input![1];
    if (node.opType !== 'Conv' || !/^res\d+\.conv\d\.conv2d\.weight$/.test(weight ?? '')) {
      nodes.push(node);
      continue;
    }
    const channels = Number(graph.initializer!.find((t) => t.name === weight)!.dims![0]);
    const [dw, pw, mid] = [`${weight}.depthwise`, `${weight}.pointwise`, `${node.output![0]}.depthwise`];
    graph.initializer!.push(tensor(dw, [channels, 1, 3, 3], Math.sqrt(6 / 9)), tensor(pw, [channels, channels, 1, 1], Math.sqrt(6 / channels)));
    const group = { name: 'group', type: AttributeProto.AttributeType.INT, i: channels };
    nodes.push({ ...node, name: `${node.name}_dw`, input: [node.input![0], dw], output: [mid], attribute: [...node.attribute!, group] });
    nodes.push({ opType: 'Conv', name: `${node.name}_pw`, input: [mid, pw, ...node.input!.slice(2)], output: node.output, attribute: [] });
  }
  graph.node = nodes;
  const used = new Set(nodes.flatMap((n) => n.input!));
  graph.initializer = graph.initializer!.filter((t) => used.has(t.name!));
  return encodeOnnx(decodeOnnx(ModelProto.encode(model).finish(), 'depthwise'));
}

/** Median CPU milliseconds (user + system, every thread of the process) of `fn` over 8 runs after 2. */
async function cpuTime(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 2; i++) await fn();
  const runs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const start = process.cpuUsage();
    await fn();
    const used = process.cpuUsage(start);
    runs.push((used.user + used.system) / 1000);
  }
  return runs.sort((a, b) => a - b)[4];
}

function gmacOf(c: Candidate): number {
  const scale = c.scale ?? 1;
  const [h, w] = [H * scale, W * scale];
  let macs = transformerMacs(c.config, h, w);
  if (c.depthwise) {
    const ch = c.config.widths[2];
    const pixels = (h / 4) * (w / 4);
    macs -= 2 * c.config.residualBlocks * pixels * (9 * ch * ch - (9 * ch + ch * ch));
  }
  return macs / 1e9;
}

export async function benchCandidates(threads: number): Promise<void> {
  const calibration = syntheticPhotos(4, 320, 240);
  const [frame] = syntheticPhotos(1, W, H, 11);
  const entries: { c: Candidate; precision: string; model: Model; bytes: Uint8Array; w: number; h: number; times: number[] }[] = [];
  for (const [i, c] of CANDIDATES.entries()) {
    let fp32 = toOnnxBytes(buildTransformer(c.config, initTransformerParams(c.config, i + 1)).graph);
    if (c.depthwise) fp32 = depthwiseBlocks(fp32, i + 1);
    const int8 = await quantizeModel(fp32, calibration, { threads });
    const [w, h] = [W * (c.scale ?? 1), H * (c.scale ?? 1)];
    for (const [precision, bytes] of [['fp32', fp32], ['int8', int8]] as const) {
      entries.push({ c, precision, bytes, model: await loadModel(bytes, { threads }, c.label), w, h, times: [] });
    }
  }
  const inputs = new Map<number, Float32Array>();
  for (const e of entries) if (!inputs.has(e.w)) inputs.set(e.w, e.w === W ? frame.data : (await resizeImage(frame, e.w, e.h)).data);
  const once = async (e: (typeof entries)[number]): Promise<number> => {
    const t0 = performance.now();
    const out = await e.model.run({ image: { data: inputs.get(e.w)!, dims: [1, 3, e.h, e.w] } });
    // A half-resolution run pays for bringing its output back to 640x480.
    if (e.c.scale) await resizeImage({ data: out.stylized.data, width: e.w, height: e.h }, W, H);
    return performance.now() - t0;
  };
  for (const e of entries) for (let i = 0; i < 2; i++) await once(e);
  for (let r = 0; r < ROUNDS; r++) for (const e of entries) e.times.push(await once(e));
  // CPU time of a 1-thread run: the work a frame costs, which other jobs on the machine do not
  // inflate the way they inflate wall time (2 threads, quiet, at best halve it).
  const cpuMs = new Map<(typeof entries)[number], number>();
  for (const e of entries) {
    const single = { ...e, model: await loadModel(e.bytes, { threads: 1 }, e.c.label) };
    cpuMs.set(e, await cpuTime(() => once(single)));
  }

  console.log(`\n### Real-time candidates at ${W}x${H}, batch 1, ${threads} threads (random weights; target ≤ ${TARGET_MS.toFixed(1)} ms = 30 fps)\n`);
  console.log(`Model.run, ${ROUNDS} interleaved rounds after 2 warm-ups; int8 calibrated on 4 synthetic photos. GMAC: convolutions only (transformerMacs).\n`);
  const stat = (times: number[]): { median: number; best: number } => {
    const sorted = [...times].sort((a, b) => a - b);
    return { median: sorted[Math.floor(sorted.length / 2)], best: sorted[0] };
  };
  console.log(table(['candidate', 'GMAC', 'fp32 median ms', 'fp32 best ms', 'int8 median ms', 'int8 best ms', 'int8 fps (median)', 'int8 fps (best)', '≤ 33 ms',
    'fp32 CPU ms (1 thread)', 'int8 CPU ms (1 thread)'],
    CANDIDATES.map((c) => {
      const [fe, qe] = ['fp32', 'int8'].map((p) => entries.find((e) => e.c === c && e.precision === p)!);
      const [f, q] = [stat(fe.times), stat(qe.times)];
      return [c.label, gmacOf(c).toFixed(2), f.median.toFixed(1), f.best.toFixed(1), q.median.toFixed(1), q.best.toFixed(1),
        (1000 / q.median).toFixed(1), (1000 / q.best).toFixed(1), q.median <= TARGET_MS ? 'yes' : q.best <= TARGET_MS ? 'best run only' : 'no',
        cpuMs.get(fe)!.toFixed(1), cpuMs.get(qe)!.toFixed(1)];
    })));

  // The user path for the preset: what stylizeImage adds around Model.run.
  const realtime = entries.filter((e) => e.c === CANDIDATES[0]);
  const rows: (string | number)[][] = [];
  for (const e of realtime) {
    const style: StyleModel = { label: e.c.label, session: e.model, input: 'image', output: 'stylized', metadata: {}, bytes: e.bytes, runtime: { threads } };
    const single = { ...style, session: await loadModel(e.bytes, { threads: 1 }, e.c.label) };
    for (const margin of [undefined, 0]) {
      const options = margin === undefined ? {} : { margin };
      const t = await time(() => stylizeImage(style, frame, options), 9, 1);
      const cpu = await cpuTime(() => stylizeImage(single, frame, options));
      rows.push([`REALTIME ${e.precision}`, margin === undefined ? 'default (48)' : String(margin), t.medianMs.toFixed(1), t.bestMs.toFixed(1), (1000 / t.medianMs).toFixed(1), cpu.toFixed(1)]);
    }
  }
  console.log(`\nREALTIME through stylizeImage at ${W}x${H} (median of 9 after 1; CPU ms: median of 8 runs on 1 thread):\n`);
  console.log(table(['network', 'margin px', 'median ms', 'best ms', 'fps (median)', 'CPU ms (1 thread)'], rows));
  await clearModelCache();
}
