/**
 * The memory half of the image door: what reading an image (and the caller's work on it) will
 * hold, estimated from the header alone, and the refusal when that is over the budget. sharp's
 * pixel limit counts pixels at 1 byte per channel; pastiche holds float32 planes, a network's
 * activations and a decoder's full frame where it cannot stream, so a 31 kB PNG under the pixel
 * limit could still ask for gigabytes. The estimate is checked before any pixel is decoded.
 */
import type { Metadata } from 'sharp';
import { FileError } from '../util/errors.js';
import { expectNumber } from '../util/validate.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/**
 * Default memory budget for reading and stylising one image: 8 GiB, which a 24-megapixel camera
 * photo needs most of (~6.4 GiB estimated, in tiles); a 31 kB 16000x16000 PNG asks for ~60.
 */
export const DEFAULT_MAX_MEMORY = 8 * GiB;

/** Advice for a refusal when only the size can change. */
export const SIZE_ADVICE = 'use --size to shrink it, or raise --max-memory';

/** What a caller will hold besides the decoded image; {@link checkMemory} adds it to the decode's share. */
export interface MemoryPlan {
  /** Bytes for an image of `width` x `height` (as decoded, after any resize). */
  bytesFor(width: number, height: number): number;
  /** The end of a refusal's message: what the user can change (e.g. 'use --size or --tile …'). */
  readonly advice: string;
}

/** `maxMemory` as given, checked (bytes, at least 1 KiB so a unit mix-up is caught), or the default. */
export function memoryBudget(maxMemory: number | undefined, name = 'maxMemory'): number {
  return maxMemory === undefined ? DEFAULT_MAX_MEMORY : expectNumber(name, maxMemory, 1024);
}

const SAMPLE_BYTES: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, double: 8, complex: 8, dpcomplex: 16 };

/**
 * Whether libvips decodes this file line by line (so shrinking on load never holds it at full
 * size): baseline JPEG, non-interlaced PNG and TIFF, upright. Interlaced PNG, progressive JPEG (its
 * coefficients), GIF and WebP frames, HEIF/AVIF and anything to be rotated are decoded whole.
 */
function streams(meta: Metadata): boolean {
  if ((meta.orientation ?? 1) > 1) return false;
  if (meta.format === 'tiff') return true;
  return (meta.format === 'jpeg' || meta.format === 'png') && meta.isProgressive !== true;
}

/**
 * Bytes that decoding `meta`'s file to a `width` x `height` image holds at its peak: the decoder's
 * full frame where it cannot stream, sharp's 8-bit output, the float32 planes (12 bytes a pixel)
 * and the alpha plane when kept.
 */
export function decodeBytes(meta: Metadata, width: number, height: number, keepAlpha: boolean): number {
  const pixels = width * height;
  const alpha = keepAlpha && meta.hasAlpha;
  const held = pixels * ((alpha ? 4 : 3) + 12 + (alpha ? 4 : 0));
  if (streams(meta)) return held;
  // GIF and WebP frames are rendered as RGBA; HEIF is decoded to YUV and converted, two copies.
  const bands = meta.format === 'gif' || meta.format === 'webp' ? 4 : meta.channels ?? 4;
  const sample = SAMPLE_BYTES[meta.depth ?? 'uchar'] ?? 4;
  const frame = meta.width * meta.height * bands * sample * (meta.format === 'heif' ? 2 : 1);
  return held + frame;
}

/** Bytes in words: '1.5 GiB', '12 GiB', '300 MiB'. */
export function formatBytes(bytes: number): string {
  if (bytes < GiB) return `${Math.max(1, Math.round(bytes / MiB))} MiB`;
  const gib = bytes / GiB;
  return gib >= 10 ? `${Math.round(gib)} GiB` : `${Number(gib.toFixed(1))} GiB`;
}

/**
 * Refuses, naming the file, when `needed` bytes are over `budget`.
 * @throws {FileError} 'needs about X GiB for WxH pixels, over the memory budget of Y GiB; <advice>'.
 */
export function checkMemory(path: string, needed: number, budget: number, width: number, height: number, advice: string): void {
  if (needed <= budget) return;
  throw new FileError(path, `needs about ${formatBytes(needed)} for ${width}x${height} pixels, over the memory budget of ${formatBytes(budget)}; ${advice}`);
}
