/**
 * The training graph: d(loss)/d(every network parameter) from onnxruntime (float32) against
 * float64 central differences of the same loss evaluated by the independent interpreter
 * (eval64.ts), for every architecture at batch 2, with the perceptual loss (two styles, content,
 * TV) and with distillation (pixel + VGG feature), and distillation with the stability term. Each parameter tensor is checked along a random
 * direction: (L(θ + h·d) − L(θ − h·d)) / 2h against ⟨∇L, d⟩, so every coordinate takes part.
 * Networks are shrunk (widths 2-4, one residual block; realtime's stride-2 first convolution and
 * sub-pixel output kept) and VGG runs to relu2_1 with seeded
 * He weights at 8x8, so the float64 interpreter stays fast. The tolerance (2e-3 of |∇L||d|) is
 * loose next to the per-op checks (test/graph, ~1e-6): here float32 summation through a
 * whole network with a 2x2 instance-norm bottleneck that limits agreement (measured 3e-5 to 4e-4);
 * a wiring mistake — a gradient routed to the wrong parameter, a batch not summed — is O(1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/graph/index.js';
import { COMPACT, LENGSTROM, PYTORCH_EXAMPLES, REALTIME, initTransformerParams, transformerParamShapes, type TransformerConfig } from '../../src/nets/transformer.js';
import { gradName, lossTermNames, termName, trainingGraph, type TrainingLoss } from '../../src/style/train-graph.js';
import { KERNEL_INPUT, PERTURBED_INPUT, perturbBatch } from '../../src/style/stability.js';
import { evaluate64 } from '../helpers/eval64.js';
import { randomData, randomTensor, rng } from '../helpers/random.js';
import { runGraph } from '../helpers/run-graph.js';
import { randomVgg } from '../helpers/train.js';

const SIZE = 8;
const BATCH = 2;

const tiny = (base: TransformerConfig): TransformerConfig => ({ ...base, widths: [2, 3, 4], residualBlocks: 1, outerKernel: 3 });

/**
 * Parameters with every entry perturbed, so norms and biases are not at their identity start. A
 * linear output is scaled to span 0..255 as a trained network's does: near 0, VGG sees an almost
 * constant image (its mean is subtracted) and float32 Gram matrices lose the variations to rounding.
 */
function perturbedParams(config: TransformerConfig, seed: number): Map<string, Tensor> {
  const params = initTransformerParams(config, seed);
  const next = rng(seed + 1);
  for (const t of params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] += 0.2 * (2 * next() - 1);
  if (config.output === 'linear') {
    params.get('deconv3.conv2d.weight')!.data.forEach((v, i, a) => { a[i] = 60 * v; });
    params.get('deconv3.conv2d.bias')!.data.forEach((v, i, a) => { a[i] = v + 127.5; });
  }
  return params;
}

interface Case {
  readonly label: string;
  readonly config: TransformerConfig;
  readonly loss: TrainingLoss;
}

const vgg = randomVgg('relu2_1');
const perceptual: TrainingLoss = {
  kind: 'perceptual', vgg, contentLayers: ['relu1_2'], styleLayers: ['relu1_1', 'relu2_1'], styleLayerWeights: [1, 0.5],
  styleBlend: [0.7, 0.3], contentWeight: 1e-2, styleWeight: 1e-3, tvWeight: 1e-2,
};
const distill: TrainingLoss = { kind: 'distill', pixelWeight: 1e-2, featureWeight: 1e-2, featureLayer: 'relu1_2', vgg };

const stability = { weight: 1e-2, noise: 3, shift: 1 };

const cases: Case[] = [
  { label: 'pytorch-examples, perceptual', config: tiny(PYTORCH_EXAMPLES), loss: perceptual },
  { label: 'lengstrom, perceptual', config: tiny(LENGSTROM), loss: perceptual },
  { label: 'compact, perceptual', config: tiny(COMPACT), loss: perceptual },
  { label: 'compact, distillation with a feature term', config: tiny(COMPACT), loss: distill },
  { label: 'compact, distillation with the stability term', config: tiny(COMPACT), loss: { ...distill, stability } },
  { label: 'realtime, distillation with a feature term', config: tiny(REALTIME), loss: distill },
];

for (const [k, c] of cases.entries()) {
  test(`training graph gradients match float64 finite differences: ${c.label}, batch ${BATCH}`, async (t) => {
    const graph = trainingGraph({ config: c.config, batch: BATCH, size: SIZE, loss: c.loss });
    const params = perturbedParams(c.config, 11 + k);
    const feeds: Record<string, { data: Float32Array; shape: readonly number[] }> = {
      content: randomTensor([BATCH, 3, SIZE, SIZE], 30 + k, 0, 255),
    };
    if (c.loss.kind === 'perceptual') {
      [0, 1].forEach((s) => {
        feeds[`style${s}.relu1_1`] = randomTensor([64, 64], 40 + s, 0, 2e4);
        feeds[`style${s}.relu2_1`] = randomTensor([128, 128], 50 + s, 0, 2e4);
      });
    } else {
      feeds.teacher = randomTensor([BATCH, 3, SIZE, SIZE], 60 + k, 0, 255);
    }
    if (c.loss.stability) {
      const { perturbed, kernel } = perturbBatch(feeds.content.data, BATCH, SIZE, c.loss.stability, 5, k);
      feeds[PERTURBED_INPUT] = { data: perturbed, shape: [BATCH, 3, SIZE, SIZE] };
      feeds[KERNEL_INPUT] = { data: kernel, shape: [3, 3, 3, 3] };
    }
    for (const [name, tensor] of params) feeds[name] = tensor;

    const out = await runGraph(graph, Object.fromEntries(Object.entries(feeds).map(([n, v]) => [n, { data: v.data, dims: v.shape }])));
    const lossValue = graph.outputs.find((o) => o.name === 'loss')!.value;
    const loss64 = (overrides: Record<string, { data: Float64Array; shape: readonly number[] }> = {}): number =>
      evaluate64(graph, [lossValue], { ...feeds, ...overrides })[0].data[0];
    const base = loss64();
    assert.ok(Math.abs(out.loss.data[0] - base) <= 1e-4 * Math.abs(base), `loss: onnxruntime ${out.loss.data[0]} vs float64 ${base}`);
    const termSum = lossTermNames(c.loss).reduce((sum, name) => sum + out[termName(name)].data[0], 0);
    assert.ok(Math.abs(termSum - out.loss.data[0]) <= 1e-5 * Math.abs(base), 'the terms add up to the loss');
    for (const name of lossTermNames(c.loss)) assert.ok(out[termName(name)].data[0] > 0, `${name} term is active`);

    const checks = [...transformerParamShapes(c.config)].map(([name, shape], p) => {
      const g = out[gradName(name)].data;
      assert.deepEqual(out[gradName(name)].dims, shape, `${name} gradient shape`);
      const direction = randomData(g.length, 100 + p);
      const x = Float64Array.from(feeds[name].data);
      // Small enough that no ReLU or max-pool kink is crossed: conv1 sees pixels of 0..255.
      const h = name.startsWith('conv1.') ? 1e-9 : 1e-7;
      const moved = (sign: number): number => loss64({ [name]: { data: x.map((v, i) => v + sign * h * direction[i]), shape } });
      const fd = (moved(1) - moved(-1)) / (2 * h);
      let dot = 0;
      let gNorm = 0;
      let dNorm = 0;
      for (let i = 0; i < g.length; i++) { dot += g[i] * direction[i]; gNorm += g[i] * g[i]; dNorm += direction[i] ** 2; }
      return { name, dot, fd, scale: Math.sqrt(gNorm * dNorm) };
    });
    // A gradient that is zero in exact arithmetic (a bias before instance norm) is float32 noise:
    // it is measured against a thousandth of the largest gradient of the problem.
    const floor = 1e-3 * Math.max(...checks.map((k) => k.scale));
    let worst = 0;
    for (const { name, dot, fd, scale } of checks) {
      const err = Math.abs(dot - fd) / Math.max(scale, floor);
      worst = Math.max(worst, err);
      assert.ok(err < 2e-3, `${c.label}: d(loss)/d(${name}) along a random direction is ${dot} but finite differences give ${fd} (error ${err.toExponential(2)} of |g||d|)`);
    }
    assert.ok(checks.filter((k) => k.scale > floor).length >= checks.length / 2, 'most parameters have a gradient');
    t.diagnostic(`worst directional error ${worst.toExponential(2)} of |g||d|`);
  });
}

test('a graph whose every loss weight is zero is refused', () => {
  assert.throws(() => trainingGraph({ config: tiny(COMPACT), batch: 1, size: SIZE, loss: { ...perceptual, contentWeight: 0, styleWeight: 0, tvWeight: 0 } }),
    /Every loss weight is zero/);
});
