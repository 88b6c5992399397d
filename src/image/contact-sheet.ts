/**
 * Contact sheets: rows of images laid out in a grid of square cells, for training previews and
 * the built-in styles overview.
 *
 * There are no text labels. libvips draws SVG text through pango and fontconfig, so it depends on
 * the system's fonts: on a machine without any (a slim container, a CI runner) every glyph
 * comes out as an empty box. Whoever shows a sheet names its rows and columns next to it.
 */
import type { RgbImage } from './types.js';
import { expectImage } from './pixels.js';
import { fitLongerSide, resizeImage } from './resize.js';
import { expectInteger, expectNumber } from '../util/validate.js';

/** Options for {@link contactSheet}. */
export interface ContactSheetOptions {
  /** Side of each square cell in pixels; each image is scaled so its longer side is this (default 256). */
  readonly cell?: number;
  /** Pixels between neighbouring cells; there is no outer margin (default 4). */
  readonly gap?: number;
  /** RGB 0..255 for the gaps and the unused parts of cells (default white, [255, 255, 255]). */
  readonly background?: readonly [number, number, number];
}

const DEFAULT_CELL = 256;
const DEFAULT_GAP = 4;
const WHITE = [255, 255, 255] as const;

/**
 * Lays out rows of images in a grid: each image is scaled (up or down, aspect ratio kept, with
 * the Lanczos resize) so its longer side fills a `cell` x `cell` box, and centred in it. Rows may
 * have different lengths; the sheet is as wide as the longest, and shorter rows leave background
 * on the right. The result is `columns * cell + (columns - 1) * gap` wide and
 * `rows * cell + (rows - 1) * gap` high.
 *
 * @example
 * const sheet = await contactSheet([[content, style], [stylised]], { cell: 192 });
 * await writeImage('preview.png', sheet);
 * @throws {RangeError} when there are no rows, a row is empty, an image is malformed, or an
 * option is out of range (`cell` >= 1, `gap` >= 0, background values 0..255).
 * @throws {TypeError} when `rows` is not an array of arrays or an option has the wrong type.
 */
export async function contactSheet(rows: readonly (readonly RgbImage[])[], options: ContactSheetOptions = {}): Promise<RgbImage> {
  const { cell, gap, background } = checkOptions(options);
  const columns = checkRows(rows);
  const width = columns * cell + (columns - 1) * gap;
  const height = rows.length * cell + (rows.length - 1) * gap;
  const sheet = filled(width, height, background);
  // All resizes at once: sharp runs them on its own thread pool.
  const fitted = await Promise.all(rows.map((row) => Promise.all(row.map((image) => fit(image, cell)))));
  fitted.forEach((row, r) => row.forEach((image, c) => {
    const left = c * (cell + gap) + Math.floor((cell - image.width) / 2);
    const top = r * (cell + gap) + Math.floor((cell - image.height) / 2);
    paste(sheet, image, left, top);
  }));
  return sheet;
}

function checkOptions(options: ContactSheetOptions): { cell: number; gap: number; background: readonly number[] } {
  if (typeof options !== 'object' || options === null) throw new TypeError('Expected an options object for contactSheet');
  const cell = options.cell === undefined ? DEFAULT_CELL : expectInteger('cell', options.cell, 1);
  const gap = options.gap === undefined ? DEFAULT_GAP : expectInteger('gap', options.gap, 0);
  const background = options.background ?? WHITE;
  if (!Array.isArray(background) || background.length !== 3) {
    throw new TypeError('Expected background to be an array of 3 numbers (RGB 0..255)');
  }
  background.forEach((value, i) => expectNumber(`background[${i}]`, value, 0, 255));
  return { cell, gap, background };
}

/** Validates the grid and returns the number of columns (the longest row). */
function checkRows(rows: readonly (readonly RgbImage[])[]): number {
  if (!Array.isArray(rows)) throw new TypeError('Expected rows to be an array of rows of images');
  if (rows.length === 0) throw new RangeError('Expected at least one row of images for a contact sheet but received none');
  let columns = 0;
  rows.forEach((row, r) => {
    if (!Array.isArray(row)) throw new TypeError(`Expected rows[${r}] to be an array of images`);
    if (row.length === 0) throw new RangeError(`Expected at least one image in rows[${r}] but it is empty`);
    row.forEach((image, c) => expectImage(`rows[${r}][${c}]`, image));
    columns = Math.max(columns, row.length);
  });
  return columns;
}

function fit(image: RgbImage, cell: number): Promise<RgbImage> {
  const { width, height } = fitLongerSide(image.width, image.height, cell);
  return resizeImage(image, width, height);
}

function filled(width: number, height: number, rgb: readonly number[]): RgbImage {
  const n = width * height;
  const data = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) data.fill(rgb[c], c * n, (c + 1) * n);
  return { data, width, height };
}

/** Copies `image` into `sheet` with its top-left corner at (left, top); it must fit. */
function paste(sheet: RgbImage, image: RgbImage, left: number, top: number): void {
  const n = sheet.width * sheet.height;
  const m = image.width * image.height;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < image.height; y++) {
      const from = c * m + y * image.width;
      sheet.data.set(image.data.subarray(from, from + image.width), c * n + (top + y) * sheet.width + left);
    }
  }
}
