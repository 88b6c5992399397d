/**
 * Photo-like images made from a seed, for work that needs "some photos" on a machine with none:
 * calibrating an int8 model's activation ranges (`pastiche models quantize` without
 * `--calibration`). Each has what a network's activations respond to in real photos: a lit
 * gradient background (sky, ground), soft-edged shapes of saturated and muted colours with hard
 * and blurred edges, fine texture (foliage, fabric) and sensor noise; values span 0..255.
 */
import { seededStream } from '../util/random.js';
import type { RgbImage } from './types.js';

/** A stream per image, so image i is the same however many are asked for. */
const SALT = 0x5a17;

/**
 * `count` photo-like RGB images of `width` x `height` from `seed`.
 * @example const photos = syntheticPhotos(6, 320, 240);
 */
export function syntheticPhotos(count: number, width: number, height: number, seed = 1): RgbImage[] {
  return Array.from({ length: count }, (_, i) => syntheticPhoto(width, height, seed * 1009 + i));
}

function syntheticPhoto(width: number, height: number, seed: number): RgbImage {
  const { uniform, gaussian } = seededStream(seed, SALT);
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  const colour = (): number[] => {
    // Mix a saturated hue with grey: photos hold far more muted colours than pure ones.
    const hue = uniform() * 2 * Math.PI;
    const saturation = uniform() ** 2;
    const value = 40 + 200 * uniform();
    return [0, 2, 4].map((k) => value * (1 - saturation * (0.5 - 0.5 * Math.cos(hue - (k * Math.PI) / 3))));
  };
  // Background: a vertical gradient from a top colour to a bottom one, broken at a horizon.
  const [top, bottom, ground] = [colour(), colour(), colour()];
  const horizon = height * (0.4 + 0.3 * uniform());
  for (let y = 0; y < height; y++) {
    const t = y / height;
    const above = y < horizon;
    for (let c = 0; c < 3; c++) {
      const v = above ? top[c] + (bottom[c] - top[c]) * t : ground[c] * (0.7 + 0.3 * t);
      data.fill(v, c * plane + y * width, c * plane + (y + 1) * width);
    }
  }
  // Shapes: ellipses and rectangles with edges from sharp (1 px) to soft (a tenth of the image).
  const shapes = 4 + Math.floor(uniform() * 6);
  for (let s = 0; s < shapes; s++) {
    const fill = colour();
    const [cx, cy] = [uniform() * width, uniform() * height];
    const [rx, ry] = [(0.05 + 0.3 * uniform()) * width, (0.05 + 0.3 * uniform()) * height];
    const soft = 1 + uniform() ** 3 * 0.1 * Math.max(width, height);
    const round = uniform() < 0.5;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const dx = (x - cx) / rx;
        const dy = (y - cy) / ry;
        // Signed distance to the edge, in pixels (approximately), negative inside.
        const d = (round ? Math.hypot(dx, dy) - 1 : Math.max(Math.abs(dx), Math.abs(dy)) - 1) * Math.min(rx, ry);
        const a = 1 / (1 + Math.exp(d / soft * 4));
        if (a < 1e-3) continue;
        const i = y * width + x;
        for (let c = 0; c < 3; c++) data[c * plane + i] += a * (fill[c] - data[c * plane + i]);
      }
    }
  }
  // Texture over part of the image (fine sinusoids at random angles), then sensor noise.
  const waves = Array.from({ length: 3 }, () => ({ f: 0.2 + 1.2 * uniform(), a: uniform() * Math.PI, amp: 6 + 20 * uniform() }));
  const [tx, ty, tr] = [uniform() * width, uniform() * height, (0.2 + 0.4 * uniform()) * Math.max(width, height)];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const weight = Math.max(0, 1 - Math.hypot(x - tx, y - ty) / tr);
      let t = 0;
      for (const w of waves) t += w.amp * Math.sin(w.f * (x * Math.cos(w.a) + y * Math.sin(w.a)));
      const noise = 3 * gaussian();
      for (let c = 0; c < 3; c++) {
        const v = data[c * plane + i] + weight * t + noise;
        data[c * plane + i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { data, width, height };
}
