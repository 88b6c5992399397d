/**
 * The reverse sweep itself (autodiff.ts): a chain of ops against finite differences and TF.js,
 * fan-out accumulation, gradients w.r.t. intermediate and unused values, the errors it promises,
 * that every op with a gradient rule is covered by a gradient test, and that the checker catches
 * a wrong rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, grad, ops, type OpDef } from '../../src/graph/index.js';
import { checkGradients, pasticheGradients, relativeMaxDiff, tfGradients } from '../helpers/grad-check.js';
import { randomTensor } from '../helpers/random.js';
import { tf } from '../helpers/tf-reference.js';

const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t as tf.Tensor4D, [0, 2, 3, 1]);
const nchw = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t as tf.Tensor4D, [0, 3, 1, 2]);

test('a chain conv(stride 2, same) → relu → maxPool → convTranspose → instanceNorm → tanh → square → sum', async (t) => {
  const values = {
    x: randomTensor([1, 2, 8, 8], 1),
    w1: randomTensor([4, 2, 3, 3], 2),
    b1: randomTensor([4], 3),
    w2: randomTensor([4, 3, 3, 3], 4),
    b2: randomTensor([3], 5),
    scale: randomTensor([3], 6, 0.5, 1.5),
    shift: randomTensor([3], 7),
  };
  const names = Object.keys(values) as (keyof typeof values)[];
  const result = await checkGradients(() => {
    const g = new Graph();
    const x = g.input('x', values.x.shape);
    const p = names.slice(1).map((n) => g.param(n, values[n]));
    const [w1, b1, w2, b2, scale, shift] = p;
    let y = F.maxPool2d(F.relu(F.conv2d(x, w1, b1, { stride: 2, padding: 'same' })), 2);
    y = F.convTranspose2d(y, w2, b2, { stride: 2, pads: [0, 0, 1, 1] });
    const loss = F.reduceSum(F.square(F.tanh(F.instanceNorm(y, scale, shift, 1e-5))));
    return { graph: g, loss, wrt: [x, ...p], feeds: { x: values.x } };
  }, { label: 'chain' });
  const expected = tfGradients((x, w1, b1, w2, b2, scale, shift) => {
    let y = tf.relu(tf.add(tf.conv2d(nhwc(x), tf.transpose(w1, [2, 3, 1, 0]) as tf.Tensor4D, 2, 'same'), b1));
    y = tf.maxPool(y as tf.Tensor4D, 2, 2, 'valid');
    y = tf.add(tf.conv2dTranspose(y as tf.Tensor4D, tf.transpose(w2, [2, 3, 1, 0]) as tf.Tensor4D, [1, 4, 4, 3], 2, 'same'), b2);
    const { mean, variance } = tf.moments(nchw(y), [2, 3], true);
    const normalized = tf.div(tf.sub(nchw(y), mean), tf.sqrt(tf.add(variance, 1e-5)));
    const z = tf.add(tf.mul(normalized, tf.reshape(scale, [1, 3, 1, 1])), tf.reshape(shift, [1, 3, 1, 1]));
    return tf.sum(tf.square(tf.tanh(z)));
  }, names.map((n) => values[n]));
  // b2 is followed by instance norm, so its gradient is zero up to rounding on both sides.
  const b2 = names.indexOf('b2');
  const largest = Math.max(...result.grads.map((d) => d.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  for (const d of [result.grads[b2], expected[b2]]) assert.ok(d.every((v) => Math.abs(v) < 1e-6 * largest), `d/d(b2) = ${d}`);
  const diffs = names.map((n, k) => (k === b2 ? 0 : relativeMaxDiff(result.grads[k], expected[k])));
  diffs.forEach((d, k) => assert.ok(d < 1e-5, `d/d(${names[k]}) differs from TF.js by ${d.toExponential(2)} of its scale`));
  t.diagnostic(`finite differences ${result.worst.toExponential(1)}, TF.js ${Math.max(...diffs).toExponential(1)}`);
});

test('a value used twice accumulates both gradients: d/dx Σ(x·x + relu(x)) = 2x + [x > 0]', async () => {
  const x0 = randomTensor([2, 3, 4], 10);
  const result = await checkGradients(() => {
    const g = new Graph();
    const x = g.input('x', x0.shape);
    return { graph: g, loss: F.reduceSum(F.add(F.mul(x, x), F.relu(x))), wrt: [x], feeds: { x: x0 } };
  }, { label: 'fan-out' });
  result.grads[0].forEach((v, i) => assert.ok(Math.abs(v - (2 * x0.data[i] + (x0.data[i] > 0 ? 1 : 0))) < 1e-6, `element ${i}`));
});

test('gradients w.r.t. an intermediate value and w.r.t. its input in one call', async () => {
  const x0 = randomTensor([3, 4], 11);
  const g = new Graph();
  const x = g.input('x', x0.shape);
  const y = F.tanh(x);
  const loss = F.reduceSum(F.square(y));
  const { grads: [dy, dx] } = await pasticheGradients({ graph: g, loss, wrt: [y, x], feeds: { x: x0 } });
  x0.data.forEach((v, i) => {
    const th = Math.tanh(v);
    assert.ok(Math.abs(dy[i] - 2 * th) < 1e-6, `dy ${i}`);
    assert.ok(Math.abs(dx[i] - 2 * th * (1 - th * th)) < 1e-6, `dx ${i}`);
  });
});

test('a value the loss does not depend on gets a zero gradient of its shape', async () => {
  const g = new Graph();
  const x = g.input('x', [2, 3]);
  const unusedInput = g.input('unused', [4, 1, 2]);
  const unusedParam = g.param('p', randomTensor([5], 12));
  const elsewhere = g.param('q', randomTensor([2, 3], 13));
  g.output(F.mul(elsewhere, x), 'other'); // on another output, not on the loss's path
  const loss = F.reduceSum(F.square(x));
  const { grads } = await pasticheGradients({
    graph: g, loss, wrt: [x, unusedInput, unusedParam, elsewhere],
    feeds: { x: randomTensor([2, 3], 14), unused: randomTensor([4, 1, 2], 15) },
  });
  assert.deepEqual(grads.map((d) => d.length), [6, 8, 5, 6]);
  for (const d of grads.slice(1)) assert.ok(d.every((v) => v === 0));
});

test('a loss that is not a scalar is a RangeError; shape [1, 1] counts as a scalar', () => {
  const g = new Graph();
  const x = g.input('x', [2, 3]);
  assert.throws(() => grad(F.reduceSum(x, [1]), [x]), { name: 'RangeError', message: /autodiff: the loss must be a scalar, got shape \[2\]/ });
  assert.doesNotThrow(() => grad(F.reduceSum(x, [], true), [x]));
});

test('an op without a gradient rule fails naming the op type and node', () => {
  const noGrad: OpDef = {
    type: 'fakeOp',
    inferShape: (inputs) => inputs[0],
    emit: (e, { inputs, output }) => e.node('Identity', inputs, [output]),
  };
  const g = new Graph();
  const x = g.input('x', [2, 2]);
  const loss = F.reduceSum(g.apply(noGrad, [F.relu(x)], {}, 'mystery'));
  assert.throws(() => grad(loss, [x]), { name: 'Error', message: "autodiff: no gradient rule for fakeOp (node 'mystery')" });
});

test('a second derivative through overlapping max pooling fails: maxPool2dGrad has no rule', () => {
  const g = new Graph();
  const x = g.input('x', [1, 1, 5, 5]);
  const [dx] = grad(F.reduceSum(F.square(F.maxPool2d(x, 3, 2))), [x]);
  assert.throws(() => grad(F.reduceSum(dx), [x]), { message: /no gradient rule for maxPool2dGrad/ });
});

test('values of another graph are refused', () => {
  const a = new Graph();
  const b = new Graph();
  const x = a.input('x', [2]);
  assert.throws(() => grad(F.reduceSum(x), [b.input('y', [2])]), /belongs to another graph/);
});

test('a gradient rule that returns a wrongly shaped gradient of the same size is refused', () => {
  const transposing: OpDef = {
    type: 'badShape',
    inferShape: (inputs) => inputs[0],
    emit: (e, { inputs, output }) => e.node('Identity', inputs, [output]),
    grad: ({ dy }) => [F.transpose(dy, [1, 0])],
  };
  const g = new Graph();
  const x = g.input('x', [2, 3]);
  assert.throws(() => grad(F.reduceSum(g.apply(transposing, [x], {})), [x]), /badShape gave input 0 a gradient of shape \[3, 2\]/);
});

test('the checker catches a wrong gradient rule (square with dy·x instead of 2·dy·x)', async () => {
  const wrongSquare: OpDef = { ...ops.square, grad: ({ inputs: [x], dy }) => [F.mul(dy, x)] };
  await assert.rejects(checkGradients(() => {
    const g = new Graph();
    const x = g.input('x', [3]);
    return { graph: g, loss: F.reduceSum(g.apply(wrongSquare, [x], {})), wrt: [x], feeds: { x: randomTensor([3], 16) } };
  }, { label: 'wrong square' }), /wrong square: d\(loss\)\/d\(x\)\[\d\] is .* but finite differences give/);
});

// Every op type that has a gradient rule, and the file whose tests check it.
const covered: Record<string, string> = {
  conv2d: 'conv-grad', convTranspose2d: 'conv-grad',
  add: 'elementwise-grad', sub: 'elementwise-grad', mul: 'elementwise-grad', div: 'elementwise-grad',
  neg: 'elementwise-grad', relu: 'elementwise-grad', tanh: 'elementwise-grad', sigmoid: 'elementwise-grad',
  sqrt: 'elementwise-grad', exp: 'elementwise-grad', square: 'elementwise-grad', clip: 'elementwise-grad',
  rangeMask: 'elementwise-grad', equalMask: 'pool-norm-grad',
  instanceNorm: 'pool-norm-grad', maxPool2d: 'pool-norm-grad', avgPool2d: 'pool-norm-grad', upsampleNearest: 'pool-norm-grad',
  pad2d: 'shape-grad', crop2d: 'shape-grad', depthToSpace: 'shape-grad', spaceToDepth: 'shape-grad',
  reduceSum: 'shape-grad', reduceMean: 'shape-grad', reshape: 'shape-grad', transpose: 'shape-grad', flip: 'shape-grad',
  broadcastTo: 'shape-grad', concat: 'shape-grad', slice: 'shape-grad', padAxis: 'shape-grad', matmul: 'shape-grad',
};

test('every op in the registry with a gradient rule has gradient tests', () => {
  const registry = Object.values(ops).filter((v): v is OpDef<unknown> => typeof v === 'object' && v !== null && 'inferShape' in v);
  const withRule = registry.filter((op) => op.grad).map((op) => op.type).sort();
  assert.deepEqual(withRule, Object.keys(covered).sort());
  assert.deepEqual(registry.filter((op) => !op.grad).map((op) => op.type), ['maxPool2dGrad']);
});
