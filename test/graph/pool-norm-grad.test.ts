/**
 * Gradients of pooling, instance normalisation and nearest upsampling against float64 finite
 * differences and TF.js (NHWC). Max pooling is checked at even and odd sizes, over several images
 * and channels (MaxPool's indices run over the whole tensor), with overlapping windows, and for
 * its tie rule; average pooling where it drops the last row and column.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, grad } from '../../src/graph/index.js';
import { checkOpGradients, pasticheGradients, type OpGradCase } from '../helpers/grad-check.js';
import { randomTensor } from '../helpers/random.js';
import { tf } from '../helpers/tf-reference.js';

const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t as tf.Tensor4D, [0, 2, 3, 1]);
const nchw = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t as tf.Tensor4D, [0, 3, 1, 2]);

const run = (c: OpGradCase) => async (t: { diagnostic(message: string): void }) => {
  const result = await checkOpGradients(c);
  t.diagnostic(`finite differences ${result.fd.toExponential(1)}${result.tf === undefined ? '' : `, TF.js ${result.tf.toExponential(1)}`}`);
};

const pools: [shape: number[], kernel: number, stride: number][] = [
  [[1, 1, 4, 4], 2, 2],
  [[2, 3, 5, 5], 2, 2],
  [[2, 2, 6, 7], 2, 2],
  [[1, 2, 7, 7], 3, 2],
  [[1, 2, 7, 8], 3, 3],
];

pools.forEach(([shape, kernel, stride], i) => {
  test(`maxPool2d gradient, ${kernel}x${kernel} stride ${stride} on [${shape}]`, run({
    label: `maxPool2d ${kernel}/${stride} [${shape}]`,
    inputs: { x: randomTensor(shape, 10 + i) },
    forward: (x) => F.maxPool2d(x, kernel, stride),
    tf: (x) => nchw(tf.maxPool(nhwc(x), kernel, stride, 'valid')),
  }));
  if (kernel !== stride) return;
  test(`avgPool2d gradient, ${kernel}x${kernel} stride ${stride} on [${shape}]`, run({
    label: `avgPool2d ${kernel}/${stride} [${shape}]`,
    inputs: { x: randomTensor(shape, 20 + i) },
    forward: (x) => F.avgPool2d(x, kernel, stride),
    tf: (x) => nchw(tf.avgPool(nhwc(x), kernel, stride, 'valid')),
  }));
});

test('maxPool2d shares a tied window\'s gradient equally among its maxima', async () => {
  const g = new Graph();
  const x = g.input('x', [1, 1, 2, 4]);
  const y = F.maxPool2d(x, 2);
  const loss = F.reduceSum(F.mul(y, g.constant({ data: Float32Array.of(3, 5), shape: [1, 1, 1, 2] })));
  const { grads: [dx] } = await pasticheGradients({
    graph: g, loss, wrt: [x], feeds: { x: { data: Float32Array.of(1, 1, 0, 2, 1, 1, 2, 2), shape: [1, 1, 2, 4] } },
  });
  // Window 1 is all 1s (four maxima share 3); window 2 has three 2s (they share 5).
  const expected = [3 / 4, 3 / 4, 0, 5 / 3, 3 / 4, 3 / 4, 5 / 3, 5 / 3];
  [...dx].forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `dx[${i}] = ${v}, expected ${expected[i]}`));
});

test('avgPool2d has no gradient rule for overlapping windows', () => {
  const g = new Graph();
  const x = g.input('x', [1, 1, 5, 5]);
  const loss = F.reduceSum(F.avgPool2d(x, 3, 2));
  assert.throws(() => grad(loss, [x]), { name: 'Error', message: /avgPool2d: no gradient rule for overlapping or gapped windows/ });
});

test('instanceNorm gradient w.r.t. input, scale and bias (batch 2)', run({
  label: 'instanceNorm',
  inputs: { x: randomTensor([2, 3, 4, 5], 30, -2, 2), scale: randomTensor([3], 31, 0.5, 1.5), bias: randomTensor([3], 32) },
  params: ['scale', 'bias'],
  forward: (x, scale, bias) => F.instanceNorm(x, scale, bias, 1e-5),
  tf: (x, scale, bias) => {
    const { mean, variance } = tf.moments(x, [2, 3], true);
    const normalized = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5)));
    return tf.add(tf.mul(normalized, tf.reshape(scale, [1, 3, 1, 1])), tf.reshape(bias, [1, 3, 1, 1]));
  },
}));

test('instanceNorm gradient with a large epsilon against a channel of tiny variance', run({
  label: 'instanceNorm epsilon',
  inputs: { x: randomTensor([1, 2, 3, 3], 33, -0.01, 0.01), scale: randomTensor([2], 34, 0.5, 1.5), bias: randomTensor([2], 35) },
  params: ['scale', 'bias'],
  forward: (x, scale, bias) => F.instanceNorm(x, scale, bias, 1e-3),
  tf: (x, scale, bias) => {
    const { mean, variance } = tf.moments(x, [2, 3], true);
    const normalized = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-3)));
    return tf.add(tf.mul(normalized, tf.reshape(scale, [1, 2, 1, 1])), tf.reshape(bias, [1, 2, 1, 1]));
  },
}));

for (const scale of [2, 3]) {
  test(`upsampleNearest gradient, scale ${scale}`, run({
    label: `upsampleNearest ${scale}`,
    inputs: { x: randomTensor([2, 2, 3, 4], 40 + scale) },
    forward: (x) => F.upsampleNearest(x, scale),
    // One image at a time: tfjs-backend-cpu 4.22's ResizeNearestNeighborGrad is wrong for a batch
    // of more than one (measured: it disagrees with 4 × avgPool of dy), though its forward is right.
    tf: (x) => nchw(tf.concat(tf.split(nhwc(x), 2).map((image) => tf.image.resizeNearestNeighbor(image as tf.Tensor4D, [3 * scale, 4 * scale])))),
  }));
}
