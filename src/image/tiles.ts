/**
 * Tiled inference for images too large to run in one piece: plan overlapping tiles, run each,
 * and blend them back with feathered weights so no seams show where tiles meet.
 */
import type { Rect, RgbImage } from './types.js';
import { checkedPixelCount, expectImage } from './pixels.js';
import { expectInteger } from '../util/validate.js';

/** Options for {@link planTiles}. */
export interface TilePlanOptions {
  /** Largest tile side, in pixels. */
  readonly tile: number;
  /** Least overlap between neighbouring tiles, in pixels. */
  readonly overlap: number;
  /** Tile sides are multiples of this where the image is large enough (default 1). */
  readonly multiple?: number;
}

/**
 * Tiles covering a `width` x `height` image, row by row. Tiles start on multiples of `multiple`
 * (except a last tile flush with a side that is not such a multiple). Along each axis the tiles are all the
 * same size (no thin last tile, whose borders would dominate its content) and evenly spread, with
 * at least `overlap` pixels shared between neighbours. Tile sides are at most `tile` and a multiple
 * of `multiple`, except along an axis shorter than `tile`, which one tile spans whole: the caller
 * reflect-pads such a tile (see reflectPadTo).
 *
 * @example
 * for (const rect of planTiles(8000, 6000, { tile: 1024, overlap: 64, multiple: 4 })) { ... }
 * @throws {TypeError} / {RangeError} for non-integer or out-of-range options, or an overlap that
 * leaves no room to advance (overlap >= tile rounded down to `multiple`).
 */
export function planTiles(width: number, height: number, options: TilePlanOptions): Rect[] {
  checkedPixelCount(width, height);
  const tile = expectInteger('tile', options.tile, 1);
  const overlap = expectInteger('overlap', options.overlap, 0);
  const multiple = expectInteger('multiple', options.multiple ?? 1, 1, tile);
  const size = tile - (tile % multiple);
  if (overlap >= size) {
    throw new RangeError(`Expected an overlap smaller than the tile size ${size} but received ${overlap}`);
  }
  const columns = planAxis(width, size, overlap, multiple);
  const rows = planAxis(height, size, overlap, multiple);
  const rects: Rect[] = [];
  for (const [top, tileHeight] of rows) {
    for (const [left, tileWidth] of columns) rects.push({ left, top, width: tileWidth, height: tileHeight });
  }
  return rects;
}

/** [start, length] of each tile along one axis. */
function planAxis(length: number, size: number, overlap: number, multiple: number): Array<[number, number]> {
  if (length <= size) return [[0, length]];
  // Starts fall on multiples of `multiple`: a network that downsamples by 4 computes the same
  // values for a tile as for the whole image only when the tile keeps the image's pixel phase.
  // Rounding a start moves it by up to multiple/2, so neighbours are planned `multiple` closer
  // (when the tile leaves room for it) to keep at least `overlap` after rounding.
  const slack = multiple > 1 && overlap + multiple < size ? multiple : 0;
  const spacing = overlap + slack;
  const count = Math.ceil((length - spacing) / (size - spacing));
  // The smallest common tile length that covers the axis with that overlap; it is <= size because
  // count tiles of `size` already do, and rounding up to `multiple` cannot pass `size`, a multiple.
  const needed = Math.ceil((length + (count - 1) * spacing) / count);
  const tileLength = Math.min(length, Math.ceil(needed / multiple) * multiple);
  const spare = length - tileLength;
  return Array.from({ length: count }, (_, i) => {
    const ideal = (i * spare) / (count - 1);
    // The last tile ends flush with the image (its start is aligned when the length is).
    return [i === count - 1 ? spare : Math.min(spare, Math.round(ideal / multiple) * multiple), tileLength];
  });
}

/**
 * The tile side for an image that does not fit a pixel budget, or null when it does (run it whole).
 * The tile is the largest multiple of 64 whose square fits the budget (at least 64).
 *
 * @example
 * const tile = autoTileSize(image.width, image.height); // null below ~4 MP
 * @throws {TypeError} / {RangeError} for sizes or a budget that are not integers >= 1.
 */
export function autoTileSize(width: number, height: number, budgetPixels = 4_000_000): number | null {
  const pixels = checkedPixelCount(width, height);
  expectInteger('budgetPixels', budgetPixels, 1);
  if (pixels <= budgetPixels) return null;
  return Math.max(64, Math.floor(Math.sqrt(budgetPixels) / 64) * 64);
}

/** Options for {@link TileBlender}. */
export interface TileBlenderOptions {
  /** Width of the weight ramp at tile edges, in pixels; use the tiles' overlap (default 32). */
  readonly feather?: number;
}

/** Weight at a tile's very edge: small but not zero, so a pixel only one tile reaches still counts. */
const WEIGHT_FLOOR = 1e-3;

/**
 * Accumulates tiles into one image with feathered weights: each tile's weight ramps linearly from
 * its edges over `feather` pixels (except along the image's own borders, where there is no
 * neighbour to blend with), and {@link TileBlender.result} divides by the summed weights.
 * Memory: one 3 x W x H float accumulator and one W x H weight plane; the result reuses the
 * accumulator, so a blender gives one result.
 *
 * @example
 * const blender = new TileBlender(width, height, { feather: overlap });
 * for (const rect of rects) blender.add(await stylise(cropImage(image, rect)), rect);
 * const output = blender.result();
 */
export class TileBlender {
  readonly width: number;
  readonly height: number;
  private readonly feather: number;
  private readonly sum: Float32Array;
  private readonly weights: Float32Array;
  private done = false;

  /** @throws {TypeError} / {RangeError} for sizes that are not integers >= 1 or a negative feather. */
  constructor(width: number, height: number, options: TileBlenderOptions = {}) {
    const n = checkedPixelCount(width, height);
    this.width = width;
    this.height = height;
    this.feather = expectInteger('feather', options.feather ?? 32, 0);
    this.sum = new Float32Array(3 * n);
    this.weights = new Float32Array(n);
  }

  /**
   * Adds a processed tile that covers `rect` of the whole image.
   * @throws {RangeError} when the tile's size differs from `rect`'s or `rect` leaves the image.
   * @throws {Error} after {@link TileBlender.result} has been taken.
   */
  add(tile: RgbImage, rect: Rect): void {
    if (this.done) throw new Error('TileBlender.add called after result()');
    expectImage('tile', tile);
    const { left, top, width, height } = rect;
    if (tile.width !== width || tile.height !== height) {
      throw new RangeError(`Expected a ${width}x${height} tile for its rectangle but received ${tile.width}x${tile.height}`);
    }
    if (!(left >= 0 && top >= 0 && left + width <= this.width && top + height <= this.height)) {
      throw new RangeError(`Expected a tile inside the ${this.width}x${this.height} image but received ${width}x${height} at (${left}, ${top})`);
    }
    // Separable weights: the product of two 1-D ramps, smooth at tile corners.
    const wx = this.ramp(width, left > 0, left + width < this.width);
    const wy = this.ramp(height, top > 0, top + height < this.height);
    const n = this.width * this.height;
    const m = width * height;
    const src = tile.data;
    for (let y = 0; y < height; y++) {
      const row = (top + y) * this.width + left;
      const tileRow = y * width;
      const rowWeight = wy[y];
      for (let x = 0; x < width; x++) {
        const w = rowWeight * wx[x];
        const i = row + x;
        const j = tileRow + x;
        this.weights[i] += w;
        this.sum[i] += w * src[j];
        this.sum[i + n] += w * src[j + m];
        this.sum[i + 2 * n] += w * src[j + 2 * m];
      }
    }
  }

  /**
   * The blended image (weighted mean of the tiles at every pixel).
   * @throws {Error} when some pixel was covered by no tile, or when called twice.
   */
  result(): RgbImage {
    if (this.done) throw new Error('TileBlender.result called twice');
    this.done = true;
    const n = this.width * this.height;
    let uncovered = 0;
    for (let i = 0; i < n; i++) {
      const w = this.weights[i];
      if (w === 0) { uncovered++; continue; }
      this.sum[i] /= w;
      this.sum[i + n] /= w;
      this.sum[i + 2 * n] /= w;
    }
    if (uncovered > 0) throw new Error(`TileBlender: ${uncovered} pixels were covered by no tile`);
    return { data: this.sum, width: this.width, height: this.height };
  }

  /** Weights along one tile side: ramps up from each edge that has a neighbour. */
  private ramp(length: number, rampStart: boolean, rampEnd: boolean): Float32Array {
    const weights = new Float32Array(length);
    for (let k = 0; k < length; k++) {
      // Distance from the pixel centre to the tile edge, so edge pixels get half a pixel's worth.
      const fromStart = rampStart ? k + 0.5 : Infinity;
      const fromEnd = rampEnd ? length - k - 0.5 : Infinity;
      const distance = Math.min(fromStart, fromEnd);
      weights[k] = this.feather === 0 ? 1 : Math.max(WEIGHT_FLOOR, Math.min(1, distance / this.feather));
    }
    return weights;
  }
}
