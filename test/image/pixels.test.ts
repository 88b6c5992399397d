import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alphaOf, clampCountingNonFinite, clampToPixelRange, toInterleaved, toRgbImage } from '../../src/image/pixels.js';
import { fitLongerSide, resizeImage } from '../../src/image/resize.js';
import { imageFrom, maxDifference, noiseImage, smoothImage } from './fixtures.js';

test('toRgbImage de-interleaves RGB, RGBA, grey and grey+alpha', () => {
  const rgb = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(toRgbImage(rgb, 2, 1, 3).data), [1, 4, 2, 5, 3, 6]);
  const rgba = Uint8Array.from([1, 2, 3, 9, 4, 5, 6, 8]);
  assert.deepEqual(Array.from(toRgbImage(rgba, 1, 2, 4).data), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(Array.from(alphaOf(rgba, 1, 2, 4)), [9, 8]);
  assert.deepEqual(Array.from(toRgbImage(Uint8Array.from([7, 9]), 2, 1, 1).data), [7, 9, 7, 9, 7, 9]);
  const greyAlpha = Uint8Array.from([7, 100, 9, 200]);
  assert.deepEqual(Array.from(toRgbImage(greyAlpha, 2, 1, 2).data), [7, 9, 7, 9, 7, 9]);
  assert.deepEqual(Array.from(alphaOf(greyAlpha, 2, 1, 2)), [100, 200]);
  // A Buffer is a Uint8Array: ffmpeg frames arrive as Buffers.
  assert.deepEqual(Array.from(toRgbImage(Buffer.from(rgb), 2, 1).data), [1, 4, 2, 5, 3, 6]);
});

test('toInterleaved is the inverse of toRgbImage for 8-bit values', () => {
  const image = noiseImage(13, 7, 2);
  const hwc = toInterleaved(image);
  assert.ok(hwc instanceof Uint8Array);
  assert.equal(hwc.length, 13 * 7 * 3);
  assert.deepEqual(toRgbImage(hwc, 13, 7, 3).data, image.data);
});

test('toInterleaved rounds, clamps, maps NaN to 0 and appends alpha', () => {
  const image = imageFrom(5, 1, (x, _y, c) => (c === 0 ? [-3, 0.4, 0.6, 254.5, 999][x] : c === 1 ? Number.NaN : 7));
  const alpha = Float32Array.from([0, 255, 300, -1, 127.7]);
  const out = toInterleaved(image, alpha);
  assert.deepEqual(Array.from(out), [0, 0, 7, 0, 0, 0, 7, 255, 1, 0, 7, 255, 254, 0, 7, 0, 255, 0, 7, 128]);
});

test('pixel conversions reject wrong lengths and channel counts', () => {
  assert.throws(() => toRgbImage(new Uint8Array(5), 2, 1, 3), /Expected 6 bytes/);
  assert.throws(() => toRgbImage(new Uint8Array(10), 2, 1, 5), RangeError);
  assert.throws(() => toRgbImage(new Uint8Array(0), 0, 1, 3), RangeError);
  assert.throws(() => toRgbImage(new Uint8Array(6), 1.5, 1, 3), TypeError);
  assert.throws(() => alphaOf(new Uint8Array(6), 2, 1, 3), RangeError);
  assert.throws(() => toInterleaved({ data: new Float32Array(5), width: 2, height: 1 }), RangeError);
  assert.throws(() => toInterleaved(noiseImage(2, 2), new Float32Array(3)), /Expected 4 alpha values/);
});

test('resizeImage keeps a constant image constant, without rounding it to 8 bits', async () => {
  const image = imageFrom(40, 30, (_x, _y, c) => 100.3 + c * 20);
  for (const [w, h] of [[80, 60], [13, 7], [1, 1]]) {
    const out = await resizeImage(image, w, h);
    assert.equal(out.width, w);
    assert.equal(out.height, h);
    for (let c = 0; c < 3; c++) {
      const plane = out.data.subarray(c * w * h, (c + 1) * w * h);
      assert.ok(maxDifference(plane, new Float32Array(w * h).fill(100.3 + c * 20)) < 0.25, `${w}x${h} channel ${c}`);
    }
  }
});

test('resizeImage follows a smooth image, and clamps', async () => {
  const big = smoothImage(64, 48);
  const small = await resizeImage(big, 32, 24);
  const expected = smoothImage(32, 24); // the same function sampled at half resolution
  // Sample positions differ by a quarter pixel at half resolution: a loose bound, but a wrong
  // channel order or transposition would be off by tens of levels.
  assert.ok(maxDifference(small.data, expected.data) < 12, `max diff ${maxDifference(small.data, expected.data)}`);
  const edges = imageFrom(8, 8, (x) => (x < 4 ? 0 : 255));
  const up = await resizeImage(edges, 32, 32);
  assert.ok(up.data.every((v) => v >= 0 && v <= 255));
  const same = await resizeImage(big, 64, 48);
  assert.deepEqual(same.data, big.data);
  assert.notEqual(same.data, big.data, 'a copy, not the same buffer');
  await assert.rejects(resizeImage(big, 0, 10), RangeError);
});

test('fitLongerSide keeps the aspect ratio with the longer side at the size', () => {
  assert.deepEqual(fitLongerSide(4000, 3000, 1024), { width: 1024, height: 768 });
  assert.deepEqual(fitLongerSide(3000, 4000, 1024), { width: 768, height: 1024 });
  assert.deepEqual(fitLongerSide(100, 100, 50), { width: 50, height: 50 });
  assert.deepEqual(fitLongerSide(10000, 3, 100), { width: 100, height: 1 });
  assert.deepEqual(fitLongerSide(200, 100, 401), { width: 401, height: 201 });
  assert.throws(() => fitLongerSide(10, 10, 0), RangeError);
});

test('clampCountingNonFinite clamps like clampToPixelRange and counts NaN and ±Infinity in the same pass', () => {
  const values = [-1e30, -Infinity, -0.5, 0, 12.25, 255, 255.5, Infinity, NaN, 1e30, NaN, 128];
  const data = new Float32Array(values);
  const bad = clampCountingNonFinite(data);
  assert.equal(bad, values.filter((v) => !Number.isFinite(v)).length);
  assert.deepEqual([...data], values.map((v) => (Number.isNaN(v) ? 0 : Math.min(255, Math.max(0, v)))));
  const healthy = Float32Array.from({ length: 1000 }, (_, i) => (i * 37) % 300 - 20);
  const expected = clampToPixelRange(healthy.slice());
  assert.equal(clampCountingNonFinite(healthy), 0);
  assert.deepEqual(healthy, expected);
});
