/**
 * Square training crops straight from image files: resize and crop happen inside one sharp
 * pipeline, so a 24-megapixel photo is shrunk while it loads (JPEG and WebP decode at 1/2, 1/4 or
 * 1/8 scale) and never exists as a full-size float image.
 */
import sharp, { type OutputInfo } from 'sharp';
import type { RgbImage } from './types.js';
import { toRgbImage } from './pixels.js';
import { DEFAULT_MAX_PIXELS, imageSize, type ReadImageOptions } from './codec.js';
import { FileError, messageOf } from '../util/errors.js';
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
 * corrupt or truncated, or over the pixel limit (default {@link DEFAULT_MAX_PIXELS}).
 */
export async function decodeSquareCrop(path: string, size: number, options: Pick<ReadImageOptions, 'maxPixels'> = {}): Promise<RgbImage> {
  expectInteger('size', size, 1, MAX_CROP_SIZE);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  // The header check words every refusal it can (missing, empty, unsupported, oversized,
  // "starts like a JPEG but is corrupt") exactly as readImage does; only decoding is left here.
  await imageSize(path, { maxPixels });
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(path, { failOn: 'truncated', autoOrient: true, limitInputPixels: maxPixels })
      .resize({ width: size, height: size, fit: 'cover', position: 'centre' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new FileError(path, decodeProblem(error, maxPixels), { cause: error });
  }
  const { data, info } = decoded;
  return toRgbImage(data, info.width, info.height, info.channels);
}

function decodeProblem(error: unknown, maxPixels: number): string {
  const message = messageOf(error);
  // The file can change between the header check and the decode (a sync tool rewriting it).
  if (/input file is missing/i.test(message)) return 'file not found';
  if (/pixel limit/i.test(message)) return `image is over the limit of ${maxPixels} pixels`;
  const first = message.split('\n').map((line) => line.trim()).find((line) => line !== '') ?? 'unknown error';
  return `cannot decode: the file is corrupt or truncated (${first})`;
}
