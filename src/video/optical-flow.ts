/**
 * Dense optical flow estimated from two frames, for videos without ground truth (DAVIS): the
 * warping error of Lai et al. 2018 needs the flow of the input clip, which they took from
 * FlowNet2. This is the classical TV-L1 method (Zach, Pock and Bischof 2007, with the median
 * filtering of Wedel et al. 2009), coarse to fine with warping, on lightly blurred luma, with the
 * parameters of the IPOL implementation (Sánchez, Meinhardt-Llopis and Facciolo 2013).
 */
import type { RgbImage } from '../image/types.js';
import { expectImage } from '../image/pixels.js';
import { expectInteger, expectNumber } from '../util/validate.js';
import { sample, type Flow } from './flow.js';

/** Options for {@link estimateFlow}; the defaults suit 854x480 natural video. */
export interface FlowOptions {
  /** Pyramid levels, each half the size of the one above (default: as many as keep the coarsest side at least 16 px, at most 6). */
  readonly levels?: number;
  /** Warps (re-linearisations of the brightness constancy) per level (default 5). */
  readonly warps?: number;
  /** Most inner iterations per warp; fewer when the flow stops changing (default 20). */
  readonly iterations?: number;
  /** Weight of the total variation of the flow against brightness constancy, 1/λ of TV-L1 (default 1/0.15). */
  readonly smoothness?: number;
}

const MIN_SIDE = 8;
const THETA = 0.3; // coupling between the two half-problems
const TAU = 0.25; // dual time step (stable below 1/4 · 2)
const STOP = 1e-6; // mean squared change of the flow, in px², that ends a warp's iterations early
const PRESMOOTH = 0.8; // Gaussian sigma applied before each halving, and to the finest level

/**
 * The dense flow F from `from` to `to`, so that from(x) ≈ to(x + F(x)) and
 * `warpBackward(to, F)` ≈ `from` (the convention of src/video/flow.ts). Occluded pixels get the
 * flow of their surroundings; use {@link occlusionMask} with a backward estimate to drop them.
 *
 * @example
 * const forward = estimateFlow(frames[t], frames[t + 1]);
 * const backward = estimateFlow(frames[t + 1], frames[t]);
 * warpingError([styled[t], styled[t + 1]], [forward], [occlusionMask(forward, backward)]);
 * @throws {TypeError} for a malformed image or option; {RangeError} for frames of different
 * sizes, smaller than 8x8, or an option out of range.
 */
export function estimateFlow(from: RgbImage, to: RgbImage, options: FlowOptions = {}): Flow {
  expectImage('from', from);
  expectImage('to', to);
  const { width, height } = from;
  if (to.width !== width || to.height !== height) {
    throw new RangeError(`Expected frames of the same size but received ${width}x${height} and ${to.width}x${to.height}`);
  }
  if (width < MIN_SIDE || height < MIN_SIDE) {
    throw new RangeError(`Expected frames of at least ${MIN_SIDE}x${MIN_SIDE} but received ${width}x${height}`);
  }
  // Levels beyond the one that would fall under 8 px carry no information; they are dropped.
  let possible = 1;
  while (possible < 16 && Math.min(width, height) >> possible >= MIN_SIDE) possible++;
  let preferred = 1;
  while (preferred < 6 && Math.min(width, height) >> preferred >= 16) preferred++;
  const levels = Math.min(options.levels === undefined ? preferred : expectInteger('levels', options.levels, 1, 16), possible);
  const warps = options.warps === undefined ? 5 : expectInteger('warps', options.warps, 1, 100);
  const iterations = options.iterations === undefined ? 20 : expectInteger('iterations', options.iterations, 1, 10000);
  const smoothness = options.smoothness === undefined ? 1 / 0.15 : expectNumber('smoothness', options.smoothness, 1e-3, 1e3);

  const n = width * height;
  const work = new Workspace(n);
  const first = pyramid(luma(from), width, height, levels, work);
  const second = pyramid(luma(to), width, height, levels, work);
  let u1 = new Float32Array(n);
  let u2 = new Float32Array(n);
  let spare1 = new Float32Array(n);
  let spare2 = new Float32Array(n);
  for (let level = levels - 1; level >= 0; level--) {
    const { width: w, height: h } = first[level];
    // The coarsest level starts from zero flow; each other from the one below, scaled up.
    if (level < levels - 1) {
      const coarse = first[level + 1];
      upsampleFlow(u1, coarse.width, coarse.height, spare1, w, h);
      upsampleFlow(u2, coarse.width, coarse.height, spare2, w, h);
      [u1, spare1, u2, spare2] = [spare1, u1, spare2, u2];
    }
    solveLevel(first[level].data, second[level].data, w, h, u1.subarray(0, w * h), u2.subarray(0, w * h), work,
      { warps, iterations, lambda: 1 / smoothness });
  }
  return { width, height, u: u1, v: u2 };
}

type Scratch = 'i1x' | 'i1y' | 'i1w' | 'i1wx' | 'i1wy' | 'grad' | 'rhoc' | 'p11' | 'p12' | 'p21' | 'p22' | 'tmp';

/** Scratch buffers of the finest level's size, viewed at each level's size, so no iteration allocates. */
class Workspace {
  private readonly buffers = new Map<Scratch, Float32Array>();
  constructor(private readonly size: number) {}
  view(name: Scratch, size: number): Float32Array {
    let buffer = this.buffers.get(name);
    if (buffer === undefined) this.buffers.set(name, buffer = new Float32Array(this.size));
    return buffer.subarray(0, size);
  }
}

/** TV-L1 on one level: `u1`, `u2` hold the initial flow and receive the refined one. */
function solveLevel(i0: Float32Array, i1: Float32Array, width: number, height: number, u1: Float32Array, u2: Float32Array,
  work: Workspace, params: { warps: number; iterations: number; lambda: number }): void {
  const n = width * height;
  const [i1x, i1y, i1w, i1wx, i1wy, grad, rhoc] = (['i1x', 'i1y', 'i1w', 'i1wx', 'i1wy', 'grad', 'rhoc'] as const).map((k) => work.view(k, n));
  // The dual variable restarts at 0 on each level, as in the IPOL implementation.
  const [p11, p12, p21, p22] = (['p11', 'p12', 'p21', 'p22'] as const).map((k) => work.view(k, n).fill(0));
  centredGradient(i1, width, height, i1x, i1y);
  const lt = params.lambda * THETA;
  const taut = TAU / THETA;
  for (let warp = 0; warp < params.warps; warp++) {
    for (let y = 0, i = 0; y < height; y++) {
      for (let x = 0; x < width; x++, i++) {
        const sx = x + u1[i];
        const sy = y + u2[i];
        i1w[i] = sample(i1, 0, width, height, sx, sy);
        i1wx[i] = sample(i1x, 0, width, height, sx, sy);
        i1wy[i] = sample(i1y, 0, width, height, sx, sy);
        grad[i] = i1wx[i] * i1wx[i] + i1wy[i] * i1wy[i];
        rhoc[i] = i1w[i] - i1wx[i] * u1[i] - i1wy[i] * u2[i] - i0[i];
      }
    }
    for (let iteration = 0; iteration < params.iterations; iteration++) {
      let change = 0;
      // Primal step: threshold the linearised data term, then add θ·div p (p is not written here).
      for (let y = 0, i = 0; y < height; y++) {
        for (let x = 0; x < width; x++, i++) {
          const gx = i1wx[i];
          const gy = i1wy[i];
          const g = grad[i];
          const rho = rhoc[i] + gx * u1[i] + gy * u2[i];
          let d1 = 0;
          let d2 = 0;
          if (rho < -lt * g) { d1 = lt * gx; d2 = lt * gy; } else if (rho > lt * g) { d1 = -lt * gx; d2 = -lt * gy; } else if (g > 1e-10) { d1 = -rho * gx / g; d2 = -rho * gy / g; }
          // Divergence as the adjoint of the forward differences below (p is 0 on the last column and row).
          const div1 = p11[i] - (x > 0 ? p11[i - 1] : 0) + p12[i] - (y > 0 ? p12[i - width] : 0);
          const div2 = p21[i] - (x > 0 ? p21[i - 1] : 0) + p22[i] - (y > 0 ? p22[i - width] : 0);
          const next1 = u1[i] + d1 + THETA * div1;
          const next2 = u2[i] + d2 + THETA * div2;
          change += (next1 - u1[i]) ** 2 + (next2 - u2[i]) ** 2;
          u1[i] = next1;
          u2[i] = next2;
        }
      }
      // Dual step (Chambolle's projection) on the forward differences of the new flow.
      for (let y = 0, i = 0; y < height; y++) {
        for (let x = 0; x < width; x++, i++) {
          const right = x + 1 < width;
          const below = y + 1 < height;
          const u1x = right ? u1[i + 1] - u1[i] : 0;
          const u1y = below ? u1[i + width] - u1[i] : 0;
          const u2x = right ? u2[i + 1] - u2[i] : 0;
          const u2y = below ? u2[i + width] - u2[i] : 0;
          const norm1 = 1 + taut * Math.sqrt(u1x * u1x + u1y * u1y);
          const norm2 = 1 + taut * Math.sqrt(u2x * u2x + u2y * u2y);
          p11[i] = (p11[i] + taut * u1x) / norm1;
          p12[i] = (p12[i] + taut * u1y) / norm1;
          p21[i] = (p21[i] + taut * u2x) / norm2;
          p22[i] = (p22[i] + taut * u2y) / norm2;
        }
      }
      if (change / n < STOP) break;
    }
    // Wedel et al.: a 3x3 median after each warp removes the outliers that the L1 term lets through.
    median3x3(u1, width, height, work.view('tmp', n));
    median3x3(u2, width, height, work.view('tmp', n));
  }
}

/** Rec. 601 luma of a planar RGB image. */
function luma(image: RgbImage): Float32Array {
  const n = image.width * image.height;
  const out = new Float32Array(n);
  const d = image.data;
  for (let i = 0; i < n; i++) out[i] = 0.299 * d[i] + 0.587 * d[n + i] + 0.114 * d[2 * n + i];
  return out;
}

/** Blurred levels, finest first; each coarser one is the 2x2 mean of the blurred one above (sides rounded down). */
function pyramid(grey: Float32Array, width: number, height: number, levels: number, work: Workspace): { data: Float32Array; width: number; height: number }[] {
  gaussianBlur(grey, width, height, PRESMOOTH, work.view('tmp', width * height));
  const out = [{ data: grey, width, height }];
  for (let level = 1; level < levels; level++) {
    const above = out[level - 1];
    const blurred = work.view('i1w', above.width * above.height);
    blurred.set(above.data);
    gaussianBlur(blurred, above.width, above.height, PRESMOOTH, work.view('tmp', above.width * above.height));
    const w = above.width >> 1;
    const h = above.height >> 1;
    const data = new Float32Array(w * h);
    for (let y = 0, i = 0; y < h; y++) {
      for (let x = 0; x < w; x++, i++) {
        const j = 2 * y * above.width + 2 * x;
        data[i] = 0.25 * (blurred[j] + blurred[j + 1] + blurred[j + above.width] + blurred[j + above.width + 1]);
      }
    }
    out.push({ data, width: w, height: h });
  }
  return out;
}

/** Separable Gaussian blur in place, borders clamped. */
function gaussianBlur(plane: Float32Array, width: number, height: number, sigma: number, tmp: Float32Array): void {
  const radius = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, k) => Math.exp(-((k - radius) ** 2) / (2 * sigma * sigma)));
  const total = kernel.reduce((a, b) => a + b, 0);
  for (let k = 0; k < kernel.length; k++) kernel[k] /= total;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) sum += kernel[k + radius] * plane[y * width + Math.min(width - 1, Math.max(0, x + k))];
      tmp[y * width + x] = sum;
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) sum += kernel[k + radius] * tmp[Math.min(height - 1, Math.max(0, y + k)) * width + x];
      plane[y * width + x] = sum;
    }
  }
}

/** Central differences (one-sided at the border). */
function centredGradient(plane: Float32Array, width: number, height: number, gx: Float32Array, gy: Float32Array): void {
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const left = x > 0 ? i - 1 : i;
      const right = x + 1 < width ? i + 1 : i;
      const up = y > 0 ? i - width : i;
      const down = y + 1 < height ? i + width : i;
      gx[i] = (plane[right] - plane[left]) / (right - left === 2 ? 2 : 1);
      gy[i] = (plane[down] - plane[up]) / (down - up === 2 * width ? 2 : 1);
    }
  }
}


/** One flow component of a level, resampled onto the level above and scaled to its pixels. */
function upsampleFlow(coarse: Float32Array, cw: number, ch: number, fine: Float32Array, width: number, height: number): void {
  // A coarse pixel X is the mean of fine pixels 2X and 2X+1, so its centre is at 2X + 0.5.
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) fine[i] = 2 * sample(coarse, 0, cw, ch, (x - 0.5) / 2, (y - 0.5) / 2);
  }
}

/** 3x3 median in place (the window clamped at the border), by Paeth's 19-exchange network. */
function median3x3(plane: Float32Array, width: number, height: number, tmp: Float32Array): void {
  tmp.set(plane);
  for (let y = 0, i = 0; y < height; y++) {
    const up = (y > 0 ? y - 1 : y) * width;
    const mid = y * width;
    const down = (y + 1 < height ? y + 1 : y) * width;
    for (let x = 0; x < width; x++, i++) {
      const l = x > 0 ? x - 1 : x;
      const r = x + 1 < width ? x + 1 : x;
      let p0 = tmp[up + l], p1 = tmp[up + x], p2 = tmp[up + r];
      let p3 = tmp[mid + l], p4 = tmp[mid + x], p5 = tmp[mid + r];
      let p6 = tmp[down + l], p7 = tmp[down + x], p8 = tmp[down + r];
      let t: number;
      if (p1 > p2) { t = p1; p1 = p2; p2 = t; }
      if (p4 > p5) { t = p4; p4 = p5; p5 = t; }
      if (p7 > p8) { t = p7; p7 = p8; p8 = t; }
      if (p0 > p1) { t = p0; p0 = p1; p1 = t; }
      if (p3 > p4) { t = p3; p3 = p4; p4 = t; }
      if (p6 > p7) { t = p6; p6 = p7; p7 = t; }
      if (p1 > p2) { t = p1; p1 = p2; p2 = t; }
      if (p4 > p5) { t = p4; p4 = p5; p5 = t; }
      if (p7 > p8) { t = p7; p7 = p8; p8 = t; }
      if (p0 > p3) p3 = p0;
      if (p5 > p8) p5 = p8;
      if (p4 > p7) { t = p4; p4 = p7; p7 = t; }
      if (p3 > p6) p6 = p3;
      if (p1 > p4) p4 = p1;
      if (p2 > p5) p2 = p5;
      if (p4 > p7) p4 = p7;
      if (p4 > p2) { t = p4; p4 = p2; p2 = t; }
      if (p6 > p4) p4 = p6;
      plane[i] = p4 > p2 ? p2 : p4;
    }
  }
}
