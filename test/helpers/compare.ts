/** Image and tensor comparison metrics for tests: never byte-for-byte. */

/** The p-th percentile (0..100) of |a - b|. */
export function percentileAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, p: number): number {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} vs ${b.length}`);
  const diffs = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) diffs[i] = Math.abs(a[i] - b[i]);
  diffs.sort();
  return diffs[Math.min(diffs.length - 1, Math.floor((p / 100) * diffs.length))];
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** PSNR in dB for 0..255 data. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  const mse = s / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** NHWC (interleaved) → NCHW (planar) for one image. */
export function hwcToChw(hwc: ArrayLike<number>, height: number, width: number, channels = 3): Float32Array {
  const out = new Float32Array(hwc.length);
  const plane = height * width;
  for (let i = 0; i < plane; i++) for (let c = 0; c < channels; c++) out[c * plane + i] = hwc[i * channels + c];
  return out;
}
