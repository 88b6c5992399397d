/**
 * Gradients of the layout ops (reshape, transpose, flip, broadcastTo, concat, slice, padAxis),
 * spatial padding and cropping, depth/space rearrangements, reductions and matmul: against float64
 * finite differences and TF.js (NCHW throughout; depth/space rearrangements written as TF.js
 * reshape + transpose, since tf.depthToSpace is NHWC with the other ('DCR') channel order).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, grad, ops, type Value } from '../../src/graph/index.js';
import type { Padding2d } from '../../src/graph/ops/conv.js';
import { checkOpGradients, type OpGradCase } from '../helpers/grad-check.js';
import { randomTensor } from '../helpers/random.js';
import { tf } from '../helpers/tf-reference.js';

const run = (c: OpGradCase) => async (t: { diagnostic(message: string): void }) => {
  const result = await checkOpGradients(c);
  t.diagnostic(`finite differences ${result.fd.toExponential(1)}${result.tf === undefined ? '' : `, TF.js ${result.tf.toExponential(1)}`}`);
};

test('reshape gradient', run({
  label: 'reshape',
  inputs: { x: randomTensor([2, 3, 4], 1) },
  forward: (x) => F.reshape(x, [4, 1, 6]),
  tf: (x) => tf.reshape(x, [4, 1, 6]),
}));

for (const perm of [[2, 0, 1], [0, 2, 3, 1]]) {
  const shape = perm.length === 3 ? [2, 3, 4] : [2, 3, 2, 4];
  test(`transpose gradient, perm [${perm}]`, run({
    label: `transpose ${perm}`,
    inputs: { x: randomTensor(shape, 2) },
    forward: (x) => F.transpose(x, perm),
    tf: (x) => tf.transpose(x, perm),
  }));
}

for (const axes of [[1], [0, 2]]) {
  test(`flip gradient, axes [${axes}]`, run({
    label: `flip ${axes}`,
    inputs: { x: randomTensor([2, 3, 4], 3) },
    forward: (x) => F.flip(x, axes),
    tf: (x) => tf.reverse(x, axes),
  }));
}

for (const [from, to] of [[[3, 1], [2, 3, 4]], [[1, 3, 1, 1], [2, 3, 2, 2]], [[], [2, 3]]] as const) {
  test(`broadcastTo gradient, [${from}] to [${to}]`, run({
    label: `broadcastTo [${from}] [${to}]`,
    inputs: { x: randomTensor(from, 4) },
    forward: (x) => F.broadcastTo(x, to),
    tf: (x) => tf.broadcastTo(x, [...to]),
  }));
}

test('concat gradient w.r.t. three inputs of different sizes along axis 1', run({
  label: 'concat axis 1',
  inputs: { a: randomTensor([2, 1, 3], 5), b: randomTensor([2, 3, 3], 6), c: randomTensor([2, 2, 3], 7) },
  forward: (a, b, c) => F.concat([a, b, c], 1),
  tf: (a, b, c) => tf.concat([a, b, c], 1),
}));

test('concat gradient along axis 0, one input a parameter', run({
  label: 'concat axis 0',
  inputs: { a: randomTensor([1, 4], 8), b: randomTensor([2, 4], 9) },
  params: ['b'],
  forward: (a, b) => F.concat([a, b], 0),
  tf: (a, b) => tf.concat([a, b], 0),
}));

for (const [axis, start, end] of [[1, 1, 4], [2, 0, 2], [0, 1, 2]]) {
  test(`slice gradient, axis ${axis} [${start}:${end}]`, run({
    label: `slice ${axis} ${start}:${end}`,
    inputs: { x: randomTensor([2, 5, 3], 10 + axis) },
    forward: (x) => F.slice(x, axis, start, end),
    tf: (x) => {
      const begin = [0, 0, 0];
      const size = [...x.shape];
      begin[axis] = start;
      size[axis] = end - start;
      return tf.slice(x, begin, size);
    },
  }));
}

test('slice with step > 1 has no gradient rule and says so', () => {
  const g = new Graph();
  const x = g.input('x', [2, 6]);
  const loss = F.reduceSum(F.slice(x, 1, 0, 6, 2));
  assert.throws(() => grad(loss, [x]), { message: /slice: no gradient rule for step > 1/ });
});

for (const [axis, before, after] of [[1, 2, 1], [0, 0, 2]]) {
  test(`padAxis gradient, axis ${axis} (${before}, ${after})`, run({
    label: `padAxis ${axis}`,
    inputs: { x: randomTensor([2, 3], 12) },
    forward: (x) => F.padAxis(x, axis, before, after),
    tf: (x) => tf.pad(x, axis === 0 ? [[before, after], [0, 0]] : [[0, 0], [before, after]]),
  }));
}

/**
 * 'edge' or 'reflect' padding along one axis in TF.js, from slices: tf.mirrorPad's gradient in
 * tfjs-core 4.22 only slices out the centre (MirrorPad_grad.js), dropping the reflected bands.
 */
function tfPadAxis(x: tf.Tensor, axis: number, before: number, after: number, mode: 'edge' | 'reflect'): tf.Tensor {
  const n = x.shape[axis];
  const band = (start: number, length: number) => {
    const begin = x.shape.map(() => 0);
    const size = [...x.shape];
    begin[axis] = start;
    size[axis] = length;
    return tf.slice(x, begin, size);
  };
  const reps = (k: number) => x.shape.map((_, i) => (i === axis ? k : 1));
  const parts: tf.Tensor[] = [];
  if (before > 0) parts.push(mode === 'edge' ? tf.tile(band(0, 1), reps(before)) : tf.reverse(band(1, before), axis));
  parts.push(x);
  if (after > 0) parts.push(mode === 'edge' ? tf.tile(band(n - 1, 1), reps(after)) : tf.reverse(band(n - 1 - after, after), axis));
  return tf.concat(parts, axis);
}

const padCases: { mode: 'constant' | 'reflect' | 'edge'; shape: number[]; pads: Padding2d }[] = [
  { mode: 'constant', shape: [1, 2, 4, 5], pads: [2, 1, 0, 3] },
  { mode: 'reflect', shape: [1, 2, 4, 5], pads: [2, 1, 1, 3] },
  { mode: 'reflect', shape: [2, 1, 3, 3], pads: [2, 2, 2, 2] },
  // Sizes that take the piecewise (concatenated) reflect gradient: the transformer's pad 1, a
  // 9x9 kernel's pad 4, and bands that leave no untouched middle rows.
  { mode: 'reflect', shape: [2, 2, 7, 8], pads: [1, 1, 1, 1] },
  { mode: 'reflect', shape: [1, 2, 11, 10], pads: [4, 2, 3, 1] },
  { mode: 'reflect', shape: [1, 1, 5, 6], pads: [1, 1, 2, 3] },
  { mode: 'edge', shape: [1, 2, 4, 5], pads: [2, 1, 1, 3] },
  { mode: 'edge', shape: [2, 1, 2, 3], pads: [3, 0, 4, 1] },
];

padCases.forEach(({ mode, shape, pads }, i) => {
  const [t, l, b, r] = pads;
  test(`pad2d gradient, ${mode} [${pads}] on [${shape}]`, run({
    label: `pad2d ${mode} [${pads}]`,
    inputs: { x: randomTensor(shape, 20 + i) },
    forward: (x) => F.pad2d(x, pads, mode, 0.5),
    tf: (x) => {
      const paddings: [number, number][] = [[0, 0], [0, 0], [t, b], [l, r]];
      if (mode === 'constant') return tf.pad(x, paddings, 0.5);
      return tfPadAxis(tfPadAxis(x, 2, t, b, mode), 3, l, r, mode);
    },
  }));
});

test('crop2d gradient', run({
  label: 'crop2d',
  inputs: { x: randomTensor([2, 2, 5, 6], 30) },
  forward: (x) => F.crop2d(x, [1, 0, 2, 1]),
  tf: (x) => tf.slice(x, [0, 0, 1, 0], [2, 2, 2, 5]),
}));

test('depthToSpace gradient (CRD order), block 2', run({
  label: 'depthToSpace',
  inputs: { x: randomTensor([2, 8, 2, 3], 31) },
  forward: (x) => F.depthToSpace(x, 2),
  // y[n, c, h·b + i, w·b + j] = x[n, c·b² + i·b + j, h, w]
  tf: (x) => tf.reshape(tf.transpose(tf.reshape(x, [2, 2, 2, 2, 2, 3]), [0, 1, 4, 2, 5, 3]), [2, 2, 4, 6]),
}));

test('depthToSpace gradient (CRD order), block 3', run({
  label: 'depthToSpace 3',
  inputs: { x: randomTensor([1, 18, 2, 2], 33) },
  forward: (x) => F.depthToSpace(x, 3),
  tf: (x) => tf.reshape(tf.transpose(tf.reshape(x, [1, 2, 3, 3, 2, 2]), [0, 1, 4, 2, 5, 3]), [1, 2, 6, 6]),
}));

test('spaceToDepth gradient (ONNX order), block 2', run({
  label: 'spaceToDepth',
  inputs: { x: randomTensor([2, 3, 4, 6], 32) },
  forward: (x) => x.graph.apply(ops.spaceToDepth, [x], { blockSize: 2 }),
  // y[n, (i·b + j)·C + c, h, w] = x[n, c, h·b + i, w·b + j]
  tf: (x) => tf.reshape(tf.transpose(tf.reshape(x, [2, 3, 2, 2, 3, 2]), [0, 3, 5, 1, 2, 4]), [2, 12, 2, 3]),
}));

const reductions: { kind: 'sum' | 'mean'; shape: number[]; axes: number[]; keepDims: boolean }[] = [
  { kind: 'sum', shape: [2, 3, 4], axes: [1], keepDims: false },
  { kind: 'sum', shape: [2, 3, 4], axes: [0, 2], keepDims: true },
  { kind: 'sum', shape: [2, 3, 4], axes: [], keepDims: false },
  { kind: 'mean', shape: [2, 3, 4, 5], axes: [2, 3], keepDims: true },
  { kind: 'mean', shape: [2, 3, 4], axes: [0], keepDims: false },
  { kind: 'mean', shape: [2, 3, 4], axes: [], keepDims: true },
];

reductions.forEach(({ kind, shape, axes, keepDims }, i) => {
  test(`reduce${kind === 'sum' ? 'Sum' : 'Mean'} gradient, axes [${axes}], keepDims ${keepDims}`, run({
    label: `reduce ${kind} [${axes}] ${keepDims}`,
    inputs: { x: randomTensor(shape, 40 + i) },
    forward: (x) => (kind === 'sum' ? F.reduceSum : F.reduceMean)(x, axes, keepDims),
    tf: (x) => {
      const all = axes.length === 0 ? shape.map((_, a) => a) : axes;
      return kind === 'sum' ? tf.sum(x, all, keepDims) : tf.mean(x, all, keepDims);
    },
  }));
});

const matmuls: [number[], number[]][] = [
  [[3, 4], [4, 2]],
  [[2, 3, 4], [2, 4, 5]],
  [[2, 1, 3, 4], [3, 4, 2]],
  [[3, 4], [2, 4, 5]],
];

matmuls.forEach(([a, b], i) => {
  test(`matmul gradient w.r.t. both inputs, [${a}] × [${b}]`, run({
    label: `matmul [${a}] [${b}]`,
    inputs: { a: randomTensor(a, 50 + i), b: randomTensor(b, 60 + i) },
    forward: (x, y) => F.matmul(x, y),
    // TF.js's BatchMatMul gradient does not sum over broadcast batch axes: broadcast explicitly.
    tf: (x, y) => {
      const rank = Math.max(a.length, b.length) - 2;
      const dim = (s: number[], k: number) => s[s.length - 2 - rank + k] ?? 1;
      const batch = Array.from({ length: rank }, (_, k) => Math.max(dim(a, k), dim(b, k)));
      return tf.matMul(tf.broadcastTo(x, [...batch, ...a.slice(-2)]), tf.broadcastTo(y, [...batch, ...b.slice(-2)]));
    },
  }));
});

test('Gram matrix gradient: one value as both matmul operands', run({
  label: 'gram',
  inputs: { x: randomTensor([1, 3, 4, 4], 70) },
  forward: (x: Value) => {
    const rows = F.reshape(x, [3, 16]);
    return F.scale(F.matmul(rows, F.transpose(rows, [1, 0])), 1 / 48);
  },
  tf: (x) => {
    const rows = tf.reshape(x, [3, 16]);
    return tf.div(tf.matMul(rows, rows, false, true), 48);
  },
}));
