import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cropImage, reflectPad, reflectPadTo } from '../../src/image/pad.js';
import type { RgbImage } from '../../src/image/types.js';
import { noiseImage } from './fixtures.js';

/** Independent reflection: bounce the index off the ends until it is inside. */
function mirror(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

function expectReflected(padded: RgbImage, image: RgbImage, left: number, top: number): void {
  const { width, height } = image;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < padded.height; y++) {
      for (let x = 0; x < padded.width; x++) {
        const want = image.data[c * width * height + mirror(y - top, height) * width + mirror(x - left, width)];
        const got = padded.data[c * padded.width * padded.height + y * padded.width + x];
        assert.equal(got, want, `c${c} (${x}, ${y})`);
      }
    }
  }
}

test('reflectPadTo pads to the multiple, split floor before / ceil after, and the crop undoes it', () => {
  const image = noiseImage(5, 7, 3);
  const { image: padded, crop } = reflectPadTo(image, 4);
  assert.equal(padded.width, 8);
  assert.equal(padded.height, 8);
  assert.deepEqual(crop, { left: 1, top: 0, width: 5, height: 7 });
  expectReflected(padded, image, 1, 0);
  assert.deepEqual(cropImage(padded, crop).data, image.data);
});

test('tiny images: 1x1 and 2x3 pad to 4x4 without failing', () => {
  const one = noiseImage(1, 1, 9);
  const { image: p1, crop: c1 } = reflectPadTo(one, 4);
  assert.equal(p1.width, 4);
  assert.equal(p1.height, 4);
  for (let c = 0; c < 3; c++) assert.ok(p1.data.subarray(c * 16, (c + 1) * 16).every((v) => v === one.data[c]));
  assert.deepEqual(cropImage(p1, c1).data, one.data);

  const small = noiseImage(2, 3, 4);
  const { image: p2, crop: c2 } = reflectPadTo(small, 4);
  assert.deepEqual([p2.width, p2.height], [4, 4]);
  assert.deepEqual(c2, { left: 1, top: 0, width: 2, height: 3 });
  expectReflected(p2, small, 1, 0);
  assert.deepEqual(cropImage(p2, c2).data, small.data);
});

test('padding wider than the image mirrors back and forth', () => {
  const image = noiseImage(3, 2, 5);
  const padded = reflectPad(image, { left: 10, top: 5, right: 7, bottom: 4 });
  assert.deepEqual([padded.width, padded.height], [20, 11]);
  expectReflected(padded, image, 10, 5);
  const { image: big, crop } = reflectPadTo(image, 16);
  assert.deepEqual([big.width, big.height], [16, 16]);
  assert.deepEqual(cropImage(big, crop).data, image.data);
});

test('an image already a multiple comes back as is', () => {
  const image = noiseImage(8, 12);
  const { image: same, crop } = reflectPadTo(image, 4);
  assert.equal(same, image);
  assert.deepEqual(crop, { left: 0, top: 0, width: 8, height: 12 });
  assert.equal(reflectPadTo(image, 1).image, image);
});

test('bad pads and crops are rejected', () => {
  const image = noiseImage(4, 4);
  assert.throws(() => reflectPadTo(image, 0), RangeError);
  assert.throws(() => reflectPadTo(image, 2.5), TypeError);
  assert.throws(() => reflectPad(image, { left: -1, top: 0, right: 0, bottom: 0 }), RangeError);
  assert.throws(() => cropImage(image, { left: 1, top: 0, width: 4, height: 4 }), /inside the 4x4 image/);
  assert.throws(() => cropImage(image, { left: 0, top: 0, width: 0, height: 4 }), RangeError);
  const part = cropImage(image, { left: 1, top: 2, width: 2, height: 1 });
  assert.deepEqual(Array.from(part.data), [0, 1, 2].flatMap((c) => [image.data[c * 16 + 9], image.data[c * 16 + 10]]));
});
