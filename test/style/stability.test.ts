/**
 * The stability loss's perturbation (src/style/stability.ts): the perturbed photos are the shift
 * the graph's kernel applies to the output (checked by direct summation in the interior), the shift
 * is sub-pixel and within bounds, the noise has the asked spread, and a step's perturbation depends
 * on (seed, step) alone, so a resumed run repeats it. Its gradient is checked with the rest of the
 * training graph against float64 finite differences (train-graph.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkStability, perturbBatch, stabilityRadius } from '../../src/style/stability.js';
import { randomData } from '../helpers/random.js';

const SIZE = 16;
const BATCH = 2;

test('the perturbed photos are the kernel\'s shift of the photos in the interior, reflected at the border', () => {
  const photos = randomData(BATCH * 3 * SIZE * SIZE, 3, 0, 255);
  for (const shift of [0.5, 1, 2.5]) {
    const loss = { weight: 1, noise: 0, shift };
    const r = stabilityRadius(loss);
    const k = 2 * r + 1;
    for (let step = 0; step < 5; step++) {
      const { perturbed, kernel } = perturbBatch(photos, BATCH, SIZE, loss, 1, step);
      // Channel-diagonal, weights summing to 1, centre of mass within [-shift, shift].
      let sum = 0, cy = 0, cx = 0;
      for (let co = 0; co < 3; co++) for (let ci = 0; ci < 3; ci++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
        const w = kernel[((co * 3 + ci) * k + a) * k + b];
        if (co !== ci) { assert.equal(w, 0); continue; }
        if (co === 0) { sum += w; cy += w * (a - r); cx += w * (b - r); }
      }
      assert.ok(Math.abs(sum - 1) < 1e-6, `weights sum to ${sum}`);
      assert.ok(Math.abs(cy) <= shift + 1e-6 && Math.abs(cx) <= shift + 1e-6, `shift (${cy}, ${cx}) within ${shift}`);
      for (let p = 0; p < BATCH * 3; p++) {
        const c = p % 3;
        for (let y = r; y < SIZE - r; y++) for (let x = r; x < SIZE - r; x++) {
          let expected = 0;
          for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
            expected += kernel[((c * 3 + c) * k + a) * k + b] * photos[(p * SIZE + y - r + a) * SIZE + x - r + b];
          }
          const got = perturbed[(p * SIZE + y) * SIZE + x];
          assert.ok(Math.abs(got - expected) < 1e-3, `shift ${shift}, step ${step}: (${p}, ${y}, ${x}) is ${got}, expected ${expected}`);
        }
        // The border mirrors the valid region: row r-1 is row r+1's value of the valid convolution.
        assert.equal(perturbed[(p * SIZE + r - 1) * SIZE + r], perturbed[(p * SIZE + r + 1) * SIZE + r]);
      }
    }
  }
});

test('a step\'s perturbation depends on (seed, step) alone; the noise has the asked spread', () => {
  const grey = new Float32Array(BATCH * 3 * SIZE * SIZE).fill(128);
  const loss = { weight: 1, noise: 3, shift: 1 };
  const a = perturbBatch(grey, BATCH, SIZE, loss, 7, 10);
  const again = perturbBatch(grey, BATCH, SIZE, loss, 7, 10);
  assert.deepEqual(again.perturbed, a.perturbed);
  assert.deepEqual(again.kernel, a.kernel);
  assert.notDeepEqual(perturbBatch(grey, BATCH, SIZE, loss, 7, 11).perturbed, a.perturbed);
  assert.notDeepEqual(perturbBatch(grey, BATCH, SIZE, loss, 8, 10).perturbed, a.perturbed);
  let mean = 0, square = 0;
  for (const v of a.perturbed) { mean += v; square += v * v; }
  mean /= a.perturbed.length;
  const std = Math.sqrt(square / a.perturbed.length - mean * mean);
  assert.ok(Math.abs(mean - 128) < 0.3, `mean ${mean}`);
  assert.ok(Math.abs(std - 3) < 0.3, `std ${std}`);
});

test('bad stability settings are refused with the usual messages', () => {
  assert.throws(() => checkStability({ weight: -1, noise: 3, shift: 1 }), { name: 'RangeError', message: /stability weight/ });
  assert.throws(() => checkStability({ weight: 1, noise: Number.NaN, shift: 1 }), /stability noise/);
  assert.throws(() => checkStability({ weight: 1, noise: 3, shift: 20 }), /Expected a number between 0 and 8 for stability shift but received 20/);
});
