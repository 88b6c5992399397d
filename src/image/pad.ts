/**
 * Padding and cropping. Transformer networks downsample by 4 (two stride-2 convolutions) and
 * upsample back, so an input whose sides are not multiples of 4 comes back a few pixels off;
 * reflection padding (rather than zeros) keeps the borders free of dark seams.
 */
import type { Rect, RgbImage } from './types.js';
import { expectImage } from './pixels.js';
import { expectInteger } from '../util/validate.js';

/** Pixels to add on each side. */
export interface Padding {
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
}

/** What {@link reflectPadTo} returns: the padded image and where the original lies inside it. */
export interface PaddedImage {
  readonly image: RgbImage;
  /** The original image's rectangle in the padded one: `cropImage(result, crop)` undoes the pad. */
  readonly crop: Rect;
}

/**
 * Reflection-pads `image` so both sides become multiples of `multiple`, splitting the padding
 * between the two sides (floor before, ceil after) so the content stays centred — a network's
 * border effects then fall on padding on both sides, not only bottom and right.
 * When no padding is needed the input image itself is returned (not a copy).
 *
 * @example
 * const { image: padded, crop } = reflectPadTo(content, 4);
 * const output = cropImage(await model.run(padded), crop);
 * @throws {TypeError} / {RangeError} unless `multiple` is an integer >= 1.
 */
export function reflectPadTo(image: RgbImage, multiple: number): PaddedImage {
  expectImage('image', image);
  expectInteger('multiple', multiple, 1);
  const padX = (multiple - (image.width % multiple)) % multiple;
  const padY = (multiple - (image.height % multiple)) % multiple;
  const left = Math.floor(padX / 2);
  const top = Math.floor(padY / 2);
  const crop = { left, top, width: image.width, height: image.height };
  if (padX === 0 && padY === 0) return { image, crop };
  return { image: reflectPad(image, { left, top, right: padX - left, bottom: padY - top }), crop };
}

/**
 * Pads `image` by mirroring it about its edge pixels (the edge pixel is not repeated, as in
 * PyTorch's ReflectionPad2d and ONNX Pad 'reflect'). Padding wider than the image mirrors back
 * and forth, so any amount works; a 1-pixel side has nothing to mirror and is replicated.
 *
 * @throws {TypeError} / {RangeError} unless each padding is an integer >= 0.
 */
export function reflectPad(image: RgbImage, padding: Padding): RgbImage {
  expectImage('image', image);
  const { left, top, right, bottom } = padding;
  for (const [name, value] of Object.entries({ left, top, right, bottom })) expectInteger(`padding.${name}`, value, 0);
  const { width, height, data } = image;
  const outWidth = width + left + right;
  const outHeight = height + top + bottom;
  // Source index for every output column and row, computed once: the copy loop is then plain lookups.
  const columns = new Int32Array(outWidth);
  for (let x = 0; x < outWidth; x++) columns[x] = reflectIndex(x - left, width);
  const out = new Float32Array(3 * outWidth * outHeight);
  for (let c = 0; c < 3; c++) {
    const srcPlane = c * width * height;
    const dstPlane = c * outWidth * outHeight;
    for (let y = 0; y < outHeight; y++) {
      const srcRow = srcPlane + reflectIndex(y - top, height) * width;
      const dstRow = dstPlane + y * outWidth;
      out.set(data.subarray(srcRow, srcRow + width), dstRow + left); // the row itself: one memcpy
      for (let x = 0; x < left; x++) out[dstRow + x] = data[srcRow + columns[x]];
      for (let x = left + width; x < outWidth; x++) out[dstRow + x] = data[srcRow + columns[x]];
    }
  }
  return { data: out, width: outWidth, height: outHeight };
}

/** Index into 0..n-1 for position `i`, mirroring about the end pixels as often as needed. */
function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/**
 * Copies the pixels of `rect` out of `image`.
 *
 * @throws {RangeError} when `rect` is empty or reaches outside the image.
 */
export function cropImage(image: RgbImage, rect: Rect): RgbImage {
  expectImage('image', image);
  const { left, top, width, height } = rect;
  expectInteger('rect.left', left, 0);
  expectInteger('rect.top', top, 0);
  expectInteger('rect.width', width, 1);
  expectInteger('rect.height', height, 1);
  if (left + width > image.width || top + height > image.height) {
    throw new RangeError(`Expected a crop inside the ${image.width}x${image.height} image but received ${width}x${height} at (${left}, ${top})`);
  }
  const out = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      const from = c * image.width * image.height + (top + y) * image.width + left;
      out.set(image.data.subarray(from, from + width), c * width * height + y * width);
    }
  }
  return { data: out, width, height };
}
