/**
 * Resampling. libvips' Lanczos-3 (through sharp) rather than a JavaScript bilinear: it is fast,
 * it area-averages when shrinking a lot (bilinear aliases badly past 2x), and it is what the rest
 * of the image path already uses.
 *
 * Pixels travel as 16-bit (value * 257) so that resizing a float image does not first quantise it
 * to 8 bits; libvips' fixed-point kernels still leave errors of up to ~0.2 of a level, far below
 * what the networks or an 8-bit output can see. Float would be the obvious carrier, but with
 * sharp 0.35.5 raw Float32Array input came back as zeros in our tries (with and without
 * raw({ depth: 'float' })), while 16-bit raw input and output round-trip exactly.
 */
import sharp from 'sharp';
import type { RgbImage } from './types.js';
import { checkedPixelCount, expectImage } from './pixels.js';
import { expectInteger } from '../util/validate.js';

const SCALE = 257; // maps 0..255 onto 0..65535 exactly at both ends

/**
 * Resizes `image` to exactly `width` x `height` with Lanczos-3 (aspect ratio is the caller's
 * business: see {@link fitLongerSide}). Output values are clamped to 0..255, because Lanczos rings
 * slightly past the input range at hard edges.
 *
 * @example
 * const { width, height } = fitLongerSide(image.width, image.height, 512);
 * const small = await resizeImage(image, width, height);
 * @throws {TypeError} / {RangeError} for a malformed image or sizes that are not integers >= 1.
 */
export async function resizeImage(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  expectImage('image', image);
  checkedPixelCount(width, height);
  if (width === image.width && height === image.height) {
    return { data: image.data.slice(), width, height };
  }
  const n = image.width * image.height;
  const src = image.data;
  const wide = new Uint16Array(3 * n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    wide[j] = toWide(src[i]);
    wide[j + 1] = toWide(src[i + n]);
    wide[j + 2] = toWide(src[i + 2 * n]);
  }
  const out = await sharp(wide, { raw: { width: image.width, height: image.height, channels: 3 }, limitInputPixels: false })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .toColourspace('rgb16')
    .raw({ depth: 'ushort' })
    .toBuffer();
  const pixels = new Uint16Array(out.buffer, out.byteOffset, out.length / 2);
  const m = width * height;
  const data = new Float32Array(3 * m);
  for (let i = 0, j = 0; i < m; i++, j += 3) {
    data[i] = pixels[j] / SCALE;
    data[i + m] = pixels[j + 1] / SCALE;
    data[i + 2 * m] = pixels[j + 2] / SCALE;
  }
  return { data, width, height };
}

function toWide(value: number): number {
  // Written so that NaN lands on 0, like the 8-bit path.
  const v = Math.round(value * SCALE);
  return v > 65535 ? 65535 : v > 0 ? v : 0;
}

/**
 * The size of a `width` x `height` image scaled so its longer side is `size`, keeping the aspect
 * ratio; each side is rounded and at least 1. It may enlarge: callers that only shrink compare
 * first.
 *
 * @example
 * fitLongerSide(4000, 3000, 1024); // { width: 1024, height: 768 }
 * @throws {TypeError} / {RangeError} unless all three are integers >= 1.
 */
export function fitLongerSide(width: number, height: number, size: number): { width: number; height: number } {
  checkedPixelCount(width, height);
  expectInteger('size', size, 1);
  if (width >= height) {
    return { width: size, height: Math.max(1, Math.round((height * size) / width)) };
  }
  return { width: Math.max(1, Math.round((width * size) / height)), height: size };
}
