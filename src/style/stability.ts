/**
 * The stability loss (Gupta et al. 2017; ReReVST 2020): a network stylising video frame by frame
 * flickers because a small change of its input (sensor noise, a sub-pixel move) comes out as a
 * large change of the strokes. Without optical flow, training shows the network each photo x and
 * a perturbed copy x' = T(x) + n — T a random sub-pixel shift, n Gaussian noise — and penalises
 * |f(x') − T(f(x))|²: the output should move with its input and not more.
 *
 * Both pass through the network as one batch of 2B. T is the same bilinear shift on both sides: in
 * TypeScript on the photos (`perturbBatch`), and in the graph on the output as a valid convolution
 * whose kernel is fed each step (`stability.kernel`), so the two agree exactly away from the border.
 */
import { F, type Graph, type Value } from '../graph/index.js';
import { seededStream } from '../util/random.js';
import { expectNumber } from '../util/validate.js';
import { meanSquaredError } from './losses.js';

export interface StabilityLoss {
  /** Weight of the mean squared difference (0..255 units) between f(T(x) + n) and T(f(x)). */
  readonly weight: number;
  /** Standard deviation of the added noise, in 0..255 units. */
  readonly noise: number;
  /** Largest shift of T in pixels, along each axis (sub-pixel, random each step). */
  readonly shift: number;
}

export const STABILITY_DEFAULTS = { noise: 3, shift: 1 } as const;

/** Graph inputs the stability term adds: the perturbed photos and the shift kernel. */
export const PERTURBED_INPUT = 'perturbed';
export const KERNEL_INPUT = 'stability.kernel';

/** Border (pixels) the shift kernel needs: its radius. */
export const stabilityRadius = (loss: Pick<StabilityLoss, 'shift'>): number => Math.max(1, Math.ceil(loss.shift));

/** Validates a stability loss once, at the boundary. */
export function checkStability(loss: StabilityLoss): void {
  expectNumber('stability weight', loss.weight, 0);
  expectNumber('stability noise', loss.noise, 0, 64);
  expectNumber('stability shift', loss.shift, 0, 8);
}

/**
 * The stability term on the network's output for the batch [x; x'] ([2B, 3, S, S]): the mean
 * squared difference between f(x') and T(f(x)) over the pixels where both are defined (a border
 * of the kernel's radius is left out).
 */
export function stabilityTerm(graph: Graph, output: Value, batch: number, loss: StabilityLoss): Value {
  const r = stabilityRadius(loss);
  const k = 2 * r + 1;
  const kernel = graph.input(KERNEL_INPUT, [3, 3, k, k]);
  const clean = F.slice(output, 0, 0, batch);
  const perturbed = F.slice(output, 0, batch, 2 * batch);
  const moved = F.conv2d(clean, kernel, undefined, { stride: 1, padding: [0, 0, 0, 0] });
  return meanSquaredError(F.crop2d(perturbed, [r, r, r, r]), moved);
}

/**
 * The perturbation of one training step, drawn from (seed, step) alone so a resumed run repeats
 * it bit for bit: `perturbed` = T(photos) + noise (clipped to 0..255), and `kernel` = T as a
 * [3, 3, K, K] channel-diagonal convolution (valid padding) for the graph.
 */
export function perturbBatch(photos: Float32Array, batch: number, size: number, loss: StabilityLoss, seed: number, step: number): { perturbed: Float32Array; kernel: Float32Array } {
  const r = stabilityRadius(loss);
  const k = 2 * r + 1;
  const random = seededStream(seed, step);
  // A shift in [-shift, shift) on each axis; strictly below r so the bilinear taps stay inside the kernel.
  const draw = (): number => Math.min(loss.shift * (2 * random.uniform() - 1), r - 1e-6);
  const dy = draw();
  const dx = draw();
  const taps = bilinearTaps(dy, dx, r);
  const kernel = new Float32Array(3 * 3 * k * k);
  for (let c = 0; c < 3; c++) for (const { a, b, w } of taps) kernel[((c * 3 + c) * k + a) * k + b] = w;

  const perturbed = new Float32Array(photos.length);
  const plane = size * size;
  for (let p = 0; p < batch * 3; p++) {
    const src = photos.subarray(p * plane, (p + 1) * plane);
    const dst = perturbed.subarray(p * plane, (p + 1) * plane);
    for (let y = 0; y < size; y++) {
      // Reflect into the valid region, so the interior is exactly the graph's valid convolution.
      const vy = reflect(y - r, size - 2 * r);
      for (let x = 0; x < size; x++) {
        const vx = reflect(x - r, size - 2 * r);
        let sum = 0;
        for (const { a, b, w } of taps) sum += w * src[(vy + a) * size + vx + b];
        const noisy = sum + loss.noise * random.gaussian();
        dst[y * size + x] = noisy < 0 ? 0 : noisy > 255 ? 255 : noisy;
      }
    }
  }
  return { perturbed, kernel };
}

/** The four bilinear taps (kernel row a, column b, weight w) of a shift by (dy, dx) in a kernel of radius r. */
function bilinearTaps(dy: number, dx: number, r: number): { a: number; b: number; w: number }[] {
  const iy = Math.floor(dy);
  const ix = Math.floor(dx);
  const fy = dy - iy;
  const fx = dx - ix;
  return [
    { a: r + iy, b: r + ix, w: (1 - fy) * (1 - fx) },
    { a: r + iy, b: r + ix + 1, w: (1 - fy) * fx },
    { a: r + iy + 1, b: r + ix, w: fy * (1 - fx) },
    { a: r + iy + 1, b: r + ix + 1, w: fy * fx },
  ].filter((t) => t.w !== 0);
}

/** Index i reflected into [0, n) (… 2 1 0 1 2 … n−2 n−1 n−2 …). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}
