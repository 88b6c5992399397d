/**
 * Fidelity: pastiche's ONNX model of each pretrained lengstrom checkpoint agrees with an
 * independent TF.js implementation (test/helpers/tf-reference.ts) at an even and an odd size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildTransformer, LENGSTROM } from '../../src/nets/transformer.js';
import { readLengstromCheckpoint } from '../../src/weights/lengstrom.js';
import { toOnnxBytes } from '../../src/graph/onnx.js';
import { loadModel } from '../../src/runtime/session.js';
import { dataPath } from '../helpers/data.js';
import { lengstromReference, readTfVariables } from '../helpers/tf-reference.js';
import { hwcToChw, percentileAbsDiff } from '../helpers/compare.js';

const models = dataPath('models/fast-style');
const content = dataPath('images/content/tubingen.jpg');
const skip = models.skip || content.skip;
const TOLERANCE = 1e-3 * 255; // the acceptance bound: of the 0..255 range, at the 99.9th percentile
// The two implementations agree to ~5e-4 (0..255 units), far inside TOLERANCE. A wrong instance-norm
// epsilon moves real photos by only 0.016..0.14 at the 99.9th percentile, under TOLERANCE, so the
// comparison also holds a strict bound (1e-5 of the range) that such a mistake cannot pass.
const STRICT = 1e-5 * 255;


async function contentNhwc(width: number, height: number): Promise<Float32Array> {
  const raw = await sharp(content.path).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  return Float32Array.from(raw);
}

/** Output of the reference (NCHW, its own output size) and of pastiche for one checkpoint and size. */
async function bothOutputs(dir: string, width: number, height: number, mistakes = {}) {
  const nhwc = await contentNhwc(width, height);
  const params = await readLengstromCheckpoint(dir);
  const model = await loadModel(toOnnxBytes(buildTransformer(LENGSTROM, params).graph), { threads: 2 });
  const out = await model.run({ image: { data: hwcToChw(nhwc, height, width), dims: [1, 3, height, width] } });
  const [, , oh, ow] = out.stylized.dims;
  const reference = hwcToChw(lengstromReference(readTfVariables(dir), nhwc, height, width, mistakes), oh, ow);
  return { ours: out.stylized.data, reference, dims: out.stylized.dims };
}

const sizes: [string, number, number][] = [['even', 48, 40], ['odd', 45, 37]];

for (const style of skip ? ['la_muse'] : readdirSync(models.path).sort()) {
  for (const [kind, width, height] of sizes) {
    test(`${style}: ONNX output matches the TF.js reference at ${kind} size ${width}x${height}`, { skip }, async () => {
      const { ours, reference, dims } = await bothOutputs(join(models.path, style), width, height);
      // SAME padding rounds stride-2 sizes up and the transposed convolutions double them.
      assert.deepEqual(dims, [1, 3, 4 * Math.ceil(height / 4), 4 * Math.ceil(width / 4)]);
      const p999 = percentileAbsDiff(ours, reference, 99.9);
      assert.ok(p999 <= TOLERANCE, `99.9th percentile difference ${p999.toFixed(4)} exceeds ${TOLERANCE}`);
      assert.ok(p999 <= STRICT, `99.9th percentile difference ${p999.toFixed(5)} exceeds the strict bound ${STRICT}`);
    });
  }
}

// The comparison above must be able to fail: each classic mistake, made in the reference, shows.
const mistakes: [string, object][] = [
  ['instance-norm epsilon 1e-5', { epsilon: 1e-5 }],
  ['symmetric padding for stride 2', { symmetricStridePadding: true }],
  ['spatially flipped transposed-conv filter', { flipDeconvFilter: true }],
];
for (const [what, mistake] of mistakes) {
  test(`the fidelity comparison detects ${what}`, { skip }, async () => {
    const { ours, reference } = await bothOutputs(join(models.path, 'la_muse'), 48, 40, mistake);
    const p999 = percentileAbsDiff(ours, reference, 99.9);
    assert.ok(p999 > STRICT, `the mistake changed the 99.9th percentile by only ${p999.toFixed(5)}`);
  });
}
