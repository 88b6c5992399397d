/**
 * Colour controls for style transfer, all on 0..255 RGB images:
 * keeping the content's colours (luminance-only transfer and colour-statistics matching, both from
 * Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving Color in Neural Artistic Style Transfer"),
 * histogram matching, and blending for the strength control.
 */
import type { RgbImage } from './types.js';
import { expectImage, expectSameSize } from './pixels.js';
import { expectNumber } from '../util/validate.js';

// BT.601 luma weights (full range, as in JPEG/JFIF).
const KR = 0.299;
const KG = 0.587;
const KB = 0.114;

/**
 * Luminance-only transfer: the luminance (Y of BT.601 full-range YCbCr) of `stylised` with the
 * chroma (Cb, Cr) of `content`, so the result has the style's strokes in the content's colours.
 * Result clamped to 0..255.
 *
 * @example
 * const output = preserveLuminance(stylised, content);
 * @throws {RangeError} when the images differ in size.
 */
export function preserveLuminance(stylised: RgbImage, content: RgbImage): RgbImage {
  expectImage('stylised', stylised);
  expectImage('content', content);
  expectSameSize('preserveLuminance', stylised, content);
  const n = stylised.width * stylised.height;
  const s = stylised.data;
  const c = content.data;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const cr = c[i], cg = c[i + n], cb = c[i + 2 * n];
    // YCbCr -> RGB is linear with R - Y, G - Y and B - Y depending only on (Cb, Cr), so swapping in
    // another Y just shifts all three channels by the difference in luminance: exact, no matrices.
    const shift = KR * s[i] + KG * s[i + n] + KB * s[i + 2 * n] - (KR * cr + KG * cg + KB * cb);
    out[i] = clamp255(cr + shift);
    out[i + n] = clamp255(cg + shift);
    out[i + 2 * n] = clamp255(cb + shift);
  }
  return { data: out, width: stylised.width, height: stylised.height };
}

/**
 * Per-channel histogram matching: remaps each channel of `source` so that its distribution of
 * values follows `reference`'s (quantile mapping with linear interpolation between ranks; equal
 * source values map to equal outputs, at their mid-rank). The images may differ in size. Used to
 * recolour a style image with the content's palette before transfer.
 *
 * Ranks come from histograms with bins of 1/16 of a level rather than from sorting (sorting and
 * searching a 4 MP photo's channels took over 10 s): exact for 8-bit-valued images, what decoders
 * give; for other values, ranks inside a bin are interpolated between its extremes.
 *
 * @example
 * const recoloured = matchHistograms(style, content);
 */
export function matchHistograms(source: RgbImage, reference: RgbImage): RgbImage {
  expectImage('source', source);
  expectImage('reference', reference);
  const n = source.width * source.height;
  const m = reference.width * reference.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    matchChannel(source.data.subarray(c * n, (c + 1) * n), reference.data.subarray(c * m, (c + 1) * m), out.subarray(c * n, (c + 1) * n));
  }
  return { data: out, width: source.width, height: source.height };
}

const BINS_PER_LEVEL = 16;
const BINS = 256 * BINS_PER_LEVEL;

/** Histogram bin of a value; out-of-range values (and NaN) fall in the end bins. */
function binOf(value: number): number {
  const bin = Math.floor(value * BINS_PER_LEVEL);
  return bin >= 0 ? (bin < BINS ? bin : BINS - 1) : 0;
}

/**
 * A channel's values by bin: how many, how many in earlier bins, and the smallest and largest.
 * Ranks inside a bin are interpolated between its smallest and largest value, which is exact when
 * the bin holds one distinct value (always, for 8-bit data).
 */
class BinnedValues {
  readonly starts = new Float64Array(BINS + 1); // starts[b]: values in bins before b; starts[BINS] = total
  readonly low = new Float32Array(BINS).fill(Infinity);
  readonly high = new Float32Array(BINS).fill(-Infinity);

  constructor(values: Float32Array) {
    const { starts, low, high } = this;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      const b = binOf(v);
      starts[b + 1]++;
      if (v < low[b]) low[b] = v;
      if (v > high[b]) high[b] = v;
    }
    for (let b = 0; b < BINS; b++) starts[b + 1] += starts[b];
  }

  /** Rank (0-based, fractional) of `value`; tied values share their mid-rank. */
  rankOf(value: number): number {
    const b = binOf(value);
    const count = this.starts[b + 1] - this.starts[b];
    const spread = this.high[b] - this.low[b];
    const within = spread > 0 ? ((value - this.low[b]) / spread) * (count - 1) : (count - 1) / 2;
    return this.starts[b] + within;
  }

  /** The value of fractional rank `rank`, interpolating between neighbouring ranks. */
  valueAt(rank: number): number {
    const k = Math.floor(rank);
    const lower = this.kth(k);
    return k + 1 < this.starts[BINS] ? lower + (rank - k) * (this.kth(k + 1) - lower) : lower;
  }

  private kth(k: number): number {
    let b = 0;
    let top = BINS - 1;
    while (b < top) { // the last bin with starts[b] <= k
      const mid = (b + top + 1) >>> 1;
      if (this.starts[mid] <= k) b = mid;
      else top = mid - 1;
    }
    const count = this.starts[b + 1] - this.starts[b];
    return count === 1 ? this.low[b] : this.low[b] + ((this.high[b] - this.low[b]) * (k - this.starts[b])) / (count - 1);
  }
}

function matchChannel(src: Float32Array, ref: Float32Array, out: Float32Array): void {
  const n = src.length;
  const source = new BinnedValues(src);
  const reference = new BinnedValues(ref);
  // A 1-pixel source sits at the reference median.
  const mapped = (value: number) => reference.valueAt(n === 1 ? (ref.length - 1) / 2 : (source.rankOf(value) * (ref.length - 1)) / (n - 1));
  // Bins holding a single distinct value (all of them, for 8-bit data) map through a table;
  // only values in mixed bins pay for a search. NaN marks the mixed and empty bins.
  const table = new Float32Array(BINS).fill(Number.NaN);
  for (let b = 0; b < BINS; b++) {
    if (source.low[b] === source.high[b]) table[b] = mapped(source.low[b]);
  }
  for (let i = 0; i < n; i++) {
    const fromTable = table[binOf(src[i])];
    out[i] = Number.isNaN(fromTable) ? mapped(src[i]) : fromTable;
  }
}

/**
 * Colour-statistics matching (Gatys et al. 2016, section 2.1): an affine map of `source`'s colours,
 * x' = A (x - mean_s) + mean_r, giving it `reference`'s mean and 3x3 colour covariance. A is the
 * Image Analogies form, cov_r^(1/2) cov_s^(-1/2), with symmetric matrix square roots; unlike the
 * Cholesky form it does not depend on the order of the channels. The result is clamped to 0..255,
 * so statistics are exact only where no value had to be clamped.
 *
 * @example
 * const recoloured = matchColorStatistics(style, content);
 */
export function matchColorStatistics(source: RgbImage, reference: RgbImage): RgbImage {
  expectImage('source', source);
  expectImage('reference', reference);
  const s = colorStatistics(source);
  const r = colorStatistics(reference);
  const a = multiply(symmetricPower(r.covariance, 0.5), symmetricPower(s.covariance, -0.5));
  const n = source.width * source.height;
  const d = source.data;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const x0 = d[i] - s.mean[0], x1 = d[i + n] - s.mean[1], x2 = d[i + 2 * n] - s.mean[2];
    out[i] = clamp255(a[0] * x0 + a[1] * x1 + a[2] * x2 + r.mean[0]);
    out[i + n] = clamp255(a[3] * x0 + a[4] * x1 + a[5] * x2 + r.mean[1]);
    out[i + 2 * n] = clamp255(a[6] * x0 + a[7] * x1 + a[8] * x2 + r.mean[2]);
  }
  return { data: out, width: source.width, height: source.height };
}

/** Mean colour and 3x3 colour covariance (row-major, population) of an image, in float64. */
export function colorStatistics(image: RgbImage): { mean: number[]; covariance: number[] } {
  const n = image.width * image.height;
  const d = image.data;
  const mean = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    for (let i = c * n; i < (c + 1) * n; i++) sum += d[i];
    mean[c] = sum / n;
  }
  const covariance = new Array<number>(9).fill(0);
  for (let i = 0; i < n; i++) {
    const x0 = d[i] - mean[0], x1 = d[i + n] - mean[1], x2 = d[i + 2 * n] - mean[2];
    covariance[0] += x0 * x0; covariance[1] += x0 * x1; covariance[2] += x0 * x2;
    covariance[4] += x1 * x1; covariance[5] += x1 * x2; covariance[8] += x2 * x2;
  }
  covariance[3] = covariance[1]; covariance[6] = covariance[2]; covariance[7] = covariance[5];
  return { mean, covariance: covariance.map((v) => v / n) };
}

/**
 * M^p for a symmetric positive semi-definite 3x3 matrix, through its eigendecomposition (Jacobi).
 * Eigenvalues are floored at a small epsilon (in squared 0..255 levels): a grey or flat image has a
 * singular covariance, and its null directions carry no signal to scale anyway.
 */
function symmetricPower(matrix: readonly number[], power: number): number[] {
  const { values, vectors } = symmetricEigen(matrix);
  const scaled = values.map((v) => Math.pow(Math.max(v, 1e-3), power));
  const out = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let sum = 0;
      for (let k = 0; k < 3; k++) sum += vectors[i * 3 + k] * scaled[k] * vectors[j * 3 + k];
      out[i * 3 + j] = sum;
    }
  }
  return out;
}

/** Eigenvalues and eigenvectors (as columns of a row-major 3x3) of a symmetric 3x3 matrix. */
function symmetricEigen(matrix: readonly number[]): { values: number[]; vectors: number[] } {
  const a = matrix.slice();
  const v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = a[1] ** 2 + a[2] ** 2 + a[5] ** 2;
    if (off <= 1e-30 * (a[0] ** 2 + a[4] ** 2 + a[8] ** 2) || off === 0) break;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]] as const) {
      const apq = a[p * 3 + q];
      if (apq === 0) continue;
      // Classic Jacobi rotation zeroing a[p][q] (Numerical Recipes' numerically stable form).
      const theta = (a[q * 3 + q] - a[p * 3 + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const cos = 1 / Math.sqrt(t * t + 1);
      const sin = t * cos;
      for (let k = 0; k < 3; k++) { // columns p, q of A
        const akp = a[k * 3 + p], akq = a[k * 3 + q];
        a[k * 3 + p] = cos * akp - sin * akq;
        a[k * 3 + q] = sin * akp + cos * akq;
      }
      for (let k = 0; k < 3; k++) { // rows p, q of A
        const apk = a[p * 3 + k], aqk = a[q * 3 + k];
        a[p * 3 + k] = cos * apk - sin * aqk;
        a[q * 3 + k] = sin * apk + cos * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[k * 3 + p], vkq = v[k * 3 + q];
        v[k * 3 + p] = cos * vkp - sin * vkq;
        v[k * 3 + q] = sin * vkp + cos * vkq;
      }
    }
  }
  return { values: [a[0], a[4], a[8]], vectors: v };
}

function multiply(x: readonly number[], y: readonly number[]): number[] {
  const out = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) out[i * 3 + j] = x[i * 3] * y[j] + x[i * 3 + 1] * y[3 + j] + x[i * 3 + 2] * y[6 + j];
  }
  return out;
}

/**
 * (1 - t) * a + t * b: `t` = 1 is all `b`. The --strength control blends content (a) and
 * stylised (b) images this way.
 *
 * @throws {RangeError} when the images differ in size or `t` is outside 0..1.
 */
export function blendImages(a: RgbImage, b: RgbImage, t: number): RgbImage {
  expectImage('a', a);
  expectImage('b', b);
  expectSameSize('blendImages', a, b);
  expectNumber('blend weight', t, 0, 1);
  const x = a.data;
  const y = b.data;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + t * (y[i] - x[i]);
  return { data: out, width: a.width, height: a.height };
}

function clamp255(v: number): number {
  return v > 255 ? 255 : v > 0 ? v : 0;
}
