/**
 * Elementwise ops and instance normalisation against TF.js on the CPU backend (tf broadcasts like
 * NumPy, so NCHW tensors are compared as they are, no layout change needed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, ops, type Dim, type Value } from '../../src/graph/index.js';
import { randomTensor } from '../helpers/random.js';
import { assertClose, emittedOpTypes, runSingle } from '../helpers/run-graph.js';
import { tf } from '../helpers/tf-cpu.js';
import type { RunTensor } from '../../src/runtime/session.js';

const dims = [2, 3, 4, 5];

// ---- instanceNorm ----

function tfInstanceNorm(x: Float32Array, shape: number[], scale: Float32Array, bias: Float32Array, epsilon: number): Float32Array {
  return tf.tidy(() => {
    const t = tf.tensor4d(x, shape as [number, number, number, number]);
    const { mean, variance } = tf.moments(t, [2, 3], true);
    const c = shape[1];
    const normalised = tf.div(tf.sub(t, mean), tf.sqrt(tf.add(variance, epsilon)));
    return tf.add(tf.mul(normalised, tf.reshape(tf.tensor1d(scale), [1, c, 1, 1])), tf.reshape(tf.tensor1d(bias), [1, c, 1, 1])).dataSync() as Float32Array;
  });
}

for (const epsilon of [1e-3, 1e-5]) {
  test(`instanceNorm (epsilon ${epsilon}) matches the tf.moments formula, with channels of tiny variance`, async () => {
    const x = randomTensor(dims, 11);
    // Channel 1 of each image is scaled to variance ~3e-5, where epsilon decides the answer.
    for (let n = 0; n < dims[0]; n++) {
      const plane = dims[2] * dims[3];
      const start = (n * dims[1] + 1) * plane;
      for (let i = start; i < start + plane; i++) x.data[i] = 5 + 0.01 * x.data[i];
    }
    const scale = randomTensor([3], 12, 0.5, 1.5);
    const bias = randomTensor([3], 13);
    const g = new Graph();
    const input = g.input('x', ['N', 3, 'H', 'W']);
    g.output(F.instanceNorm(input, g.param('scale', scale), g.param('bias', bias), epsilon), 'y');
    assert.deepEqual(emittedOpTypes(g), ['InstanceNormalization']);
    const y = await runSingle(g, { x: { data: x.data, dims } });
    assert.deepEqual(y.dims, dims);
    const expected = tfInstanceNorm(x.data, dims, scale.data, bias.data, epsilon);
    assertClose(y.data, expected, { rtol: 2e-4 });
    const otherEpsilon = tfInstanceNorm(x.data, dims, scale.data, bias.data, epsilon === 1e-3 ? 1e-5 : 1e-3);
    assert.ok(y.data.some((v, i) => Math.abs(v - otherEpsilon[i]) > 1e-2), 'the test data must tell the two epsilons apart');
  });
}

// ---- unary ----

for (const [name, fn, oracle] of [
  ['relu', F.relu, tf.relu],
  ['tanh', F.tanh, tf.tanh],
  ['sigmoid', F.sigmoid, tf.sigmoid],
] as const) {
  test(`${name} matches tf.${name}`, async () => {
    const x = randomTensor(dims, name.length, -4, 4);
    const g = new Graph();
    g.output(fn(g.input('x', ['N', 3, 'H', 'W'])), 'y');
    const y = await runSingle(g, { x: { data: x.data, dims } });
    assert.deepEqual(y.dims, dims);
    assertClose(y.data, tf.tidy(() => oracle(tf.tensor(x.data, dims)).dataSync() as Float32Array));
  });
}

test('clip matches tf.clipByValue, and min = max gives a constant', async () => {
  const x = randomTensor(dims, 21, -3, 3);
  for (const [min, max] of [[-0.5, 1.25], [0, 0], [-10, 10]]) {
    const g = new Graph();
    g.output(F.clip(g.input('x', dims), min, max), 'y');
    const y = await runSingle(g, { x: { data: x.data, dims } });
    assertClose(y.data, tf.tidy(() => tf.clipByValue(tf.tensor(x.data, dims), min, max).dataSync() as Float32Array), { label: `[${min}, ${max}]` });
  }
});

// ---- binary, with broadcasting ----

type Binary = (a: Value, b: Value) => Value;
const binaries: [string, Binary, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
  ['add', F.add, tf.add],
  ['sub', F.sub, tf.sub],
  ['mul', F.mul, tf.mul],
  ['div', F.div, tf.div],
];

/** Right-hand operands: a scalar constant, per-channel [1,C,1,1], lower rank [C,1,1], a row, and a full second input. */
const symbolic: Dim[] = ['N', 3, 'H', 'W'];
const operands: { name: string; shape: number[]; declared: Dim[]; left: Dim[] }[] = [
  { name: 'scalar constant', shape: [], declared: [], left: symbolic },
  { name: 'per-channel [1, C, 1, 1]', shape: [1, 3, 1, 1], declared: [1, 3, 1, 1], left: symbolic },
  { name: 'per-channel [C, 1, 1] (lower rank)', shape: [3, 1, 1], declared: [3, 1, 1], left: symbolic },
  // A concrete column count broadcasts only against a concrete W.
  { name: 'per-column [W]', shape: [5], declared: [5], left: ['N', 3, 'H', 5] },
  { name: 'same-shape input', shape: dims, declared: symbolic, left: symbolic },
];

for (const [name, fn, oracle] of binaries) {
  for (const [i, operand] of operands.entries()) {
    test(`${name} with a ${operand.name} matches tf.${name}`, async () => {
      const a = randomTensor(dims, 31 + i, -2, 2);
      // Divisors stay away from zero so the comparison measures the op, not rounding near a pole.
      const b = randomTensor(operand.shape, 41 + i, 0.5, 2);
      const g = new Graph();
      const x = g.input('a', operand.left);
      const isInput = operand.name === 'same-shape input';
      const other = isInput ? g.input('b', operand.declared) : g.constant(b, 'b');
      const y = fn(x, other);
      assert.deepEqual(y.shape, operand.left);
      g.output(y, 'y');
      const feeds: Record<string, RunTensor> = { a: { data: a.data, dims } };
      if (isInput) feeds.b = { data: b.data, dims };
      const result = await runSingle(g, feeds);
      assert.deepEqual(result.dims, dims);
      assertClose(result.data, tf.tidy(() => oracle(tf.tensor(a.data, dims), tf.tensor(b.data, operand.shape)).dataSync() as Float32Array));
    });
  }
  test(`${name} broadcasts a smaller left operand too ([1, C, 1, 1] op x)`, async () => {
    const a = randomTensor([1, 3, 1, 1], 51, 0.5, 2);
    const b = randomTensor(dims, 52, 0.5, 2);
    const g = new Graph();
    const y = fn(g.constant(a, 'a'), g.input('x', ['N', 3, 'H', 'W']));
    assert.deepEqual(y.shape, ['N', 3, 'H', 'W']);
    g.output(y, 'y');
    const result = await runSingle(g, { x: { data: b.data, dims } });
    assertClose(result.data, tf.tidy(() => oracle(tf.tensor(a.data, a.shape), tf.tensor(b.data, dims)).dataSync() as Float32Array));
  });
}

test('g.apply with the op objects is the same as the functional spelling', async () => {
  const x = randomTensor(dims, 61);
  const g = new Graph();
  const input = g.input('x', dims);
  const y = g.apply(ops.mul, [g.apply(ops.sigmoid, [input], {}), g.scalar(3)], {}, 'scaled');
  assert.equal(y.name, 'scaled');
  g.output(y, 'y');
  const result = await runSingle(g, { x: { data: x.data, dims } });
  assertClose(result.data, tf.tidy(() => tf.mul(tf.sigmoid(tf.tensor(x.data, dims)), 3).dataSync() as Float32Array));
});

test('F.affine computes x·a + b', async () => {
  const x = randomTensor(dims, 71);
  const g = new Graph();
  g.output(F.affine(g.input('x', dims), 150, 127.5), 'y');
  const result = await runSingle(g, { x: { data: x.data, dims } });
  assertClose(result.data, Float32Array.from(x.data, (v) => v * 150 + 127.5));
});
