/**
 * Gradients of conv2d and convTranspose2d w.r.t. input, weights and bias: against float64 finite
 * differences and TF.js (NHWC / HWIO, TensorFlow SAME). The cases cover each path of the rules in
 * conv-grad.ts — stride 1 as a flipped-kernel conv, strided as a transposed conv (sub-pixel
 * lowered or not), pads beyond the kernel, rows no window reached — and the forward lowerings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph } from '../../src/graph/index.js';
import type { ConvLowering, Padding2d } from '../../src/graph/ops/conv.js';
import { checkOpGradients, pasticheGradients, type Dense } from '../helpers/grad-check.js';
import { randomTensor } from '../helpers/random.js';
import { tf } from '../helpers/tf-reference.js';

const nhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t as tf.Tensor4D, [0, 2, 3, 1]);
const nchw = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t as tf.Tensor4D, [0, 3, 1, 2]);

interface ConvCase {
  readonly name: string;
  readonly x: readonly number[];
  readonly w: readonly number[];
  readonly bias?: boolean;
  readonly stride: number;
  readonly padding: 'same' | Padding2d;
  readonly lowering?: ConvLowering;
}

const conv2dCases: ConvCase[] = [
  { name: 'stride 1, same, batch 2', x: [2, 3, 5, 5], w: [4, 3, 3, 3], bias: true, stride: 1, padding: 'same' },
  { name: 'stride 2, same, even size', x: [1, 2, 8, 8], w: [3, 2, 3, 3], bias: true, stride: 2, padding: 'same' },
  { name: 'stride 2, same, odd size', x: [1, 2, 7, 7], w: [3, 2, 3, 3], bias: true, stride: 2, padding: 'same' },
  { name: 'stride 2, same, odd height, even width, batch 2', x: [2, 2, 7, 6], w: [3, 2, 3, 3], stride: 2, padding: 'same' },
  { name: 'stride 2, 4x4 kernel, same', x: [1, 2, 8, 8], w: [2, 2, 4, 4], bias: true, stride: 2, padding: 'same' },
  { name: 'stride 2, pads [1,1,1,1]', x: [1, 2, 8, 8], w: [3, 2, 3, 3], bias: true, stride: 2, padding: [1, 1, 1, 1] },
  { name: "stride 2, no padding (last row and column untouched)", x: [1, 2, 8, 8], w: [3, 2, 3, 3], bias: true, stride: 2, padding: [0, 0, 0, 0] },
  { name: 'stride 1, asymmetric pads [2,0,1,1]', x: [1, 2, 5, 6], w: [3, 2, 3, 3], bias: true, stride: 1, padding: [2, 0, 1, 1] },
  { name: 'stride 1, pads beyond the kernel [3,1,0,2]', x: [1, 2, 5, 5], w: [2, 2, 3, 3], stride: 1, padding: [3, 1, 0, 2] },
  { name: 'stride 1, 5x5 kernel to 3 channels (space-to-depth lowering)', x: [1, 2, 8, 8], w: [3, 2, 5, 5], bias: true, stride: 1, padding: [2, 2, 2, 2] },
  { name: 'stride 1, 5x5 kernel to 3 channels, direct', x: [1, 2, 8, 8], w: [3, 2, 5, 5], bias: true, stride: 1, padding: [2, 2, 2, 2], lowering: 'direct' },
  { name: '1x1 kernel', x: [2, 3, 3, 4], w: [2, 3, 1, 1], bias: true, stride: 1, padding: [0, 0, 0, 0] },
  { name: 'stride 1, 2x2 kernel, same', x: [1, 2, 5, 5], w: [3, 2, 2, 2], bias: true, stride: 1, padding: 'same' },
  { name: 'stride 1, 4x4 kernel, same', x: [1, 2, 6, 5], w: [2, 2, 4, 4], stride: 1, padding: 'same' },
  { name: 'stride 2, 1x1 kernel, same', x: [1, 3, 8, 7], w: [2, 3, 1, 1], bias: true, stride: 2, padding: 'same' },
  { name: 'stride 2, 2x2 kernel, no padding', x: [1, 2, 6, 6], w: [3, 2, 2, 2], stride: 2, padding: [0, 0, 0, 0] },
  { name: 'stride 1, 5x5 kernel, 4 channels into 2, batch 3 (weight gradient from shifted dY)', x: [3, 4, 7, 6], w: [2, 4, 5, 5], bias: true, stride: 1, padding: [2, 2, 2, 2] },
  { name: 'stride 1, 3x3 kernel, 3 channels into 1, asymmetric pads [1,0,2,1], batch 2 (shifted dY)', x: [2, 3, 5, 6], w: [1, 3, 3, 3], stride: 1, padding: [1, 0, 2, 1] },
  { name: 'stride 1, 9x9 kernel from 3 channels, batch 2 (weight gradient from stacked input windows)', x: [2, 3, 10, 10], w: [4, 3, 9, 9], bias: true, stride: 1, padding: [4, 4, 4, 4] },
  { name: 'stride 1, 9x9 kernel into 3 channels, batch 2 (weight gradient from stacked shifts of dY)', x: [2, 5, 10, 10], w: [3, 5, 9, 9], bias: true, stride: 1, padding: [4, 4, 4, 4] },
  { name: 'stride 3, 3x3 kernel, no padding (two rows untouched)', x: [1, 2, 8, 8], w: [2, 2, 3, 3], bias: true, stride: 3, padding: [0, 0, 0, 0] },
];

function tfPadding(padding: 'same' | Padding2d): 'same' | [[number, number], [number, number], [number, number], [number, number]] {
  return padding === 'same' ? 'same' : [[0, 0], [padding[0], padding[2]], [padding[1], padding[3]], [0, 0]];
}

conv2dCases.forEach((c, i) => {
  test(`conv2d gradient (${c.name}) w.r.t. input, weight${c.bias ? ', bias' : ''}`, async (t) => {
    const inputs: Record<string, Dense> = {
      x: randomTensor(c.x, 100 + i),
      w: randomTensor(c.w, 200 + i),
      ...(c.bias ? { b: randomTensor([c.w[0]], 300 + i) } : {}),
    };
    const attrs = { stride: c.stride, padding: c.padding, lowering: c.lowering };
    const result = await checkOpGradients({
      label: `conv2d ${c.name}`,
      inputs,
      params: ['w', 'b'],
      forward: (x, w, b) => F.conv2d(x, w, b, attrs),
      tf: (x, w, b) => {
        const y = tf.conv2d(nhwc(x), tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D, c.stride, tfPadding(c.padding));
        return nchw(b ? tf.add(y, b) : y);
      },
    });
    t.diagnostic(`finite differences ${result.fd.toExponential(1)}, TF.js ${result.tf!.toExponential(1)}`);
  });
});

test('conv2d gradient gives exactly zero to input rows and columns that no window reads', async () => {
  const g = new Graph();
  const x = g.input('x', [1, 2, 8, 8]);
  const y = F.conv2d(x, g.param('w', randomTensor([3, 2, 3, 3], 5)), undefined, { stride: 2, padding: [0, 0, 0, 0] });
  const loss = F.reduceSum(F.mul(y, g.constant(randomTensor(y.shape as number[], 6))));
  const { grads: [dx] } = await pasticheGradients({ graph: g, loss, wrt: [x], feeds: { x: randomTensor([1, 2, 8, 8], 7) } });
  for (let c = 0; c < 2; c++) {
    for (let k = 0; k < 8; k++) {
      assert.equal(dx[c * 64 + 7 * 8 + k], 0, `row 7, column ${k}`);
      assert.equal(dx[c * 64 + k * 8 + 7], 0, `row ${k}, column 7`);
    }
  }
  assert.ok(dx.slice(0, 7 * 8).some((v) => v !== 0));
});

interface ConvTransposeCase {
  readonly name: string;
  readonly x: readonly number[];
  /** [Cin, Cout, K, K] */
  readonly w: readonly number[];
  readonly bias?: boolean;
  readonly stride: number;
  readonly pads: Padding2d;
  readonly lowering?: ConvLowering;
}

const convTransposeCases: ConvTransposeCase[] = [
  { name: 'k3 s2 pads [0,0,1,1] (sub-pixel lowered)', x: [1, 3, 4, 4], w: [3, 2, 3, 3], bias: true, stride: 2, pads: [0, 0, 1, 1] },
  { name: 'k3 s2 pads [0,0,1,1], direct, batch 2', x: [2, 3, 4, 3], w: [3, 2, 3, 3], bias: true, stride: 2, pads: [0, 0, 1, 1], lowering: 'direct' },
  { name: 'k4 s2 pads [1,1,1,1] (sub-pixel lowered)', x: [1, 2, 3, 4], w: [2, 3, 4, 4], bias: true, stride: 2, pads: [1, 1, 1, 1] },
  { name: 'k3 s2 pads [1,1,1,1] (not lowered)', x: [1, 2, 4, 4], w: [2, 3, 3, 3], bias: true, stride: 2, pads: [1, 1, 1, 1] },
  { name: 'k3 s1 asymmetric pads [0,1,2,1], batch 2', x: [2, 2, 4, 5], w: [2, 2, 3, 3], stride: 1, pads: [0, 1, 2, 1] },
];

convTransposeCases.forEach((c, i) => {
  test(`convTranspose2d gradient (${c.name}) w.r.t. input, weight${c.bias ? ', bias' : ''}`, async (t) => {
    const inputs: Record<string, Dense> = {
      x: randomTensor(c.x, 400 + i),
      w: randomTensor(c.w, 500 + i),
      ...(c.bias ? { b: randomTensor([c.w[1]], 600 + i) } : {}),
    };
    const [n, , h, width] = c.x;
    const [, cout, k] = c.w;
    const [top, left, bottom, right] = c.pads;
    const full = [(h - 1) * c.stride + k, (width - 1) * c.stride + k];
    const result = await checkOpGradients({
      label: `convTranspose2d ${c.name}`,
      inputs,
      params: ['w', 'b'],
      forward: (x, w, b) => F.convTranspose2d(x, w, b, { stride: c.stride, pads: c.pads, lowering: c.lowering }),
      // TF's 'valid' transposed conv gives the full output; ONNX pads crop it.
      tf: (x, w, b) => {
        const filter = tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D;
        const y = tf.conv2dTranspose(nhwc(x), filter, [n, full[0], full[1], cout], c.stride, 'valid');
        const cropped = tf.slice(y, [0, top, left, 0], [n, full[0] - top - bottom, full[1] - left - right, cout]);
        return nchw(b ? tf.add(cropped, b) : cropped);
      },
    });
    t.diagnostic(`finite differences ${result.fd.toExponential(1)}, TF.js ${result.tf!.toExponential(1)}`);
  });
});
