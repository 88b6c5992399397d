/**
 * The transformer network's other configurations (pytorch/examples TransformerNet, compact,
 * realtime) against an independent TF.js implementation of pytorch's module: reflection padding,
 * biased convolutions, nearest 2x upsampling + conv, no final norm; for realtime also a stride-2
 * first convolution and a sub-pixel output (CRD depth-to-space written out as reshape/transpose).
 * Parameters are random (seeded), layouts pytorch's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTransformer, initTransformerParams, transformerParamShapes, PYTORCH_EXAMPLES, COMPACT, LENGSTROM, REALTIME, ARCHITECTURES, resolveArchitecture, transformerMacs, type TransformerConfig } from '../../src/nets/transformer.js';
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
    // ONNX 'CRD' depth-to-space in NHWC: channel c·4 + 2a + b → pixel (2i + a, 2j + b) of channel c.
    const depthToSpace = (x: tf.Tensor4D): tf.Tensor4D => {
      const [n, hh, ww, c4] = x.shape;
      return tf.reshape(tf.transpose(tf.reshape(x, [n, hh, ww, c4 / 4, 2, 2]), [0, 1, 4, 2, 5, 3]), [n, hh * 2, ww * 2, c4 / 4]) as tf.Tensor4D;
    };
    const firstStride = config.firstStride ?? 1;
    let x = tf.tensor4d(image, [1, h, w, 3]);
    x = tf.relu(norm(conv(x, 'conv1', firstStride), 'in1'));
    x = tf.relu(norm(conv(x, 'conv2', 2), 'in2'));
    x = tf.relu(norm(conv(x, 'conv3', firstStride === 2 ? 1 : 2), 'in3'));
    for (let b = 1; b <= config.residualBlocks; b++) {
      const r = tf.relu(norm(conv(x, `res${b}.conv1`, 1), `res${b}.in1`));
      x = tf.add(x, norm(conv(r, `res${b}.conv2`, 1), `res${b}.in2`));
    }
    x = tf.relu(norm(conv(up(x), 'deconv1', 1), 'in4'));
    if (config.subpixelOutput) {
      x = depthToSpace(conv(x, 'deconv3', 1));
    } else {
      x = tf.relu(norm(conv(up(x), 'deconv2', 1), 'in5'));
      x = conv(x, 'deconv3', 1);
    }
    if (config.output === 'tanh') x = tf.add(tf.mul(tf.tanh(x), 150), 127.5);
    return tf.clipByValue(x, 0, 255).dataSync() as Float32Array;
  });
}

function randomImage(h: number, w: number): Float32Array {
  let s = 7;
  return Float32Array.from({ length: h * w * 3 }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 255);
}

// realtime at 68x52: multiples of 4 whose quarters (17x13) are odd, so a stride or crop off by one shows.
for (const [name, config, [h, w]] of [['pytorch-examples', PYTORCH_EXAMPLES, [36, 44]], ['compact', COMPACT, [36, 44]], ['realtime', REALTIME, [68, 52]]] as const) {
  test(`${name} configuration matches a TF.js implementation of pytorch's TransformerNet`, async () => {
    const params = initTransformerParams(config, 3);
    // Biases and norm parameters away from their defaults so a mix-up shows.
    for (const [key, t] of params) if (!key.endsWith('conv2d.weight')) t.data.forEach((_, i) => { t.data[i] = 0.5 + ((i * 37) % 11) / 10; });
    const model = await loadModel(toOnnxBytes(buildTransformer(config, params).graph), { threads: 1 });
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

test('realtime: stride-2 first convolution, sub-pixel output, no deconv2', () => {
  const shapes = transformerParamShapes(REALTIME);
  assert.deepEqual(shapes.get('conv1.conv2d.weight'), [16, 3, 3, 3]);
  assert.deepEqual(shapes.get('conv3.conv2d.weight'), [32, 16, 3, 3]);
  assert.deepEqual(shapes.get('res3.conv2.conv2d.weight'), [32, 32, 3, 3]);
  assert.deepEqual(shapes.get('deconv1.conv2d.weight'), [16, 32, 3, 3]);
  assert.deepEqual(shapes.get('deconv3.conv2d.weight'), [12, 16, 3, 3], '3 colours x 4 phases');
  assert.deepEqual(shapes.get('deconv3.conv2d.bias'), [12]);
  for (const name of ['deconv2.conv2d.weight', 'in5.weight', 'in6.weight', 'res4.conv1.conv2d.weight']) assert.equal(shapes.has(name), false, name);
  assert.equal(shapes.size, 42);
  const count = [...shapes.values()].reduce((sum, s) => sum + s.reduce((a, b) => a * b, 1), 0);
  assert.equal(count, 69_804);
  assert.equal(ARCHITECTURES.realtime, REALTIME);
  // Custom widths and blocks keep the preset's layout.
  const custom = resolveArchitecture('realtime', { widths: [8, 16, 24], residualBlocks: 2 });
  assert.equal(custom.name, 'realtime[8,16,24]x2');
  assert.deepEqual(transformerParamShapes(custom.config).get('deconv3.conv2d.weight'), [12, 16, 3, 3]);
});

test('MAC counts at 640x480 (the real-time budget, FIELD-NOTES: ~1.8 GMAC for 33 ms)', () => {
  // The same counts as summing k²·Cin·|output| over the conv nodes of the built 640x480 graph.
  assert.equal(transformerMacs(REALTIME, 480, 640), 1_714_176_000);
  assert.equal(transformerMacs(COMPACT, 480, 640), 10_174_464_000);
  assert.equal(transformerMacs(PYTORCH_EXAMPLES, 480, 640), 47_244_902_400, 'the Johnson net is ~47 GMAC');
  assert.equal(transformerMacs(LENGSTROM, 480, 640), 38_751_436_800, 'transposed convolutions: k²·Cout per input value');
});

test('the new options left unset keep every earlier preset as it was', () => {
  for (const config of [LENGSTROM, PYTORCH_EXAMPLES, COMPACT]) {
    const explicit = transformerParamShapes({ ...config, firstStride: 1, subpixelOutput: false });
    assert.deepEqual([...explicit], [...transformerParamShapes(config)]);
    assert.equal(transformerParamShapes(config).has('deconv2.conv2d.weight'), true);
  }
});

test('building with a missing or wrong-shaped parameter names it', () => {
  const params = initTransformerParams(LENGSTROM);
  params.delete('res2.in1.bias');
  assert.throws(() => buildTransformer(LENGSTROM, params), /Missing parameter 'res2.in1.bias'/);
  const wrong = initTransformerParams(LENGSTROM);
  wrong.set('conv2.conv2d.weight', { data: new Float32Array(64 * 32 * 9), shape: [32, 64, 3, 3] });
  assert.throws(() => buildTransformer(LENGSTROM, wrong), /Parameter 'conv2.conv2d.weight' has shape \[32, 64, 3, 3\] but the network needs \[64, 32, 3, 3\]/);
});
