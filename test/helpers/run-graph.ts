/**
 * Build → export → run for graph-builder tests: a Graph is serialised with `toOnnxBytes`, loaded
 * through the runtime (one thread, so results do not depend on the machine) and its outputs
 * returned; plus a tolerance check that names the worst element.
 */
import assert from 'node:assert/strict';
import type { onnx } from 'onnx-proto';
import { toOnnxBytes, toOnnxModel, type Graph, type OnnxExportOptions } from '../../src/graph/index.js';
import { loadModel, type RunTensor } from '../../src/runtime/session.js';

export type Feeds = Readonly<Record<string, RunTensor>>;

/** Exports `graph`, runs it on `feeds` and returns every output by name. */
export async function runGraph(graph: Graph, feeds: Feeds, options: OnnxExportOptions = {}): Promise<Record<string, RunTensor>> {
  const model = await loadModel(toOnnxBytes(graph, options), { threads: 1 }, 'test graph');
  return model.run(feeds);
}

/** Runs a graph with exactly one output and returns it. */
export async function runSingle(graph: Graph, feeds: Feeds): Promise<RunTensor> {
  assert.equal(graph.outputs.length, 1, 'runSingle needs a graph with one output');
  const results = await runGraph(graph, feeds);
  return results[graph.outputs[0].name];
}

/** The ONNX op types `graph` exports to, in order, without the Identity nodes that rename outputs. */
export function emittedOpTypes(graph: Graph, options: OnnxExportOptions = {}): string[] {
  return emittedNodes(graph, options).map((n) => n.opType ?? '');
}

/** The ONNX nodes `graph` exports to, without the Identity nodes that only rename outputs. */
export function emittedNodes(graph: Graph, options: OnnxExportOptions = {}): onnx.INodeProto[] {
  return (toOnnxModel(graph, options).graph?.node ?? []).filter((n) => n.opType !== 'Identity');
}

export interface CloseOptions {
  /** Allowed |actual − expected| as a fraction of the expected tensor's largest magnitude. */
  readonly rtol?: number;
  /** Floor for that scale, so all-zero tensors are compared absolutely. */
  readonly atol?: number;
  readonly label?: string;
}

/**
 * Asserts that two tensors agree elementwise to `rtol` relative to the expected tensor's scale
 * (max |expected|), reporting the worst element.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, options: CloseOptions = {}): void {
  const { rtol = 1e-4, atol = 1e-6, label = 'tensor' } = options;
  assert.equal(actual.length, expected.length, `${label}: ${actual.length} values but expected ${expected.length}`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  const tolerance = Math.max(atol, rtol * scale);
  let worst = -1;
  let worstDiff = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(diff)) assert.fail(`${label}: element ${i} is ${actual[i]} but expected ${expected[i]}`);
    if (diff > worstDiff) { worst = i; worstDiff = diff; }
  }
  if (worst >= 0 && worstDiff > tolerance) {
    assert.fail(`${label}: element ${worst} is ${actual[worst]} but expected ${expected[worst]} ` +
      `(|diff| ${worstDiff.toExponential(2)} > tolerance ${tolerance.toExponential(2)})`);
  }
}
