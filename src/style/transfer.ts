/**
 * Feed-forward style transfer (Johnson et al. 2016): one pass of a trained transformation network,
 * for an image, a folder of images or a video, with the controls per-style networks lack —
 * strength, colour preservation — and tiling for images too large to run whole.
 */
import { stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { readImage, writeImage, WRITABLE_IMAGE_EXTENSIONS } from '../image/codec.js';
import { checkMemory, memoryBudget } from '../image/budget.js';
import { listFolderImages } from '../image/folder.js';
import { checkOutputFolder, modelTag, outputExtension, resolveImageOutput } from '../image/output.js';
import { preserveLuminance, matchHistograms, blendImages } from '../image/color.js';
import { reflectPad, reflectPadTo, cropImage } from '../image/pad.js';
import { clampCountingNonFinite, toRgbImage, toInterleaved } from '../image/pixels.js';
import { resizeImage, fitLongerSide } from '../image/resize.js';
import { autoTileSize } from '../image/tiles.js';
import { stylizeTiled } from './tiled.js';
import type { RgbImage } from '../image/types.js';
import { processVideo, probeVideo, type VideoProgress } from '../video/index.js';
import { createTemporalBlend } from '../video/temporal.js';
import { AbortError, FileError, throwIfAborted, messageOf } from '../util/errors.js';
import { refuseOverwritingInputs } from '../util/same-file.js';
import { expectInteger, expectNumber, expectOneOf } from '../util/validate.js';
import type { StyleModel } from './model.js';
import { nonFiniteOutput } from '../weights/model-door.js';
import { META } from '../weights/store.js';
import { isReflectionPadded } from '../nets/transformer.js';

export const COLOR_MODES = ['luminance', 'histogram'] as const;
export type ColorMode = (typeof COLOR_MODES)[number];

/** Images above this many pixels are tiled when tiling is automatic. */
export const AUTO_TILE_PIXELS = 4_000_000;
/**
 * Tile side for automatic tiling: 1 MP tiles keep a 4000x3000 photo under 3 GiB (the session's
 * arena is sized for its largest tile; 2000 px tiles measured over 20 GiB with statistics passes).
 */
export const AUTO_TILE_SIDE = 1024;
/**
 * With the whole image's statistics fixed, tiles differ from one run only near their edges: on a
 * 2000x1500 mosaic of photos (wave, 1024 px tiles) overlap 64 gave 53.1 dB against 128, and 32 gave
 * 39.4 dB. 64 shrinks the tiles' extra pixels on a 4000x3000 photo from 27 % to 14 %.
 */
export const DEFAULT_TILE_OVERLAP = 64;
/**
 * Longer side of the downscaled copy a tiled image's instance-norm statistics are measured on
 * with `fastStats`. Not the default: the networks are not scale invariant (a 9x9 first layer sees
 * sharper edges in a smaller copy), so the statistics drift: at 4000x3000 (wave, tubingen
 * upscaled) 21.2 dB against the exact path at 1024, 24.4 dB at 2048; see bench/large-photo.ts.
 */
export const DEFAULT_STATS_SIZE = 1024;
/**
 * Reflected border added around the image before the network and cropped after: the networks'
 * zero padding paints a frame along the image edges, and the margin moves it out of view. The frame
 * is as wide as the network learnt to make it, not the same on every side: la_muse's reaches ~45 px
 * in from the right edge (TF 'SAME' padding adds its extra zeros on the right and bottom of every
 * stride-2 layer), so 32 px left a 2-3 px yellow band there. With 48 px the edge columns of all
 * six lengstrom models match a run with a 128 px margin as closely as the middle of the image does.
 */
export const DEFAULT_MARGIN = 48;

/**
 * The margin a model runs with when none is asked for: {@link DEFAULT_MARGIN} for zero-padded and
 * imported networks, 0 for pastiche's reflection-padded architectures. Those paint no frame: with
 * wave-rt at 640x480 the corner crops of margin 0 and 48 look the same, while the margin cost twice
 * the network time per frame (a 736x576 input instead of 640x480).
 */
export function defaultMargin(style: Pick<StyleModel, 'metadata'>): number {
  return isReflectionPadded(style.metadata[META.architecture] ?? '') ? 0 : DEFAULT_MARGIN;
}

export interface StylizeOptions {
  /** Resize so the longer side has this many pixels (default: keep the size). */
  readonly size?: number;
  /** Tile side in pixels; 'auto' (default) tiles images above ~4 MP; 0 never tiles. */
  readonly tile?: number | 'auto';
  /** Reflected border in pixels around the image while it runs (default {@link defaultMargin}: 48, or 0 for pastiche's reflection-padded networks). */
  readonly margin?: number;
  /** Overlap between tiles in pixels (default 64): context each tile sees past its seams. */
  readonly tileOverlap?: number;
  /**
   * Tiled images only: take the instance-norm statistics from one run over a copy downscaled to
   * `statsSize`, then run the tiles once (~8x less work than the default, which gathers the exact
   * whole-image statistics over the tiles, one tiled pass per norm), at a cost in fidelity: 21 dB
   * against the exact path on a 4000x3000 photo, visibly different texture. Default false.
   */
  readonly fastStats?: boolean;
  /** With `fastStats`: longer side of the copy the statistics are measured on (default 1024). */
  readonly statsSize?: number;
  /** 0..1: blend of content (0) and stylised output (1); default 1. */
  readonly strength?: number;
  /** Keep the content's colours: 'luminance' (style on Y only) or 'histogram' (match per channel). */
  readonly preserveColors?: ColorMode;
  /**
   * Videos only (images ignore it): 0..1, how much of the previous output frame is kept where the
   * input frame is unchanged, against flicker ({@link createTemporalBlend}); default 0, off.
   */
  readonly temporal?: number;
  /**
   * Memory budget in bytes for one image (default 8 GiB): the estimate for its size after `size`
   * ({@link estimateStylizeMemory}) is checked from the file's header, before decoding.
   */
  readonly maxMemory?: number;
  readonly signal?: AbortSignal;
  /** Called after each network run of a tiled image: the statistics run(s), then each output tile. */
  readonly onTile?: (done: number, total: number) => void;
}

/** A tile side is 0 (never tile) or at least 32 pixels. */
export function checkTile(name: string, tile: number): number {
  expectInteger(name, tile, 0, 65536);
  if (tile > 0 && tile < 32) throw new RangeError(`Expected 0 or an integer of at least 32 for ${name} but received ${tile}`);
  return tile;
}

/** Validates options once, at the boundary. */
export function checkStylizeOptions(options: StylizeOptions): void {
  if (options.size !== undefined) expectInteger('size', options.size, 8, 65536);
  if (options.tile !== undefined && options.tile !== 'auto') checkTile('tile', options.tile);
  if (options.tileOverlap !== undefined) expectInteger('tileOverlap', options.tileOverlap, 0, 4096);
  if (options.margin !== undefined) expectInteger('margin', options.margin, 0, 1024);
  if (options.fastStats !== undefined && typeof options.fastStats !== 'boolean') {
    throw new TypeError(`Expected a boolean for fastStats but received ${String(options.fastStats)}`);
  }
  if (options.statsSize !== undefined) {
    expectInteger('statsSize', options.statsSize, 64, 65536);
    if (!options.fastStats) throw new RangeError(`Expected fastStats with statsSize but received statsSize ${options.statsSize} alone`);
  }
  if (options.strength !== undefined) expectNumber('strength', options.strength, 0, 1);
  if (options.preserveColors !== undefined) expectOneOf('preserveColors', options.preserveColors, COLOR_MODES);
  if (options.temporal !== undefined) expectNumber('temporal', options.temporal, 0, 1);
  memoryBudget(options.maxMemory);
}

// Peak RSS of stylising with la_muse (Johnson et al.'s network, the largest in the store), over the
// loaded program, margin 32: untiled 1024x1024 501 MB, 1448x1448 967 MB (~420 bytes per padded
// pixel); tiled 2000x2000 1581 MB and 3000x2000 2083 MB in 1024 px tiles, 1024x1024 223 MB in
// 256 px tiles — ~245 bytes per pixel of the image plus ~515 per pixel of one tile (the statistics
// passes hold a session each). The constants below round these up.
/** Node, sharp, onnxruntime and a loaded model (measured 165-250 MiB). */
const PROGRAM_BYTES = 256 * 2 ** 20;
/** A run in one piece: every float copy of the image and the network's activations, per padded pixel. */
const WHOLE_BYTES_PER_PIXEL = 440;
/** A tiled run: the whole-image copies (content, margin, tile sums, output, crops) per padded pixel… */
const TILED_IMAGE_BYTES_PER_PIXEL = 250;
/** …and the network's activations and statistics passes, per pixel of the largest tile. */
const TILE_BYTES_PER_PIXEL = 520;

/**
 * About how many bytes stylising a `width` x `height` image (the size it runs at, after `size`)
 * holds at its peak, the program included: what {@link StylizeOptions.maxMemory} is checked
 * against. Tiling caps the network's share at one tile.
 *
 * @example estimateStylizeMemory(4000, 3000) / 2 ** 30; // ~3.6 (GiB, in 1024 px tiles)
 * @throws {TypeError} / {RangeError} for sizes that are not integers >= 1 or invalid options.
 */
export function estimateStylizeMemory(width: number, height: number, options: Pick<StylizeOptions, 'tile' | 'margin'> = {}): number {
  expectInteger('width', width, 1);
  expectInteger('height', height, 1);
  checkStylizeOptions(options);
  const margin = options.margin ?? DEFAULT_MARGIN;
  const paddedWidth = width + 2 * margin;
  const paddedHeight = height + 2 * margin;
  const pixels = paddedWidth * paddedHeight;
  const tile = tileSide(paddedWidth, paddedHeight, options);
  if (tile === null) return PROGRAM_BYTES + WHOLE_BYTES_PER_PIXEL * pixels;
  return PROGRAM_BYTES + TILED_IMAGE_BYTES_PER_PIXEL * pixels + TILE_BYTES_PER_PIXEL * Math.min(paddedWidth, tile) * Math.min(paddedHeight, tile);
}

/** What readImage counts for the network besides decoding (it counts the decoded image itself). */
function stylizePlan(options: StylizeOptions): { bytesFor: (width: number, height: number) => number; advice: string } {
  return {
    bytesFor: (width, height) => estimateStylizeMemory(width, height, options),
    advice: 'use --size or --tile to lower it, or raise --max-memory',
  };
}

/** One network pass: reflection-pad to a multiple of 4 (the network's down/up-sampling) and crop back. */
async function runNetwork(style: StyleModel, image: RgbImage): Promise<RgbImage> {
  const { image: padded, crop } = reflectPadTo(image, 4);
  const out = await style.session.run({ [style.input]: { data: padded.data, dims: [1, 3, padded.height, padded.width] } });
  const result = out[style.output];
  const [n, c, h, w] = result.dims;
  if (n !== 1 || c !== 3 || h !== padded.height || w !== padded.width) {
    throw new Error(`${style.label}: expected an output of [1, 3, ${padded.height}, ${padded.width}] but it produced [${result.dims.join(', ')}]`);
  }
  const bad = clampCountingNonFinite(result.data);
  if (bad > 0) throw nonFiniteOutput(style.label, bad, result.data.length);
  const styled = { data: result.data, width: w, height: h };
  // Sizes that are already a multiple of 4 (640x480) need no crop: a 4 ms copy per frame saved.
  return crop.width === w && crop.height === h ? styled : cropImage(styled, crop);
}

function tileSizeFor(image: RgbImage, options: StylizeOptions): number | null {
  return tileSide(image.width, image.height, options);
}

function tileSide(width: number, height: number, options: Pick<StylizeOptions, 'tile'>): number | null {
  const tile = options.tile ?? 'auto';
  if (tile === 'auto') return autoTileSize(width, height, AUTO_TILE_PIXELS) === null ? null : AUTO_TILE_SIDE;
  if (tile === 0 || (width <= tile && height <= tile)) return null;
  return tile;
}

/** The network applied to the whole image (with its margin), in overlapping tiles when it is large. */
async function stylizeWhole(style: StyleModel, content: RgbImage, options: StylizeOptions): Promise<RgbImage> {
  const margin = options.margin ?? defaultMargin(style);
  if (margin === 0) return stylizeTiledOrWhole(style, content, options);
  const padded = reflectPad(content, { left: margin, top: margin, right: margin, bottom: margin });
  const out = await stylizeTiledOrWhole(style, padded, options);
  return cropImage(out, { left: margin, top: margin, width: content.width, height: content.height });
}

async function stylizeTiledOrWhole(style: StyleModel, image: RgbImage, options: StylizeOptions): Promise<RgbImage> {
  const tile = tileSizeFor(image, options);
  if (tile === null) return runNetwork(style, image);
  const overlap = Math.min(options.tileOverlap ?? DEFAULT_TILE_OVERLAP, Math.floor(tile / 2));
  const statistics = options.fastStats ? { side: options.statsSize ?? DEFAULT_STATS_SIZE } : 'exact';
  // Exact statistics carry every tile's activations from norm to norm in what the budget has left
  // over the tiled run itself, and recompute them where that is not enough.
  const cacheBytes = Math.max(0, memoryBudget(options.maxMemory) - estimateStylizeMemory(image.width, image.height, { tile: options.tile, margin: 0 }));
  return stylizeTiled(style, image, { tile, overlap, statistics, cacheBytes, signal: options.signal, onTile: options.onTile }, (t) => runNetwork(style, t));
}

/**
 * Stylises one image (float RGB 0..255, planar). The content is first resized when `size` is given.
 * @throws RangeError/TypeError for invalid options; Error naming the model if inference fails.
 */
export async function stylizeImage(style: StyleModel, content: RgbImage, options: StylizeOptions = {}): Promise<RgbImage> {
  checkStylizeOptions(options);
  throwIfAborted(options.signal);
  let image = content;
  if (options.size !== undefined) {
    const { width, height } = fitLongerSide(content.width, content.height, options.size);
    image = await resizeImage(content, width, height);
  }
  let out = await stylizeWhole(style, image, options);
  const strength = options.strength ?? 1;
  if (strength < 1) out = blendImages(image, out, strength);
  if (options.preserveColors === 'luminance') out = preserveLuminance(out, image);
  else if (options.preserveColors === 'histogram') out = matchHistograms(out, image);
  return out;
}

/**
 * Stylises an image file into another; alpha is kept for formats that have it. The output goes
 * through the output door ({@link resolveImageOutput}) before any work: an existing folder or a
 * path ending in '/' receives `<input stem>-<model><ext>`, a GIF input gives a PNG. The input is
 * read through the image door: header first, the memory estimate against `maxMemory`, resized
 * while decoding when `size` is given. An existing output is replaced atomically at the end, and
 * only if the run succeeds; folders it needs are made then, and removed again if writing fails.
 *
 * @example const { output } = await stylizeFile(style, 'photo.gif', 'out/', { size: 1024 }); // out/photo-la_muse.png
 * @throws FileError naming the output when it is the input (same file by device and inode: symlinks
 *   and hard links too), has no format pastiche writes, or cannot be written — all before any
 *   work; FileError naming `input` when it cannot be read, is damaged, or needs more memory than
 *   the budget (with the estimate); RangeError/TypeError for invalid options.
 */
export async function stylizeFile(
  style: StyleModel, input: string, output: string | undefined, options: StylizeOptions = {},
): Promise<{ width: number; height: number; output: string }> {
  checkStylizeOptions(options);
  const target = await resolveImageOutput(input, output, modelTag(style.label));
  const size = await stylizeResolved(style, input, target, options);
  return { ...size, output: target };
}

/** {@link stylizeFile} once the output is decided and checked. */
async function stylizeResolved(style: StyleModel, input: string, output: string, options: StylizeOptions): Promise<{ width: number; height: number }> {
  // Resized while decoding, alpha alike, so `size` is done here and not again in stylizeImage.
  const { image, alpha } = await readImage(input, { keepAlpha: true, size: options.size, maxMemory: options.maxMemory, memory: stylizePlan(options) });
  const out = await stylizeImage(style, image, { ...options, size: undefined });
  throwIfAborted(options.signal);
  await writeImage(output, out, { alpha });
  return { width: out.width, height: out.height };
}

export interface FolderProgress {
  readonly done: number;
  readonly total: number;
  readonly file: string;
  readonly error?: string;
}

export interface FolderResult {
  readonly written: { input: string; output: string }[];
  readonly failed: { input: string; error: string }[];
}

/**
 * Stylises every image under `inputDir` (recursively) into `outputDir`, mirroring the tree. Files
 * that cannot be read, and symbolic links (not followed), are skipped and reported in `failed`
 * with the reason, not fatal. `format` ('.png' …) overrides extensions; without it each image
 * keeps its own, except those pastiche cannot write (GIF), which become PNG. Folders are made only
 * for images written, so a run in which every image fails leaves no output folder.
 *
 * @throws FileError, before any image is processed, when `inputDir` has no images, `outputDir`
 *   is a file or cannot be written, an output would be one of the inputs or two inputs would
 *   write the same output (`a.jpg` and `a.png` with `format: '.webp'`).
 * @throws AbortError when `signal` fires; its `kept` lists the images finished before, which stay.
 */
export async function stylizeFolder(
  style: StyleModel, inputDir: string, outputDir: string,
  options: StylizeOptions & { format?: string; onProgress?: (p: FolderProgress) => void } = {},
): Promise<FolderResult> {
  checkStylizeOptions(options);
  if (options.format !== undefined) expectOneOf('format', options.format.toLowerCase(), WRITABLE_IMAGE_EXTENSIONS);
  await checkOutputFolder(outputDir);
  const plan = (await listFolderImages(inputDir)).map((entry) => {
    const rel = relative(inputDir, entry.input);
    const stem = rel.slice(0, rel.length - extname(rel).length);
    return { ...entry, output: join(outputDir, stem + (options.format ?? outputExtension(rel))) };
  });
  // All or nothing: a folder that would write over one of its own images is refused whole.
  await refuseOverwritingInputs(plan.filter((p) => p.skip === undefined));
  const result: FolderResult = { written: [], failed: [] };
  for (const [i, { input, output, skip }] of plan.entries()) {
    const progress = { done: i + 1, total: plan.length, file: input };
    try {
      throwIfAborted(options.signal);
      if (skip !== undefined) throw new FileError(input, skip);
      await stylizeResolved(style, input, output, options);
      result.written.push({ input, output });
      options.onProgress?.(progress);
    } catch (error) {
      if (options.signal?.aborted) throw new AbortError(undefined, result.written.map((w) => w.output));
      result.failed.push({ input, error: messageOf(error) });
      options.onProgress?.({ ...progress, error: messageOf(error) });
    }
  }
  return result;
}

/** Whether a path exists and is a directory. */
export async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/**
 * Stylises a video frame by frame: same frame rate and frame count, audio copied, next frame
 * decoded while the current one runs. Nothing is left at `output` if it fails or is aborted.
 * With `temporal` > 0 each output is blended with the previous one where the input is unchanged.
 * @throws FileError naming `output` when it is `input` (see {@link processVideo}), or naming `input`
 *   when one frame at the size it runs would need more than `maxMemory` — both before any work.
 */
export async function stylizeVideo(
  style: StyleModel, input: string, output: string,
  options: StylizeOptions & { crf?: number; onProgress?: (p: VideoProgress) => void } = {},
): Promise<{ frames: number; fps: string; width: number; height: number; seconds: number }> {
  checkStylizeOptions(options);
  const info = await probeVideo(input);
  const size = options.size !== undefined ? fitLongerSide(info.width, info.height, options.size) : { width: info.width, height: info.height };
  // ffmpeg scales while decoding; one frame at a time is what the budget has to hold.
  checkMemory(input, estimateStylizeMemory(size.width, size.height, options), memoryBudget(options.maxMemory), size.width, size.height, stylizePlan(options).advice);
  const frameOptions = { ...options, size: undefined };
  const temporal = options.temporal ?? 0;
  const blend = temporal > 0 ? createTemporalBlend({ strength: temporal, width: size.width, height: size.height }) : null;
  return processVideo({
    input, output, signal: options.signal, onProgress: options.onProgress, crf: options.crf as never,
    decodeWidth: size.width, decodeHeight: size.height,
    transform: async (frame) => {
      const out = toInterleaved(await stylizeImage(style, toRgbImage(frame, size.width, size.height), frameOptions));
      return blend === null ? out : blend.apply(frame, out);
    },
    outWidth: size.width, outHeight: size.height,
  });
}
