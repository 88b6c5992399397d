import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contactSheet } from '../../src/image/contact-sheet.js';
import type { RgbImage } from '../../src/image/types.js';
import { imageFrom, noiseImage } from './fixtures.js';

type Rgb = readonly [number, number, number];

function solid(width: number, height: number, rgb: Rgb): RgbImage {
  return imageFrom(width, height, (_x, _y, c) => rgb[c]);
}

function pixel(image: RgbImage, x: number, y: number): number[] {
  const n = image.width * image.height;
  return [0, 1, 2].map((c) => image.data[c * n + y * image.width + x]);
}

function assertColour(image: RgbImage, x: number, y: number, want: Rgb, what: string): void {
  const got = pixel(image, x, y);
  const off = Math.max(...got.map((v, c) => Math.abs(v - want[c])));
  assert.ok(off < 0.5, `${what} at (${x}, ${y}): expected [${want.join(', ')}] but found [${got.map((v) => v.toFixed(1)).join(', ')}]`);
}

const RED: Rgb = [220, 20, 30];
const GREEN: Rgb = [20, 200, 40];
const BLUE: Rgb = [10, 30, 230];
const YELLOW: Rgb = [240, 220, 10];
const GREY: Rgb = [50, 60, 70];

test('sheet size is columns * cell + gaps by rows * cell + gaps, for ragged rows', async () => {
  const sheet = await contactSheet([[solid(8, 8, RED), solid(8, 8, RED), solid(8, 8, RED)], [solid(8, 8, RED)]], { cell: 32, gap: 5 });
  assert.equal(sheet.width, 3 * 32 + 2 * 5);
  assert.equal(sheet.height, 2 * 32 + 5);
  assert.equal(sheet.data.length, 3 * sheet.width * sheet.height);
});

test('each image lands in its own cell; missing cells and gaps are background', async () => {
  const cell = 20;
  const gap = 3;
  const rows = [[solid(10, 10, RED), solid(30, 30, GREEN), solid(20, 20, BLUE)], [solid(5, 5, YELLOW)]];
  const sheet = await contactSheet(rows, { cell, gap, background: GREY });
  const centre = (i: number) => i * (cell + gap) + cell / 2;
  assertColour(sheet, centre(0), centre(0), RED, 'row 0 col 0');
  assertColour(sheet, centre(1), centre(0), GREEN, 'row 0 col 1');
  assertColour(sheet, centre(2), centre(0), BLUE, 'row 0 col 2');
  assertColour(sheet, centre(0), centre(1), YELLOW, 'row 1 col 0');
  assertColour(sheet, centre(1), centre(1), GREY, 'row 1 col 1 (no image)');
  assertColour(sheet, centre(2), centre(1), GREY, 'row 1 col 2 (no image)');
  // Every column and row of gap pixels, across the whole sheet.
  for (let k = 0; k < gap; k++) {
    for (let y = 0; y < sheet.height; y++) {
      assertColour(sheet, cell + k, y, GREY, 'vertical gap 1');
      assertColour(sheet, 2 * cell + gap + k, y, GREY, 'vertical gap 2');
    }
    for (let x = 0; x < sheet.width; x++) assertColour(sheet, x, cell + k, GREY, 'horizontal gap');
  }
});

test('aspect ratio is kept: a wide image fills the width and is centred vertically, a tall one the reverse', async () => {
  const cell = 32;
  const gap = 2;
  const sheet = await contactSheet([[solid(40, 20, RED), solid(6, 12, BLUE)]], { cell, gap, background: GREY });
  // 40x20 -> 32x16, rows 8..23 of the cell.
  for (let x = 0; x < cell; x++) {
    assertColour(sheet, x, 7, GREY, 'above the wide image');
    assertColour(sheet, x, 8, RED, 'wide image top row');
    assertColour(sheet, x, 23, RED, 'wide image bottom row');
    assertColour(sheet, x, 24, GREY, 'below the wide image');
  }
  // 6x12 -> 16x32, columns 8..23 of the second cell.
  const left = cell + gap;
  for (let y = 0; y < cell; y++) {
    assertColour(sheet, left + 7, y, GREY, 'left of the tall image');
    assertColour(sheet, left + 8, y, BLUE, 'tall image left column');
    assertColour(sheet, left + 23, y, BLUE, 'tall image right column');
    assertColour(sheet, left + 24, y, GREY, 'right of the tall image');
  }
});

test('an image already cell-sized is copied exactly, pixel for pixel, into its cell', async () => {
  const image = noiseImage(24, 24, 5);
  const sheet = await contactSheet([[solid(24, 24, RED)], [solid(24, 24, RED), image]], { cell: 24, gap: 1 });
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 24; y++) {
      for (let x = 0; x < 24; x++) {
        const want = image.data[c * 576 + y * 24 + x];
        const got = sheet.data[c * sheet.width * sheet.height + (25 + y) * sheet.width + (25 + x)];
        assert.equal(got, want, `channel ${c} (${x}, ${y})`);
      }
    }
  }
});

test('small images are enlarged to fill the cell', async () => {
  const sheet = await contactSheet([[solid(4, 2, GREEN)]], { cell: 40, gap: 0, background: GREY });
  assert.equal(sheet.width, 40);
  assertColour(sheet, 0, 10, GREEN, 'left edge');
  assertColour(sheet, 39, 29, GREEN, 'right edge');
  assertColour(sheet, 20, 9, GREY, 'above');
});

test('defaults: 256 px cells, 4 px white gaps', async () => {
  const sheet = await contactSheet([[solid(10, 10, RED), solid(10, 10, BLUE)]]);
  assert.equal(sheet.width, 2 * 256 + 4);
  assert.equal(sheet.height, 256);
  assertColour(sheet, 258, 100, [255, 255, 255], 'gap');
  assertColour(sheet, 128, 128, RED, 'first cell');
  assertColour(sheet, 260 + 128, 128, BLUE, 'second cell');
});

test('bad input is refused with the error class and a message that says what is wrong', async () => {
  const ok = solid(4, 4, RED);
  await assert.rejects(contactSheet([]), { name: 'RangeError', message: /at least one row of images.*received none/ });
  await assert.rejects(contactSheet([[ok], []]), { name: 'RangeError', message: /rows\[1\].*empty/ });
  await assert.rejects(contactSheet('x' as unknown as RgbImage[][]), TypeError);
  await assert.rejects(contactSheet([ok] as unknown as RgbImage[][]), { name: 'TypeError', message: /rows\[0\]/ });
  const broken = { data: new Float32Array(5), width: 4, height: 4 };
  await assert.rejects(contactSheet([[ok, broken]]), { name: 'RangeError', message: /rows\[0\]\[1\]/ });
  await assert.rejects(contactSheet([[ok]], { cell: 0 }), { name: 'RangeError', message: /cell/ });
  await assert.rejects(contactSheet([[ok]], { cell: 2.5 }), { name: 'TypeError', message: /integer for cell/ });
  await assert.rejects(contactSheet([[ok]], { gap: -1 }), { name: 'RangeError', message: /gap/ });
  await assert.rejects(contactSheet([[ok]], { background: [0, 0, 300] }), { name: 'RangeError', message: /background\[2\]/ });
  await assert.rejects(contactSheet([[ok]], { background: [0, 0] as unknown as Rgb }), { name: 'TypeError', message: /background/ });
});
