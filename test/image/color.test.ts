import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blendImages, colorStatistics, matchColorStatistics, matchHistograms, preserveLuminance } from '../../src/image/color.js';
import type { RgbImage } from '../../src/image/types.js';
import { imageFrom, maxDifference, noiseImage, random } from './fixtures.js';

/** YCbCr (BT.601 full range) with JPEG's published coefficients: an independent check. */
function ycbcr(image: RgbImage): [Float64Array, Float64Array, Float64Array] {
  const n = image.width * image.height;
  const y = new Float64Array(n), cb = new Float64Array(n), cr = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = image.data[i], g = image.data[i + n], b = image.data[i + 2 * n];
    y[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    cb[i] = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b;
    cr[i] = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;
  }
  return [y, cb, cr];
}

function uniformImage(width: number, height: number, low: number, high: number, seed: number): RgbImage {
  const next = random(seed);
  return imageFrom(width, height, () => low + (high - low) * next());
}

function sortedChannel(image: RgbImage, c: number): Float32Array {
  const n = image.width * image.height;
  return image.data.slice(c * n, (c + 1) * n).sort();
}

test('preserveLuminance takes Y from the stylised image and Cb/Cr from the content', () => {
  // Mid-range values, so no output needs clamping and the identity is exact.
  const stylised = uniformImage(20, 10, 90, 160, 1);
  const content = uniformImage(20, 10, 90, 160, 2);
  const out = preserveLuminance(stylised, content);
  const [yOut, cbOut, crOut] = ycbcr(out);
  const [yStylised] = ycbcr(stylised);
  const [, cbContent, crContent] = ycbcr(content);
  assert.ok(maxDifference(yOut, yStylised) < 1e-3);
  assert.ok(maxDifference(cbOut, cbContent) < 1e-3);
  assert.ok(maxDifference(crOut, crContent) < 1e-3);
});

test('preserveLuminance clamps to 0..255 and rejects different sizes', () => {
  const white = imageFrom(2, 2, () => 255);
  const red = imageFrom(2, 2, (_x, _y, c) => (c === 0 ? 255 : 0));
  const out = preserveLuminance(white, red);
  assert.ok(out.data.every((v) => v >= 0 && v <= 255));
  assert.throws(() => preserveLuminance(white, noiseImage(2, 3)), /same size .* 2x2 and 2x3/);
});

test('matchHistograms gives the source the reference values when sizes match', () => {
  const source = uniformImage(30, 20, 0, 255, 3);
  // 8-bit-valued reference (as decoded): exact.
  const reference = imageFrom(30, 20, (x, y, c) => (c === 1 ? 20 + (x * y) % 97 : Math.round(200 - 0.1 * x * y - c)));
  const out = matchHistograms(source, reference);
  for (let c = 0; c < 3; c++) assert.deepEqual(sortedChannel(out, c), sortedChannel(reference, c), `channel ${c}`);
  // Float values are ranked through fine histogram bins, so a rank may be off by a little.
  const floats = uniformImage(20, 30, 30, 220, 9);
  const out2 = matchHistograms(source, floats);
  for (let c = 0; c < 3; c++) assertNearRanks(sortedChannel(out2, c), sortedChannel(floats, c), `float channel ${c}`);
});

/**
 * Each sorted output value lies within two ranks of the sorted reference value at that rank, give
 * or take one histogram bin (1/16 of a level): the binning's bound for float data.
 */
function assertNearRanks(got: Float32Array, want: Float32Array, label: string): void {
  assert.equal(got.length, want.length);
  for (let k = 0; k < got.length; k++) {
    const low = want[Math.max(0, k - 2)] - 1 / 16, high = want[Math.min(want.length - 1, k + 2)] + 1 / 16;
    assert.ok(got[k] >= low && got[k] <= high, `${label} rank ${k}: ${got[k]} not in ${low}..${high}`);
  }
}

test('matchHistograms follows the reference quantiles at another size, keeping the source order', () => {
  const source = uniformImage(40, 25, 10, 60, 4); // 1000 distinct values per channel
  const reference = uniformImage(31, 17, 0, 1, 5);
  for (let i = 0; i < reference.data.length; i++) reference.data[i] = 255 * reference.data[i] ** 2;
  const out = matchHistograms(source, reference);
  const n = 1000;
  for (let c = 0; c < 3; c++) {
    const got = sortedChannel(out, c);
    const ref = sortedChannel(reference, c);
    // The reference quantile at each source rank, interpolated (ref has 527 values, got 1000).
    const want = Float32Array.from({ length: n }, (_, k) => {
      const position = (k / (n - 1)) * (ref.length - 1);
      const lo = Math.floor(position), hi = Math.min(lo + 1, ref.length - 1);
      return ref[lo] + (position - lo) * (ref[hi] - ref[lo]);
    });
    assertNearRanks(got, want, `channel ${c}`);
    assert.ok(Math.abs(got[0] - ref[0]) < 1e-4 && Math.abs(got[n - 1] - ref[ref.length - 1]) < 1e-4, 'extremes map to extremes');
    for (let i = 1; i < n; i++) {
      const a = c * n + i - 1, b = c * n + i;
      if (source.data[a] < source.data[b]) assert.ok(out.data[a] <= out.data[b]);
    }
  }
});

test('matchHistograms on 8-bit images maps equal values equally and matches the distribution', () => {
  const source = noiseImage(64, 64, 6);
  for (let i = 0; i < source.data.length; i++) source.data[i] = Math.floor(source.data[i] / 4); // 0..63, many ties
  const reference = uniformImage(50, 50, 100, 200, 7);
  const out = matchHistograms(source, reference);
  const n = 64 * 64;
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const previous = seen.get(source.data[i]);
    if (previous !== undefined) assert.equal(out.data[i], previous);
    seen.set(source.data[i], out.data[i]);
  }
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean(out.data.subarray(0, n)) - mean(reference.data.subarray(0, 2500))) < 1.5);
  // A flat source is one big tie: all of it maps to the reference median.
  const constant = matchHistograms(imageFrom(3, 3, () => 7), reference);
  const ref = sortedChannel(reference, 0);
  const median = (ref[1249] + ref[1250]) / 2;
  assert.ok(constant.data.subarray(0, 9).every((v) => Math.abs(v - median) < 1e-3));
});

test('matchColorStatistics gives the source the reference mean and covariance', () => {
  const next = random(8);
  // Correlated source colours and a differently correlated, shifted reference, well inside 0..255.
  const source = imageFrom(40, 40, () => 0);
  const reference = imageFrom(50, 30, () => 0);
  const fill = (image: RgbImage, mix: number[], offset: number[]) => {
    const n = image.width * image.height;
    for (let i = 0; i < n; i++) {
      const z = [next() - 0.5, next() - 0.5, next() - 0.5];
      for (let c = 0; c < 3; c++) image.data[c * n + i] = offset[c] + mix[c * 3] * z[0] + mix[c * 3 + 1] * z[1] + mix[c * 3 + 2] * z[2];
    }
  };
  fill(source, [80, 10, 0, 30, 60, 0, 5, 5, 40], [120, 110, 130]);
  fill(reference, [20, 0, 10, 0, 35, 5, 15, 10, 25], [90, 140, 100]);
  const out = matchColorStatistics(source, reference);
  assert.ok(out.data.every((v) => v > 0 && v < 255), 'no clamping in this test');
  const want = colorStatistics(reference);
  const got = colorStatistics(out);
  assert.ok(maxDifference(got.mean, want.mean) < 1e-3, `mean ${got.mean} vs ${want.mean}`);
  const scale = Math.max(...want.covariance.map(Math.abs));
  assert.ok(maxDifference(got.covariance, want.covariance) < 1e-4 * scale, `cov ${got.covariance} vs ${want.covariance}`);
});

test('colorStatistics agrees with a direct computation', () => {
  const image = noiseImage(9, 7, 10);
  const n = 63;
  const { mean, covariance } = colorStatistics(image);
  for (let a = 0; a < 3; a++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += image.data[a * n + i] / n;
    assert.ok(Math.abs(mean[a] - m) < 1e-9);
  }
  let cov01 = 0;
  for (let i = 0; i < n; i++) cov01 += (image.data[i] - mean[0]) * (image.data[n + i] - mean[1]) / n;
  assert.ok(Math.abs(covariance[1] - cov01) < 1e-6 && covariance[3] === covariance[1]);
});

test('matchColorStatistics copes with grey and flat images', () => {
  const grey = imageFrom(8, 8, (x, y) => 10 * x + y);
  const reference = noiseImage(8, 8, 12);
  const out = matchColorStatistics(grey, reference);
  assert.ok(out.data.every((v) => Number.isFinite(v) && v >= 0 && v <= 255));
  const flat = matchColorStatistics(imageFrom(4, 4, () => 50), reference);
  const { mean } = colorStatistics(reference);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(flat.data[c * 16] - mean[c]) < 1e-3);
});

test('blendImages is (1 - t) a + t b, and validates', () => {
  const a = noiseImage(5, 4, 13);
  const b = noiseImage(5, 4, 14);
  assert.deepEqual(blendImages(a, b, 0).data, a.data);
  assert.deepEqual(blendImages(a, b, 1).data, b.data);
  const quarter = blendImages(a, b, 0.25);
  assert.ok(maxDifference(quarter.data, a.data.map((v, i) => 0.75 * v + 0.25 * b.data[i])) < 1e-4);
  assert.throws(() => blendImages(a, b, 1.5), /between 0 and 1 for blend weight but received 1.5/);
  assert.throws(() => blendImages(a, noiseImage(4, 5), 0.5), RangeError);
});
