/**
 * Gradient checks: pastiche's gradient graph, run by onnxruntime in float32, against central finite
 * differences of the same graph evaluated in float64 by an independent interpreter (eval64.ts), and
 * against TF.js's `tf.grads` of the same computation written with TF.js ops.
 */
import assert from 'node:assert/strict';
import { F, Graph, grad, type Value } from '../../src/graph/index.js';
import { evaluate64 } from './eval64.js';
import { randomTensor, rng } from './random.js';
import { runGraph } from './run-graph.js';
import { tf } from './tf-reference.js';

export interface Dense {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/** A scalar loss in a graph, the values to differentiate it by, and data for the graph's inputs. */
export interface GradProblem {
  readonly graph: Graph;
  readonly loss: Value;
  readonly wrt: readonly Value[];
  readonly feeds?: Readonly<Record<string, Dense>>;
}

export interface GradCheckOptions {
  /** Coordinates checked per tensor (all of them for smaller tensors; none for 0). Default 32. */
  readonly samples?: number;
  /** Finite-difference step relative to max(1, |x|). Default 1e-5. */
  readonly step?: number;
  /**
   * Allowed |pastiche − fd| / max(|fd|, scale), where scale is the largest gradient magnitude
   * seen in that tensor (float32 rounding grows with the terms summed, not with each result), and
   * at least 1/100 of the largest scale over all tensors. Default 2e-5; measured ≤ 3e-7 for
   * single ops and 1.4e-6 for a chain of eight.
   */
  readonly rtol?: number;
  readonly seed?: number;
  readonly label?: string;
}

export interface GradCheckResult {
  /** The loss as onnxruntime computed it. */
  readonly loss: number;
  /** pastiche's gradients (onnxruntime, float32), one per `wrt`. */
  readonly grads: Float32Array[];
  /** The largest normalised difference from finite differences over all checked coordinates. */
  readonly worst: number;
}

/** Builds the gradient graph of `problem` and runs it through onnxruntime; no checks. */
export async function pasticheGradients(problem: GradProblem): Promise<{ loss: number; grads: Float32Array[] }> {
  const { graph, loss, wrt, feeds = {} } = problem;
  const grads = grad(loss, wrt);
  graph.output(loss, 'loss');
  grads.forEach((g, i) => graph.output(g, `grad_${i}`));
  const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, { data: t.data, dims: t.shape }]));
  const out = await runGraph(graph, ortFeeds);
  grads.forEach((g, i) => assert.deepEqual(out[`grad_${i}`].dims, g.shape, `grad_${i} dims`));
  return { loss: out.loss.data[0], grads: grads.map((_, i) => out[`grad_${i}`].data) };
}

/** Indices to check: all, or a seeded sample of `count` distinct ones. */
function sampleIndices(size: number, count: number, seed: number): number[] {
  const all = Array.from({ length: size }, (_, i) => i);
  if (size <= count) return all;
  const next = rng(seed);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (size - i));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count).sort((a, b) => a - b);
}

/**
 * Checks pastiche's gradients of `build()`'s loss against float64 central differences and
 * returns them. Fails naming the tensor, the coordinate and both values of the worst disagreement.
 */
export async function checkGradients(build: () => GradProblem, options: GradCheckOptions = {}): Promise<GradCheckResult> {
  const { samples = 32, step = 1e-5, rtol = 2e-5, seed = 1, label = 'gradient' } = options;
  const problem = build();
  const { graph, loss, wrt, feeds = {} } = problem;
  const ort = await pasticheGradients(problem);

  const loss64 = (overrides: Record<string, Dense | { data: Float64Array; shape: readonly number[] }> = {}): number =>
    evaluate64(graph, [loss], { ...feeds, ...overrides })[0].data[0];
  const base = loss64();
  assert.ok(Math.abs(ort.loss - base) <= 1e-4 * Math.max(1, Math.abs(base)),
    `${label}: onnxruntime's loss ${ort.loss} differs from the float64 interpreter's ${base}`);

  const checks = wrt.map((v, k) => {
    const source = feeds[v.name] ?? v.tensor;
    if (!source) throw new Error(`${label}: no data for '${v.name}'`);
    const x = Float64Array.from(source.data);
    const indices = sampleIndices(x.length, samples, seed + 7919 * k);
    const fd = indices.map((i) => {
      const h = step * Math.max(1, Math.abs(x[i]));
      const original = x[i];
      x[i] = original + h;
      const up = loss64({ [v.name]: { data: x, shape: source.shape } });
      x[i] = original - h;
      const down = loss64({ [v.name]: { data: x, shape: source.shape } });
      x[i] = original;
      return (up - down) / (2 * h);
    });
    const got = ort.grads[k];
    const scale = indices.reduce((m, i, j) => Math.max(m, Math.abs(got[i]), Math.abs(fd[j])), 0);
    return { name: v.name, got, indices, fd, scale };
  });
  // A gradient that is zero in exact arithmetic (e.g. a bias before a normalisation) is compared
  // against a hundredth of the largest gradient scale of the problem.
  const floor = Math.max(1e-2 * Math.max(...checks.map((c) => c.scale)), 1e-12);
  let worst = 0;
  let worstMessage = '';
  for (const { name, got, indices, fd, scale } of checks) {
    indices.forEach((i, j) => {
      const err = Math.abs(got[i] - fd[j]) / Math.max(Math.abs(fd[j]), scale, floor);
      if (err > worst || Number.isNaN(got[i])) {
        worst = Number.isNaN(got[i]) ? Infinity : err;
        worstMessage = `${label}: d(loss)/d(${name})[${i}] is ${got[i]} but finite differences give ${fd[j]} ` +
          `(normalised error ${err.toExponential(2)}, gradient scale ${scale.toExponential(2)})`;
      }
    });
  }
  assert.ok(worst <= rtol, `${worstMessage} > ${rtol}`);
  return { ...ort, worst };
}

/** Max |a − b| over max |b|: one number for how well two gradient tensors agree. */
export function relativeMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** tf.grads of `f` at `inputs`, contracted with `dy` (the vector–Jacobian product). */
export function tfGradients(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: readonly Dense[], dy?: Dense): Float32Array[] {
  const grads = tf.tidy(() => {
    const xs = inputs.map((t) => tf.tensor(t.data, [...t.shape]));
    return tf.grads(f)(xs, dy ? tf.tensor(dy.data, [...dy.shape]) : undefined);
  });
  const data = grads.map((g) => g.dataSync() as Float32Array);
  tf.dispose(grads);
  return data;
}

/** One op (or small composition) under test: y = forward(inputs), loss = Σ y · r for a random r. */
export interface OpGradCase {
  readonly label: string;
  /** Values differentiated by, in order: graph inputs, or parameters when named in `params`. */
  readonly inputs: Readonly<Record<string, Dense>>;
  readonly params?: readonly string[];
  readonly forward: (...xs: Value[]) => Value;
  /** The same computation in TF.js, on tensors shaped like `inputs` (NCHW where pastiche is). */
  readonly tf?: (...xs: tf.Tensor[]) => tf.Tensor;
  readonly options?: GradCheckOptions;
  /** Allowed relativeMaxDiff against TF.js per input. Default 1e-5. */
  readonly tfTolerance?: number;
  readonly seed?: number;
}

export interface OpGradResult {
  readonly fd: number;
  readonly tf?: number;
}

/**
 * Checks an op's gradients for every input against finite differences, and against TF.js when
 * `tf` is given; returns the measured agreement.
 */
export async function checkOpGradients(c: OpGradCase): Promise<OpGradResult> {
  const names = Object.keys(c.inputs);
  const seed = c.seed ?? 99;
  let projection: Dense | undefined;
  const result = await checkGradients(() => {
    const graph = new Graph();
    const values = names.map((name) => (c.params?.includes(name) ? graph.param(name, c.inputs[name]) : graph.input(name, c.inputs[name].shape)));
    const y = c.forward(...values);
    projection = randomTensor(y.shape as number[], seed);
    const loss = F.reduceSum(F.mul(y, graph.constant(projection, 'projection')));
    const feeds = Object.fromEntries(names.filter((n) => !c.params?.includes(n)).map((n) => [n, c.inputs[n]]));
    return { graph, loss, wrt: values, feeds };
  }, { label: c.label, ...c.options });
  if (!c.tf) return { fd: result.worst };
  const expected = tfGradients(c.tf, names.map((n) => c.inputs[n]), projection);
  let worstTf = 0;
  names.forEach((name, k) => {
    const diff = relativeMaxDiff(result.grads[k], expected[k]);
    assert.ok(diff <= (c.tfTolerance ?? 1e-5), `${c.label}: d/d(${name}) differs from TF.js by ${diff.toExponential(2)} of its scale`);
    worstTf = Math.max(worstTf, diff);
  });
  return { fd: result.worst, tf: worstTf };
}
