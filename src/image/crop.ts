/**
 * Square training crops straight from image files: resize and crop happen inside one sharp
 * pipeline, so a 24-megapixel photo is shrunk while it loads (JPEG and WebP decode at 1/2, 1/4 or
 * 1/8 scale) and never exists as a full-size float image.
 */
import sharp from 'sharp';
import type { RgbImage } from './types.js';
import { toRgbImage } from './pixels.js';
import { DEFAULT_MAX_PIXELS, decodeStrictly, imageHeader, type ReadImageOptions } from './codec.js';
import { SIZE_ADVICE, checkMemory, decodeBytes, memoryBudget } from './budget.js';
import { expectInteger } from '../util/validate.js';

/** The largest crop side sharp can produce (its 0x3FFF dimension limit). */
export const MAX_CROP_SIZE = 16383;

/**
 * Decodes an image file (upright, sRGB, alpha flattened onto white), resizes it so its shorter side
 * is `size` (Lanczos-3) and keeps the centre `size` x `size` square.
 *
 * @example
 * const crop = await decodeSquareCrop('photos/train/0001.jpg', 256); // 256x256 RgbImage
 * @throws {TypeError} / {RangeError} unless `size` is an integer in 1..{@link MAX_CROP_SIZE}.
 * @throws {FileError} naming the path when the file is missing, empty, not a supported image,
 * corrupt, truncated or damaged in the middle, over the pixel limit (default
 * {@link DEFAULT_MAX_PIXELS}) or over the memory budget (a decoder that cannot stream holds the
 * full frame: an interlaced 16000x16000 PNG).
 */
export async function decodeSquareCrop(path: string, size: number, options: Pick<ReadImageOptions, 'maxPixels' | 'maxMemory'> = {}): Promise<RgbImage> {
  expectInteger('size', size, 1, MAX_CROP_SIZE);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const budget = memoryBudget(options.maxMemory);
  // The header check words every refusal it can (missing, empty, unsupported, oversized,
  // "starts like a JPEG but is corrupt") exactly as readImage does; only decoding is left here.
  const { meta } = await imageHeader(path, { maxPixels });
  checkMemory(path, decodeBytes(meta, size, size, false), budget, size, size, SIZE_ADVICE);
  const { data, info } = await decodeStrictly(path, meta.format, maxPixels, (failOn) =>
    sharp(path, { failOn, autoOrient: true, limitInputPixels: maxPixels })
      .resize({ width: size, height: size, fit: 'cover', position: 'centre' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb'));
  return toRgbImage(data, info.width, info.height, info.channels);
}
