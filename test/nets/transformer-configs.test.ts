/**
 * The transformer network's other configurations (pytorch/examples TransformerNet, compact) against
 * an independent TF.js implementation of pytorch's module: reflection padding, biased convolutions,
 * nearest 2x upsampling + conv, no final norm. Parameters are random (seeded), layouts pytorch's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTransformer, initTransformerParams, transformerParamShapes, PYTORCH_EXAMPLES, COMPACT, LENGSTROM, type TransformerConfig } from '../../src/nets/transformer.js';
import { toOnnxBytes, type Tensor } from '../../src/graph/index.js';
import { loadModel } from '../../src/runtime/session.js';
import { tf } from '../helpers/tf-reference.js';
import { maxAbsDiff } from '../helpers/compare.js';

/** pytorch's TransformerNet forward in TF.js (NHWC), from OIHW weights. */
function pytorchReference(config: TransformerConfig, params: ReadonlyMap<string, Tensor>, image: Float32Array, h: number, w: number): Float32Array {
  return tf.tidy(() => {
    const p = (name: string): tf.Tensor => tf.tensor(params.get(name)!.data, [...params.get(name)!.shape]);
    const conv = (x: tf.Tensor4D, name: string, stride: number): tf.Tensor4D => {
      const weight = p(`${name}.conv2d.weight`); // [out, in, k, k] → [k, k, in, out]
      const k = params.get(`${name}.conv2d.weight`)!.shape[2];
      const padded = tf.mirrorPad(x, [[0, 0], [Math.floor(k / 2), Math.floor(k / 2)], [Math.floor(k / 2), Math.floor(k / 2)], [0, 0]], 'reflect');
      return tf.add(tf.conv2d(padded, tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D, stride, 'valid'), p(`${name}.conv2d.bias`)) as tf.Tensor4D;
    };
    const norm = (x: tf.Tensor4D, name: string): tf.Tensor4D => {
      const { mean, variance } = tf.moments(x, [1, 2], true);
      return tf.add(tf.mul(p(`${name}.weight`), tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, config.normEpsilon)))), p(`${name}.bias`)) as tf.Tensor4D;
    };
    const up = (x: tf.Tensor4D): tf.Tensor4D => tf.image.resizeNearestNeighbor(x, [x.shape[1] * 2, x.shape[2] * 2]);
    let x = tf.tensor4d(image, [1, h, w, 3]);
    x = tf.relu(norm(conv(x, 'conv1', 1), 'in1'));
    x = tf.relu(norm(conv(x, 'conv2', 2), 'in2'));
    x = tf.relu(norm(conv(x, 'conv3', 2), 'in3'));
    for (let b = 1; b <= config.residualBlocks; b++) {
      const r = tf.relu(norm(conv(x, `res${b}.conv1`, 1), `res${b}.in1`));
      x = tf.add(x, norm(conv(r, `res${b}.conv2`, 1), `res${b}.in2`));
    }
    x = tf.relu(norm(conv(up(x), 'deconv1', 1), 'in4'));
    x = tf.relu(norm(conv(up(x), 'deconv2', 1), 'in5'));
    x = conv(x, 'deconv3', 1);
    if (config.output === 'tanh') x = tf.add(tf.mul(tf.tanh(x), 150), 127.5);
    return tf.clipByValue(x, 0, 255).dataSync() as Float32Array;
  });
}

function randomImage(h: number, w: number): Float32Array {
  let s = 7;
  return Float32Array.from({ length: h * w * 3 }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 255);
}

for (const [name, config] of [['pytorch-examples', PYTORCH_EXAMPLES], ['compact', COMPACT]] as const) {
  test(`${name} configuration matches a TF.js implementation of pytorch's TransformerNet`, async () => {
    const params = initTransformerParams(config, 3);
    // Biases and norm parameters away from their defaults so a mix-up shows.
    for (const [key, t] of params) if (!key.endsWith('conv2d.weight')) t.data.forEach((_, i) => { t.data[i] = 0.5 + ((i * 37) % 11) / 10; });
    const model = await loadModel(toOnnxBytes(buildTransformer(config, params).graph), { threads: 1 });
    const [h, w] = [36, 44];
    const nhwc = randomImage(h, w);
    const nchw = new Float32Array(nhwc.length);
    for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) nchw[c * h * w + i] = nhwc[i * 3 + c];
    const out = await model.run({ image: { data: nchw, dims: [1, 3, h, w] } });
    assert.deepEqual(out.stylized.dims, [1, 3, h, w]);
    const ref = pytorchReference(config, params, nhwc, h, w);
    const refChw = new Float32Array(ref.length);
    for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) refChw[c * h * w + i] = ref[i * 3 + c];
    const diff = maxAbsDiff(out.stylized.data, refChw);
    assert.ok(diff < 0.05, `max difference ${diff}`);
  });
}

test('parameter shapes follow pytorch names and ONNX layouts', () => {
  const lengstrom = transformerParamShapes(LENGSTROM);
  assert.deepEqual(lengstrom.get('conv1.conv2d.weight'), [32, 3, 9, 9]);
  assert.deepEqual(lengstrom.get('deconv1.conv2d.weight'), [128, 64, 3, 3], 'transposed conv: [in, out, k, k]');
  assert.equal(lengstrom.has('conv1.conv2d.bias'), false);
  assert.deepEqual(lengstrom.get('in6.weight'), [3]);
  assert.equal(lengstrom.size, 48);
  const pytorch = transformerParamShapes(PYTORCH_EXAMPLES);
  assert.deepEqual(pytorch.get('deconv1.conv2d.weight'), [64, 128, 3, 3], 'upsample + conv: [out, in, k, k]');
  assert.equal(pytorch.has('in6.weight'), false);
  assert.equal(transformerParamShapes(COMPACT).get('res3.conv2.conv2d.weight')?.[0], 64);
});

test('building with a missing or wrong-shaped parameter names it', () => {
  const params = initTransformerParams(LENGSTROM);
  params.delete('res2.in1.bias');
  assert.throws(() => buildTransformer(LENGSTROM, params), /Missing parameter 'res2.in1.bias'/);
  const wrong = initTransformerParams(LENGSTROM);
  wrong.set('conv2.conv2d.weight', { data: new Float32Array(64 * 32 * 9), shape: [32, 64, 3, 3] });
  assert.throws(() => buildTransformer(LENGSTROM, wrong), /Parameter 'conv2.conv2d.weight' has shape \[32, 64, 3, 3\] but the network needs \[64, 32, 3, 3\]/);
});
