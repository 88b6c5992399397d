/**
 * Gradients of the elementwise ops against float64 finite differences and TF.js: every binary op
 * w.r.t. both inputs, including broadcast inputs whose gradients autodiff must sum back to their
 * shape, and every unary op at points away from its kinks (and, against TF.js only, at them).
 */
import { test } from 'node:test';
import { F } from '../../src/graph/index.js';
import { checkOpGradients, type Dense, type OpGradCase } from '../helpers/grad-check.js';
import { randomTensor } from '../helpers/random.js';
import { tf } from '../helpers/tf-reference.js';

/** Uniform values with |v| in [lo, hi) and random sign: away from zero. */
function awayFromZero(shape: readonly number[], seed: number, lo = 0.2, hi = 1.5): Dense {
  const t = randomTensor(shape, seed);
  return { data: t.data.map((v) => Math.sign(v || 1) * (lo + (hi - lo) * Math.abs(v))), shape: t.shape };
}

const run = (c: OpGradCase) => async (t: { diagnostic(message: string): void }) => {
  const result = await checkOpGradients(c);
  t.diagnostic(`finite differences ${result.fd.toExponential(1)}${result.tf === undefined ? '' : `, TF.js ${result.tf.toExponential(1)}`}`);
};

const binaries = [
  { name: 'add', f: F.add, tf: tf.add },
  { name: 'sub', f: F.sub, tf: tf.sub },
  { name: 'mul', f: F.mul, tf: tf.mul },
  { name: 'div', f: F.div, tf: tf.div },
] as const;

// [a shape, b shape]: same shape, per-channel bias, lower-rank operand, both broadcast, a scalar.
const broadcasts: [number[], number[]][] = [
  [[2, 3, 4], [2, 3, 4]],
  [[1, 3, 4, 4], [1, 3, 1, 1]],
  [[2, 3, 4, 4], [3, 1, 1]],
  [[2, 1, 4], [3, 1]],
  [[1, 3, 2, 2], []],
];

binaries.forEach(({ name, f, tf: tfOp }, i) => {
  broadcasts.forEach(([aShape, bShape], j) => {
    test(`${name} gradient w.r.t. both inputs, [${aShape}] with [${bShape}]`, run({
      label: `${name} [${aShape}] [${bShape}]`,
      inputs: { a: randomTensor(aShape, 10 * i + j), b: awayFromZero(bShape, 100 + 10 * i + j) },
      forward: (a, b) => f(a, b),
      tf: (a, b) => tfOp(a, b),
    }));
  });
});

test('div gradient w.r.t. a parameter divisor', run({
  label: 'div param',
  inputs: { a: randomTensor([2, 3], 1), b: awayFromZero([2, 3], 2) },
  params: ['b'],
  forward: (a, b) => F.div(a, b),
  tf: (a, b) => tf.div(a, b),
}));

const unaries: { name: string; f: typeof F.relu; tf: (x: tf.Tensor) => tf.Tensor; x: Dense }[] = [
  { name: 'neg', f: F.neg, tf: tf.neg, x: randomTensor([2, 3, 4], 20) },
  { name: 'relu', f: F.relu, tf: tf.relu, x: awayFromZero([2, 3, 4], 21, 0.05, 2) },
  { name: 'tanh', f: F.tanh, tf: tf.tanh, x: randomTensor([2, 3, 4], 22, -2, 2) },
  { name: 'sigmoid', f: F.sigmoid, tf: tf.sigmoid, x: randomTensor([2, 3, 4], 23, -3, 3) },
  { name: 'sqrt', f: F.sqrt, tf: tf.sqrt, x: randomTensor([2, 3, 4], 24, 0.3, 4) },
  { name: 'exp', f: F.exp, tf: tf.exp, x: randomTensor([2, 3, 4], 25, -2, 2) },
  { name: 'square', f: F.square, tf: tf.square, x: randomTensor([2, 3, 4], 26, -2, 2) },
];

for (const u of unaries) {
  test(`${u.name} gradient`, run({ label: u.name, inputs: { x: u.x }, forward: (x) => u.f(x), tf: (x) => u.tf(x) }));
}

// Values in [-1, 1) moved 0.1 outward where within 0.05 of the bounds ±0.5.
const clipInput = randomTensor([2, 3, 4], 30);
test('clip gradient away from the bounds', run({
  label: 'clip',
  inputs: { x: { data: clipInput.data.map((v) => (Math.abs(Math.abs(v) - 0.5) < 0.05 ? v + 0.1 * Math.sign(v) : v)), shape: clipInput.shape } },
  forward: (x) => F.clip(x, -0.5, 0.5),
  tf: (x) => tf.clipByValue(x, -0.5, 0.5),
}));

test('relu and clip subgradients at the kinks agree with TF.js (relu′(0) = 0, clip′ = 1 on the bounds)', run({
  label: 'kinks',
  inputs: { x: { data: Float32Array.of(-1, -0.5, 0, 0.25, 0.5, 1), shape: [6] } },
  forward: (x) => F.add(F.relu(x), F.clip(x, -0.5, 0.5)),
  tf: (x) => tf.add(tf.relu(x), tf.clipByValue(x, -0.5, 0.5)),
  // Finite differences straddle the kinks, so only TF.js's convention is checked.
  options: { samples: 0 },
}));

const maskInput = awayFromZero([3, 4], 40, 0.05, 2);
test('rangeMask passes no gradient (its rule returns null), so x·mask(x) differentiates to mask(x)', run({
  label: 'rangeMask',
  inputs: { x: maskInput },
  forward: (x) => F.mul(x, F.rangeMask(x, 0, 1)),
  // The mask is piecewise constant: a constant in TF.js.
  tf: (x) => tf.mul(x, tf.tensor(maskInput.data.map((v) => (v >= 0 && v <= 1 ? 1 : 0)), [3, 4])),
}));
