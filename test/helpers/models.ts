/** Tiny ONNX style models built with pastiche's graph builder, for tests that need no trained weights. */
import { Graph, F, toOnnxBytes } from '../../src/graph/index.js';
import { buildTransformer, initTransformerParams, resolveArchitecture, type ArchitectureName } from '../../src/nets/transformer.js';

/** The per-pixel map the {@link zooLikeModel} computes: out = clip(SCALE · x + SHIFT, 0, 255). */
export const ZOO_SCALE = 0.5;
export const ZOO_SHIFT = 10;

/**
 * A stand-in for the ONNX model zoo's fast-neural-style files: fixed input 'input1' [1,3,224,224],
 * output 'output1', a 3x3 convolution and a clip. Only the kernel's centre tap is non-zero, so the
 * output is exactly ZOO_SCALE · x + ZOO_SHIFT at every pixel: any misplaced pixel (padding, cropping,
 * tiling) shows up as a difference from that.
 */
export function zooLikeModel(): Uint8Array {
  const g = new Graph();
  const x = g.input('input1', [1, 3, 224, 224]);
  const w = new Float32Array(3 * 3 * 3 * 3);
  for (let c = 0; c < 3; c++) w[((c * 3 + c) * 3 + 1) * 3 + 1] = ZOO_SCALE;
  const weight = g.param('weight', { data: w, shape: [3, 3, 3, 3] });
  const bias = g.param('bias', { data: Float32Array.of(ZOO_SHIFT, ZOO_SHIFT, ZOO_SHIFT), shape: [3] });
  g.output(F.clip(F.conv2d(x, weight, bias, { stride: 1, padding: [1, 1, 1, 1] }), 0, 255), 'output1');
  return toOnnxBytes(g);
}

/** An ONNX file whose input is a rank-2 feature vector, not an image. */
export function rank2Model(): Uint8Array {
  const g = new Graph();
  g.output(F.relu(g.input('features', [1, 10])), 'out');
  return toOnnxBytes(g);
}

/**
 * A small seeded transformer network of a named architecture (random weights, instance norms
 * included), as ONNX bytes carrying its architecture in the metadata as the store writes it.
 */
export function tinyTransformerModel(arch: ArchitectureName, options: { widths?: [number, number, number]; blocks?: number; seed?: number } = {}): Uint8Array {
  const { config } = resolveArchitecture(arch, { widths: options.widths ?? [8, 8, 16], residualBlocks: options.blocks ?? 2 });
  const { graph } = buildTransformer(config, initTransformerParams(config, options.seed ?? 3));
  return toOnnxBytes(graph, { metadata: { 'pastiche.architecture': arch } });
}
