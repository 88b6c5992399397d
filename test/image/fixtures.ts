/** Small generated images and a scratch folder for the image tests (no shared data needed). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RgbImage } from '../../src/image/types.js';

import { rng as random } from '../helpers/random.js';

/** Deterministic pseudo-random numbers in [0, 1), so failures reproduce. */
export { random };

/** An image whose every value comes from `f(x, y, channel)`. */
export function imageFrom(width: number, height: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) data[c * width * height + y * width + x] = f(x, y, c);
    }
  }
  return { data, width, height };
}

/** Random integer values 0..255 (what a decoded 8-bit file holds). */
export function noiseImage(width: number, height: number, seed = 1): RgbImage {
  const next = random(seed);
  return imageFrom(width, height, () => Math.floor(next() * 256));
}

/** A smooth colour image, friendly to lossy codecs. */
export function smoothImage(width: number, height: number): RgbImage {
  return imageFrom(width, height, (x, y, c) =>
    128 + 100 * Math.sin((x / width) * Math.PI * (c + 1) + c) * Math.cos((y / height) * Math.PI * 1.5));
}

/** Peak signal-to-noise ratio in dB between two same-sized images (0..255 scale). */
export function psnr(a: RgbImage, b: RgbImage): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += (a.data[i] - b.data[i]) ** 2;
  const mse = sum / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** Largest absolute difference between two arrays of the same length. */
export function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** A fresh temp folder and a function that removes it. */
export async function scratchDir(): Promise<{ dir: string; path: (name: string) => string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-image-'));
  return { dir, path: (name) => join(dir, name), cleanup: () => rm(dir, { recursive: true, force: true }) };
}
