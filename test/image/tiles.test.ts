import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoTileSize, planTiles, TileBlender } from '../../src/image/tiles.js';
import { cropImage } from '../../src/image/pad.js';
import type { Rect } from '../../src/image/types.js';
import { imageFrom, maxDifference, noiseImage, smoothImage } from './fixtures.js';

/** Checks every promise planTiles makes, independently of how it plans. */
function checkPlan(width: number, height: number, tile: number, overlap: number, multiple: number): Rect[] {
  const label = `${width}x${height} tile ${tile} overlap ${overlap} multiple ${multiple}`;
  const rects = planTiles(width, height, { tile, overlap, multiple });
  const cover = new Uint8Array(width * height);
  for (const r of rects) {
    assert.ok(r.left >= 0 && r.top >= 0 && r.left + r.width <= width && r.top + r.height <= height, `${label}: inside`);
    assert.ok(r.width <= tile && r.height <= tile, `${label}: size ${r.width}x${r.height}`);
    if (width > tile) assert.equal(r.width % multiple, 0, `${label}: width multiple`);
    if (height > tile) assert.equal(r.height % multiple, 0, `${label}: height multiple`);
    for (let y = r.top; y < r.top + r.height; y++) cover.fill(1, y * width + r.left, y * width + r.left + r.width);
  }
  assert.ok(cover.every((v) => v === 1), `${label}: every pixel covered`);
  // Neighbours along each axis overlap by at least `overlap`; all tiles along an axis share a size.
  for (const [start, size] of [['left', 'width'], ['top', 'height']] as const) {
    const spans = [...new Map(rects.map((r) => [r[start], r[size]])).entries()].sort((a, b) => a[0] - b[0]);
    assert.equal(new Set(spans.map(([, s]) => s)).size, 1, `${label}: equal ${size}s`);
    for (let i = 1; i < spans.length; i++) {
      const shared = spans[i - 1][0] + spans[i - 1][1] - spans[i][0];
      assert.ok(shared >= overlap, `${label}: ${start} overlap ${shared}`);
    }
  }
  return rects;
}

test('planTiles covers the image with equal, overlapping, aligned tiles', () => {
  for (const [w, h] of [[1000, 700], [257, 1], [1, 1], [513, 300], [4096, 97], [300, 300], [999, 1001]]) {
    for (const [tile, overlap, multiple] of [[256, 32, 4], [256, 0, 1], [100, 90, 1], [64, 16, 8], [300, 50, 16]]) {
      checkPlan(w, h, tile, overlap, multiple);
    }
  }
  checkPlan(30, 20, 10, 9, 1); // tiles advancing one pixel at a time
});

test('planTiles: a small image is one tile, and the tile count is minimal for the overlap', () => {
  assert.deepEqual(planTiles(200, 150, { tile: 256, overlap: 32 }), [{ left: 0, top: 0, width: 200, height: 150 }]);
  const rects = planTiles(1000, 200, { tile: 256, overlap: 32, multiple: 4 });
  // Starts on multiples of 4 may each move 2 px, so tiles are planned 32 + 4 px apart:
  // ceil((1000 - 36) / (256 - 36)) = 5 tiles across, of ceil((1000 + 4 * 36) / 5) = 229 -> 232.
  assert.equal(rects.length, 5);
  assert.ok(rects.every((r) => r.width === 232 && r.height === 200));
  assert.deepEqual(rects.map((r) => r.left), [0, 192, 384, 576, 768]);
  assert.deepEqual(planTiles(1000, 200, { tile: 256, overlap: 32 }).map((r) => r.left), [0, 194, 387, 581, 774],
    'without alignment (multiple 1) the starts are spread evenly');
});

test('planTiles rejects impossible options', () => {
  assert.throws(() => planTiles(100, 100, { tile: 32, overlap: 32 }), /overlap smaller than the tile size 32/);
  assert.throws(() => planTiles(100, 100, { tile: 30, overlap: 28, multiple: 8 }), /tile size 24/);
  assert.throws(() => planTiles(100, 100, { tile: 0, overlap: 0 }), RangeError);
  assert.throws(() => planTiles(100, 100, { tile: 16, overlap: -1 }), RangeError);
  assert.throws(() => planTiles(100, 100, { tile: 16, overlap: 0, multiple: 32 }), RangeError);
});

test('blending tiles of a constant image gives the constant', () => {
  const image = imageFrom(300, 200, (_x, _y, c) => 42 + c);
  const rects = planTiles(300, 200, { tile: 96, overlap: 24, multiple: 4 });
  const blender = new TileBlender(300, 200, { feather: 24 });
  for (const rect of rects) blender.add(cropImage(image, rect), rect);
  assert.ok(maxDifference(blender.result().data, image.data) < 1e-4);
});

test('blending exact crops reconstructs the image', () => {
  for (const image of [smoothImage(257, 131), noiseImage(100, 90, 3)]) {
    const rects = planTiles(image.width, image.height, { tile: 64, overlap: 16, multiple: 4 });
    const blender = new TileBlender(image.width, image.height, { feather: 16 });
    for (const rect of rects) blender.add(cropImage(image, rect), rect);
    assert.ok(maxDifference(blender.result().data, image.data) < 1e-3);
  }
});

test('the blend ramps across the overlap and is untouched outside it', () => {
  const left: Rect = { left: 0, top: 0, width: 60, height: 4 };
  const right: Rect = { left: 40, top: 0, width: 60, height: 4 };
  const blender = new TileBlender(100, 4, { feather: 20 });
  blender.add(imageFrom(60, 4, () => 0), left);
  blender.add(imageFrom(60, 4, () => 100), right);
  const out = blender.result();
  const row = Array.from(out.data.subarray(0, 100));
  assert.ok(row.slice(0, 40).every((v) => v === 0), 'only the left tile');
  assert.ok(row.slice(60).every((v) => v === 100), 'only the right tile');
  for (let x = 41; x < 60; x++) assert.ok(row[x] > row[x - 1], `rises at ${x}`);
  assert.ok(Math.abs(row[49] + row[50] - 100) < 1e-3, 'symmetric about the middle of the overlap');
});

test('TileBlender guards its inputs', () => {
  const blender = new TileBlender(10, 10);
  assert.throws(() => blender.add(noiseImage(4, 4), { left: 0, top: 0, width: 5, height: 4 }), /Expected a 5x4 tile/);
  assert.throws(() => blender.add(noiseImage(4, 4), { left: 8, top: 0, width: 4, height: 4 }), /inside the 10x10 image/);
  blender.add(noiseImage(4, 4), { left: 0, top: 0, width: 4, height: 4 });
  assert.throws(() => blender.result(), /84 pixels were covered by no tile/);
  assert.throws(() => blender.add(noiseImage(4, 4), { left: 0, top: 0, width: 4, height: 4 }), /after result/);
});

test('autoTileSize is null within the budget, else a multiple of 64 whose square fits', () => {
  assert.equal(autoTileSize(2000, 2000), null);
  assert.equal(autoTileSize(4000, 3000), 1984);
  assert.equal(autoTileSize(1000, 1000, 250_000), 448);
  assert.equal(autoTileSize(100, 100, 10), 64);
  assert.throws(() => autoTileSize(100, 100, 0), RangeError);
});
