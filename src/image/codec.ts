/**
 * Reading and writing image files, through sharp (libvips). This is the only place in pastiche that
 * decodes or encodes image files; everything past it sees {@link RgbImage}s.
 */
import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import type { RgbImage } from './types.js';
import { alphaOf, expectImage, toInterleaved, toRgbImage } from './pixels.js';
import { fitLongerSide } from './resize.js';
import { SIZE_ADVICE, checkMemory, decodeBytes, memoryBudget, type MemoryPlan } from './budget.js';
import { FileError, messageOf } from '../util/errors.js';
import { writeFileSync } from 'node:fs';
import { writeAtomically } from '../util/atomic.js';
import { expectInteger } from '../util/validate.js';

export { toRgbImage, toInterleaved, alphaOf } from './pixels.js';
export { resizeImage, fitLongerSide } from './resize.js';
export { DEFAULT_MAX_MEMORY, type MemoryPlan } from './budget.js';

/** File extensions (lower case, with the dot) that {@link readImage} accepts; for folder walking. */
export const SUPPORTED_IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.avif', '.tif', '.tiff', '.gif'];

/** File extensions that {@link writeImage} can write, and the format each one means. */
const OUTPUT_FORMATS = {
  '.jpg': 'jpeg', '.jpeg': 'jpeg', '.png': 'png', '.webp': 'webp', '.avif': 'avif', '.tif': 'tiff', '.tiff': 'tiff',
} as const;

/** An output format {@link writeImage} can encode. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[keyof typeof OUTPUT_FORMATS];

/** Extensions {@link writeImage} accepts (lower case, with the dot). */
export const WRITABLE_IMAGE_EXTENSIONS: readonly string[] = Object.keys(OUTPUT_FORMATS);

/** sharp's own default pixel limit (0x3FFF squared), so a file sharp would refuse we refuse first, with numbers. */
export const DEFAULT_MAX_PIXELS = 268_402_689;

/** Default quality for the lossy formats: high, because stylised images are all fine texture. */
export const DEFAULT_QUALITY = 92;

// AVIF decodes as 'heif'; JPEG XL, SVG, PDF and friends are left out on purpose (see NOT_SUPPORTED).
const DECODABLE = new Set(['jpeg', 'png', 'webp', 'heif', 'tiff', 'gif']);
const NOT_SUPPORTED = 'not a supported image (JPEG, PNG, WebP, AVIF, TIFF, GIF)';

/** Whether `path`'s extension is one {@link readImage} accepts (case-insensitive). */
export function isSupportedImagePath(path: string): boolean {
  return SUPPORTED_IMAGE_EXTENSIONS.includes(extname(path).toLowerCase());
}

/** Options for {@link readImage}. */
export interface ReadImageOptions {
  /** Refuse images with more pixels than this (default {@link DEFAULT_MAX_PIXELS}). */
  readonly maxPixels?: number;
  /** Return the alpha plane separately, when the file has one (default false: flatten onto white). */
  readonly keepAlpha?: boolean;
  /**
   * Resize so the longer side has this many pixels (Lanczos-3), while decoding: JPEG and WebP
   * decode at 1/2 to 1/8 scale and streamable files are never held at full size (default: keep).
   */
  readonly size?: number;
  /**
   * Shrink (while decoding, as `size` does) so the longer side is at most this many pixels; never
   * enlarges. For images the caller will bring to this size or smaller anyway (style images, masks).
   */
  readonly maxSide?: number;
  /** Memory budget in bytes, checked from the header before decoding (default {@link DEFAULT_MAX_MEMORY}, 8 GiB). */
  readonly maxMemory?: number;
  /** What the caller will hold besides the image (a network's activations), counted against the budget. */
  readonly memory?: MemoryPlan;
}

/** What {@link readImage} returns. */
export interface DecodedImage {
  readonly image: RgbImage;
  /** Alpha, 0..255, one value per pixel; only when asked for and the file has it. */
  readonly alpha?: Float32Array;
  /** The decoder sharp used: 'jpeg', 'png', 'webp', 'heif' (AVIF), 'tiff' or 'gif'. */
  readonly format: string;
}

/**
 * Decodes an image file to sRGB, upright (the EXIF orientation applied), 3 channels.
 * Without `keepAlpha`, transparent images are flattened onto white: the colours under fully
 * transparent pixels are arbitrary (often black), and stylising them would paint a background
 * nobody saw. The first frame of an animated GIF/WebP is read.
 *
 * The header is read first: the pixel count and the memory the decode would hold (plus the
 * caller's `memory` plan) are checked against their limits before any pixel is decoded. A file
 * damaged in the middle fails rather than decoding to a half-grey picture.
 *
 * @example
 * const { image } = await readImage('content.jpg', { maxPixels: 50_000_000, size: 1024 });
 * @throws {FileError} naming the path when the file is missing, empty, not a supported image,
 * corrupt or truncated, over the pixel limit or over the memory budget (with the estimate).
 * @throws {TypeError} / {RangeError} for a `size`, `maxPixels` or `maxMemory` that is not a positive number.
 */
export async function readImage(path: string, options: ReadImageOptions = {}): Promise<DecodedImage> {
  const maxPixels = maxPixelsOf(options);
  const budget = memoryBudget(options.maxMemory);
  if (options.size !== undefined) expectInteger('size', options.size, 1);
  if (options.maxSide !== undefined) expectInteger('maxSide', options.maxSide, 1);
  const { meta, sharpOptions } = await inspect(path, maxPixels);
  const keepAlpha = options.keepAlpha === true && meta.hasAlpha;
  const { width, height } = decodedSize(meta.autoOrient, options);
  const needed = decodeBytes(meta, width, height, keepAlpha) + (options.memory?.bytesFor(width, height) ?? 0);
  checkMemory(path, needed, budget, width, height, options.memory?.advice ?? SIZE_ADVICE);
  const { data, info } = await decodeStrictly(path, meta.format, maxPixels, (failOn) => {
    let pipeline = sharp(path, { ...sharpOptions, failOn });
    if (meta.hasAlpha && !keepAlpha) pipeline = pipeline.flatten({ background: '#ffffff' });
    // In the decoding pipeline, so libvips shrinks while it reads (never a full-size float image).
    if (width !== meta.autoOrient.width || height !== meta.autoOrient.height) pipeline = pipeline.resize({ width, height, fit: 'fill', kernel: 'lanczos3' });
    return pipeline.toColourspace('srgb');
  });
  const image = toRgbImage(data, info.width, info.height, info.channels);
  const withAlpha = keepAlpha && (info.channels === 2 || info.channels === 4);
  return withAlpha
    ? { image, alpha: alphaOf(data, info.width, info.height, info.channels), format: meta.format }
    : { image, format: meta.format };
}

/** The size readImage decodes to: `size` on the longer side, else at most `maxSide`, else the file's own. */
function decodedSize(own: { width: number; height: number }, options: ReadImageOptions): { width: number; height: number } {
  if (options.size !== undefined) return fitLongerSide(own.width, own.height, options.size);
  if (options.maxSide !== undefined && Math.max(own.width, own.height) > options.maxSide) return fitLongerSide(own.width, own.height, options.maxSide);
  return own;
}

/**
 * The size of an image file as {@link readImage} would return it (after EXIF orientation),
 * from its header only. It does not decode pixels, so it cannot notice a truncated file.
 *
 * @throws {FileError} for the same problems as {@link readImage}, truncation aside.
 */
export async function imageSize(path: string, options: Pick<ReadImageOptions, 'maxPixels'> = {}): Promise<{ width: number; height: number }> {
  const { width, height } = await imageHeader(path, options);
  return { width, height };
}

/**
 * {@link imageSize} with the header behind it (sharp's metadata), for decoders outside this file
 * (training crops) that check memory and decode through {@link decodeStrictly} like readImage.
 */
export async function imageHeader(path: string, options: Pick<ReadImageOptions, 'maxPixels'> = {}): Promise<{ width: number; height: number; meta: Metadata }> {
  const { meta } = await inspect(path, maxPixelsOf(options));
  return { width: meta.autoOrient.width, height: meta.autoOrient.height, meta };
}

/**
 * Runs a decoding pipeline as strictly as each format allows. JPEG fails on libjpeg's warnings:
 * a file damaged in the middle only warns ("Corrupt JPEG data: premature end of data segment") and
 * would otherwise decode as a half-grey picture; the one warning forgiven is stray bytes before a
 * marker, a harmless quirk of some cameras (the decode is then retried at the error level). Other
 * formats fail on errors: their decoders' warnings include harmless ones (PNG colour profiles).
 *
 * @throws {FileError} naming the path, worded as readImage words it.
 */
export async function decodeStrictly(
  path: string, format: string, maxPixels: number, pipeline: (failOn: 'warning' | 'error') => Sharp,
): Promise<{ data: Buffer; info: OutputInfo }> {
  const run = (failOn: 'warning' | 'error') => pipeline(failOn).raw().toBuffer({ resolveWithObject: true });
  try {
    try {
      return await run(format === 'jpeg' ? 'warning' : 'error');
    } catch (error) {
      if (format === 'jpeg' && /extraneous bytes before marker/i.test(messageOf(error))) return await run('error');
      throw error;
    }
  } catch (error) {
    throw explain(path, error, maxPixels);
  }
}

/** Options for {@link writeImage}. */
export interface WriteImageOptions {
  /** Alpha plane (0..255, W*H values) to write where the format has alpha; JPEG drops it. */
  readonly alpha?: Float32Array;
  /** 1..100 for JPEG, WebP and AVIF (default {@link DEFAULT_QUALITY}); PNG and TIFF are lossless. */
  readonly quality?: number;
}

/**
 * Why `path` cannot be written as an image, from its extension (case-insensitive), or undefined
 * when it can: 'no extension to choose the format by (expected one of .jpg, …)' or
 * "pastiche cannot write '.gif' files (expected one of .jpg, …)".
 */
export function outputFormatProblem(path: string): string | undefined {
  const ext = extname(path).toLowerCase();
  if (ext in OUTPUT_FORMATS) return undefined;
  const expected = `(expected one of ${WRITABLE_IMAGE_EXTENSIONS.join(', ')})`;
  return ext === '' ? `no extension to choose the format by ${expected}` : `pastiche cannot write '${ext}' files ${expected}`;
}

/**
 * The format {@link writeImage} would use for `path`, from its extension (case-insensitive).
 * @throws {RangeError} naming the extension and the supported ones.
 */
export function outputFormatFor(path: string): OutputFormat {
  const problem = outputFormatProblem(path);
  if (problem !== undefined) throw new RangeError(`Cannot write ${path}: ${problem}`);
  return OUTPUT_FORMATS[extname(path).toLowerCase() as keyof typeof OUTPUT_FORMATS];
}

/**
 * Encodes `image` (rounded and clamped to 0..255) into the format its extension names and
 * writes it atomically: a temp file beside `path`, renamed on success, removed on failure, so
 * nothing half written is ever left at `path`. JPEG uses 4:4:4 chroma, because subsampling
 * smears the fine colour detail that style transfer produces.
 *
 * @example
 * await writeImage('out/stylised.jpg', image, { quality: 95 });
 * @throws {RangeError} for an unknown extension, a malformed image, wrong alpha length or quality.
 * @throws {FileError} naming the path when the folder cannot be written or encoding fails.
 */
export async function writeImage(path: string, image: RgbImage, options: WriteImageOptions = {}): Promise<void> {
  const format = outputFormatFor(path);
  expectImage('image', image);
  const quality = options.quality === undefined ? DEFAULT_QUALITY : expectInteger('quality', options.quality, 1, 100);
  const alpha = format === 'jpeg' ? undefined : options.alpha;
  if (options.alpha !== undefined && options.alpha.length !== image.width * image.height) {
    throw new RangeError(`Expected ${image.width * image.height} alpha values for a ${image.width}x${image.height} image but received ${options.alpha.length}`);
  }
  const pixels = toInterleaved(image, alpha);
  const raw = { width: image.width, height: image.height, channels: alpha === undefined ? 3 : 4 } as const;
  let encoded: Buffer;
  try {
    encoded = await encoder(sharp(pixels, { raw }), format, quality).toBuffer();
  } catch (error) {
    throw new FileError(path, `cannot write ${format} image (${firstLine(error)})`, { cause: error });
  }
  // The file is created synchronously, on this thread: a second Ctrl-C or SIGTERM, whose handler
  // removes the temporary files being written, can never run while a worker thread creates one.
  await writeAtomically(path, async (temp) => writeFileSync(temp, encoded));
}

function encoder(pipeline: Sharp, format: OutputFormat, quality: number): Sharp {
  switch (format) {
    case 'jpeg': return pipeline.jpeg({ quality, chromaSubsampling: '4:4:4' });
    case 'png': return pipeline.png();
    // WebP lossy is always 4:2:0; smart subsampling keeps colour edges sharper.
    case 'webp': return pipeline.webp({ quality, smartSubsample: true });
    case 'avif': return pipeline.avif({ quality, chromaSubsampling: '4:4:4' });
    // sharp's TIFF default is JPEG compression; a TIFF is usually asked for to be lossless.
    case 'tiff': return pipeline.tiff({ compression: 'deflate', predictor: 'horizontal' });
  }
}

function maxPixelsOf(options: Pick<ReadImageOptions, 'maxPixels'>): number {
  return options.maxPixels === undefined ? DEFAULT_MAX_PIXELS : expectInteger('maxPixels', options.maxPixels, 1);
}

/**
 * Everything that can be checked before decoding: the file is there and non-empty, sharp knows
 * its format, it is one we accept, and it is within the pixel limit.
 */
async function inspect(path: string, maxPixels: number): Promise<{ meta: Metadata; sharpOptions: SharpOptions }> {
  await checkFile(path);
  // The header only; decodeStrictly chooses how strictly the pixels are decoded.
  const sharpOptions: SharpOptions = { failOn: 'truncated', autoOrient: true, limitInputPixels: maxPixels };
  let meta: Metadata;
  try {
    // No limit here, so that an oversized file is reported below with its size.
    meta = await sharp(path, { ...sharpOptions, limitInputPixels: false }).metadata();
  } catch (error) {
    const explained = explain(path, error, maxPixels);
    // libvips calls a file it cannot identify "unsupported", but a JPEG/PNG/TIFF... signature
    // followed by garbage (or a TIFF cut before its directory) is a damaged file, not a wrong one.
    const signature = explained.message.endsWith(NOT_SUPPORTED) ? await sniffFormat(path) : undefined;
    if (signature === AUDIO) throw new FileError(path, 'is an audio file (MP4/M4A audio), not an image or video pastiche can read', { cause: error });
    if (signature !== undefined) {
      throw new FileError(path, `cannot decode: the file starts like ${/^[AEIOU]/.test(signature) ? 'an' : 'a'} ${signature} but is corrupt or truncated`, { cause: error });
    }
    throw explained;
  }
  if (!DECODABLE.has(meta.format)) throw new FileError(path, `${NOT_SUPPORTED}; found ${meta.format}`);
  if (meta.format === 'heif' && meta.compression === 'hevc') {
    throw new FileError(path, `${NOT_SUPPORTED}; found HEIC (HEVC), which this build cannot decode`);
  }
  const pixels = meta.width * meta.height;
  if (pixels > maxPixels) {
    throw new FileError(path, `image is ${meta.width}x${meta.height} = ${pixels} pixels, over the limit of ${maxPixels} pixels`);
  }
  return { meta, sharpOptions };
}

async function checkFile(path: string): Promise<void> {
  let size: number;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new FileError(path, 'is a folder, not an image file');
    if (!info.isFile()) throw new FileError(path, 'not a regular file');
    size = info.size;
  } catch (error) {
    if (error instanceof FileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FileError(path, 'file not found', { cause: error });
    throw new FileError(path, `cannot read file (${messageOf(error)})`, { cause: error });
  }
  if (size === 0) throw new FileError(path, 'file is empty');
}

/** What {@link sniffFormat} answers for an ISO media file whose brand says audio only. */
const AUDIO = 'audio';
/** ISO base media brands (the 4 bytes after 'ftyp') of HEIF/AVIF images and of audio-only files. */
const HEIF_BRANDS = new Set(['avif', 'avis', 'heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);
const AUDIO_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ', 'F4A ', 'F4B ']);

/**
 * The format a file's first bytes announce, if it is one we read, or {@link AUDIO} for an audio-only
 * MP4 (.m4a): 'ftyp' alone also starts every MP4 and QuickTime file, so the brand decides.
 */
async function sniffFormat(path: string): Promise<string | undefined> {
  const head = Buffer.alloc(12);
  try {
    const file = await open(path, 'r');
    try { await file.read(head, 0, 12, 0); } finally { await file.close(); }
  } catch {
    return undefined;
  }
  const ascii = (from: number, to: number) => head.toString('latin1', from, to);
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'JPEG';
  if (ascii(0, 8) === '\x89PNG\r\n\x1a\n') return 'PNG';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'WebP';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'TIFF';
  if (ascii(0, 4) === 'GIF8') return 'GIF';
  if (ascii(4, 8) === 'ftyp' && HEIF_BRANDS.has(ascii(8, 12))) return 'AVIF/HEIF';
  if (ascii(4, 8) === 'ftyp' && AUDIO_BRANDS.has(ascii(8, 12))) return AUDIO;
  return undefined;
}

/** Turns a sharp/libvips error into a one-line FileError about `path`. */
function explain(path: string, error: unknown, maxPixels: number): FileError {
  const message = messageOf(error);
  if (/unsupported image format/i.test(message)) return new FileError(path, NOT_SUPPORTED, { cause: error });
  if (/input file is missing/i.test(message)) return new FileError(path, 'file not found', { cause: error });
  if (/pixel limit/i.test(message)) return new FileError(path, `image is over the limit of ${maxPixels} pixels`, { cause: error });
  return new FileError(path, `cannot decode: the file is corrupt or truncated (${firstLine(error)})`, { cause: error });
}

function firstLine(error: unknown): string {
  return messageOf(error).split('\n').map((line) => line.trim()).find((line) => line !== '') ?? 'unknown error';
}
