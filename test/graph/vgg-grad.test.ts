/**
 * The whole Gatys loss gradient through VGG19 at 64x64 — content loss at relu4_2 and Gram style
 * losses at relu1_1 … relu5_1, with max and with average pooling — against TF.js's tf.grads of
 * the same loss written with TF.js ops (NHWC, 'same' convolutions, Caffe preprocessing as a
 * channel reversal and mean subtraction). Seeded He-initialised weights stand in for trained ones.
 *
 * TF.js runs on its wasm backend here: the CPU backend needs ~8 s per pooling mode for this
 * forward + backward pass on 2 cores (wasm ~2.5 s). The per-op gradient tests use the CPU backend;
 * PASTICHE_TF_BACKEND=cpu runs this one on it too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, Graph, grad, toOnnxBytes, type Tensor, type Value } from '../../src/graph/index.js';
import { buildVgg, vggParamShapes } from '../../src/nets/vgg.js';
import { Model, type RunTensor } from '../../src/runtime/session.js';
import { randomTensor, rng } from '../helpers/random.js';
import { tf } from '../helpers/tf-reference.js';
import { STYLE_TAPS, tfGatysLoss } from '../helpers/tf-vgg.js';

const backend = process.env.PASTICHE_TF_BACKEND ?? 'wasm';
if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
await tf.setBackend(backend);

const SIZE = 64;
const CONTENT_TAP = 'relu4_2';
const TAPS = [...STYLE_TAPS, CONTENT_TAP];
/**
 * Loss weights that give each term's gradient a largest magnitude near 1 with these seeded weights
 * and images (measured unweighted peaks — max: content 2.2e3, style 1.3, 48, 2.1e2, 7.6e2, 5.3e2;
 * avg: content 1.0e2, style 1.3, 2.2, 1.5, 2.7, 0.43), so no term hides below another's rounding.
 */
const WEIGHTS = {
  max: { content: 5e-4, style: [1, 2e-2, 5e-3, 1.3e-3, 2e-3] },
  avg: { content: 1e-2, style: [1, 0.5, 0.7, 0.4, 2] },
} as const;

/** Seeded He-initialised weights (uniform with variance 2 / fan-in), small random biases. */
function heWeights(): Map<string, Tensor> {
  const params = new Map<string, Tensor>();
  const next = rng(2024);
  for (const [name, shape] of vggParamShapes(19, 'relu5_1')) {
    const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : 0;
    const bound = fanIn > 0 ? Math.sqrt(6 / fanIn) : 0.05;
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = bound * (2 * next() - 1);
    params.set(name, { data, shape });
  }
  return params;
}

function gram(f: Value): Value {
  const [, c, h, w] = f.shape as number[];
  const rows = F.reshape(f, [c, h * w]);
  return F.scale(F.matmul(rows, F.transpose(rows, [1, 0])), 1 / (c * h * w));
}

interface Targets {
  readonly content: Tensor;
  readonly grams: ReadonlyMap<string, Tensor>;
}

async function run(graph: Graph, feeds: Record<string, RunTensor>): Promise<Record<string, RunTensor>> {
  const model = await Model.create(toOnnxBytes(graph), 'vgg19 loss', { threads: 1 });
  try {
    return await model.run(feeds);
  } finally {
    await model.release();
  }
}

/**
 * pastiche: one ONNX graph computing the targets (content features and Gram matrices of `target`,
 * which do not depend on `image`), the loss, and d(loss)/d(image).
 */
async function pasticheLoss(target: Tensor, image: Tensor, params: Map<string, Tensor>, pooling: 'max' | 'avg'): Promise<{ loss: number; dx: Float32Array; targets: Targets }> {
  const g = new Graph();
  const options = { depth: 19, pooling, preprocessing: 'caffe', taps: TAPS } as const;
  const wanted = buildVgg(g, g.input('target', target.shape), params, options);
  const x = g.input('x', image.shape);
  const taps = buildVgg(g, x, params, options);
  const contentTarget = wanted.get(CONTENT_TAP)!;
  const weights = WEIGHTS[pooling];
  let loss = F.scale(F.reduceSum(F.square(F.sub(taps.get(CONTENT_TAP)!, contentTarget))), weights.content);
  g.output(contentTarget, 'content');
  STYLE_TAPS.forEach((name, k) => {
    const gramTarget = gram(wanted.get(name)!);
    g.output(gramTarget, `gram_${name}`);
    loss = F.add(loss, F.scale(F.reduceSum(F.square(F.sub(gram(taps.get(name)!), gramTarget))), weights.style[k]));
  });
  const [dx] = grad(loss, [x]);
  g.output(loss, 'loss');
  g.output(dx, 'dx');
  const out = await run(g, { target: { data: target.data, dims: target.shape }, x: { data: image.data, dims: image.shape } });
  const tensor = (t: RunTensor): Tensor => ({ data: t.data, shape: [...t.dims] });
  const targets = { content: tensor(out.content), grams: new Map(STYLE_TAPS.map((n) => [n, tensor(out[`gram_${n}`])])) };
  return { loss: out.loss.data[0], dx: out.dx.data, targets };
}

function image(seed: number): Tensor {
  return randomTensor([1, 3, SIZE, SIZE], seed, 0, 255);
}

const params = heWeights();

for (const pooling of ['max', 'avg'] as const) {
  test(`VGG19 Gatys loss gradient at ${SIZE}x${SIZE} (${pooling} pooling) matches TF.js`, async (t) => {
    const x = image(2);
    const ours = await pasticheLoss(image(1), x, params, pooling);
    const started = Date.now();
    const theirs = tfGatysLoss(x, params, pooling, ours.targets, WEIGHTS[pooling]);
    const tfMs = Date.now() - started;
    let maxDiff = 0;
    let scale = 0;
    let sq = 0;
    let sqRef = 0;
    for (let i = 0; i < theirs.dx.length; i++) {
      const d = ours.dx[i] - theirs.dx[i];
      maxDiff = Math.max(maxDiff, Math.abs(d));
      scale = Math.max(scale, Math.abs(theirs.dx[i]));
      sq += d * d;
      sqRef += theirs.dx[i] ** 2;
    }
    t.diagnostic(`loss ${ours.loss.toExponential(4)} vs TF.js ${theirs.loss.toExponential(4)}; ` +
      `dx max |diff| ${(maxDiff / scale).toExponential(2)} of max |dx| ${scale.toExponential(2)}, relative L2 ${Math.sqrt(sq / sqRef).toExponential(2)}; TF.js (${tf.getBackend()}) took ${tfMs} ms`);
    // The Gram terms subtract nearly equal float32 sums, so the loss itself agrees less closely.
    assert.ok(Math.abs(ours.loss - theirs.loss) <= 1e-3 * Math.abs(theirs.loss), `loss ${ours.loss} vs ${theirs.loss}`);
    assert.ok(scale > 0);
    assert.ok(maxDiff <= 1e-3 * scale, `max |dx − dx_tf| is ${(maxDiff / scale).toExponential(2)} of max |dx_tf|`);
  });
}
