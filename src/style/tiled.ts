/**
 * Tiled inference for images too large to run whole. Tiles overlap and are blended with feathered
 * weights; when the network normalises (instance norm), every tile is normalised with the
 * statistics of the whole image, gathered over the tiles norm by norm, so the result matches an
 * untiled run instead of drifting in colour from tile to tile.
 */
import { clampToPixelRange } from '../image/pixels.js';
import { withModel, type Model } from '../runtime/index.js';
import { cropImage, reflectPadTo } from '../image/pad.js';
import { planTiles, TileBlender } from '../image/tiles.js';
import type { Rect, RgbImage } from '../image/types.js';
import { throwIfAborted } from '../util/errors.js';
import { withExternalNormStats, type NormStatsModel } from '../weights/norm-stats.js';
import type { StyleModel } from './model.js';

// Sessions for the statistics passes are made per pass and released (withModel): each holds an
// arena sized for its largest tile, and seventeen alive at once would hold gigabytes.
const rewrites = new WeakMap<StyleModel, NormStatsModel | null>();

/** The model rewritten for external statistics (null without instance norms), made once per model. */
function rewriteFor(style: StyleModel): NormStatsModel | null {
  if (!rewrites.has(style)) rewrites.set(style, withExternalNormStats(style.bytes, style.label));
  return rewrites.get(style)!;
}

/** Splits [0, length) among tiles: each owns up to the middle of its overlaps. */
function ownedSpans(starts: readonly [number, number][], length: number): [number, number][] {
  return starts.map(([start, size], i) => {
    const from = i === 0 ? 0 : Math.round((start + starts[i - 1][0] + starts[i - 1][1]) / 2);
    const to = i === starts.length - 1 ? length : Math.round((starts[i + 1][0] + start + size) / 2);
    return [from, to];
  });
}

function ownedRects(rects: readonly Rect[], width: number, height: number): Rect[] {
  const columns = [...new Map(rects.map((r) => [r.left, [r.left, r.width] as [number, number]])).values()].sort((a, b) => a[0] - b[0]);
  const rows = [...new Map(rects.map((r) => [r.top, [r.top, r.height] as [number, number]])).values()].sort((a, b) => a[0] - b[0]);
  const xs = new Map(columns.map(([start], i) => [start, ownedSpans(columns, width)[i]]));
  const ys = new Map(rows.map(([start], i) => [start, ownedSpans(rows, height)[i]]));
  return rects.map((r) => {
    const [x0, x1] = xs.get(r.left)!;
    const [y0, y1] = ys.get(r.top)!;
    return { left: x0, top: y0, width: x1 - x0, height: y1 - y0 };
  });
}

/** Width in pixels of the band over which neighbouring tiles are cross-faded. */
const BLEND_BAND = 16;

/** `rect` grown by `by` pixels on each side, within `bounds`. */
function expand(rect: Rect, by: number, bounds: Rect): Rect {
  const left = Math.max(bounds.left, Math.floor(rect.left - by));
  const top = Math.max(bounds.top, Math.floor(rect.top - by));
  const right = Math.min(bounds.left + bounds.width, Math.ceil(rect.left + rect.width + by));
  const bottom = Math.min(bounds.top + bounds.height, Math.ceil(rect.top + rect.height + by));
  return { left, top, width: right - left, height: bottom - top };
}

/** Per-channel mean and (biased) variance accumulated over regions of activations [1, C, h, w]. */
class Moments {
  private sum: Float64Array | null = null;
  private squares: Float64Array | null = null;
  private count = 0;

  /** Adds rows [y0, y1) × columns [x0, x1) of each of `blocks` row blocks stacked along H. */
  add({ data, dims }: { data: Float32Array; dims: readonly number[] }, x0: number, x1: number, y0: number, y1: number, blocks = 1): void {
    const [, channels, h, w] = dims;
    const blockHeight = h / blocks;
    this.sum ??= new Float64Array(channels);
    this.squares ??= new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      let s = 0;
      let q = 0;
      for (let b = 0; b < blocks; b++) {
        for (let y = y0; y < y1; y++) {
          const row = (c * h + b * blockHeight + y) * w;
          for (let x = x0; x < x1; x++) {
            const v = data[row + x];
            s += v;
            q += v * v;
          }
        }
      }
      this.sum[c] += s;
      this.squares[c] += q;
    }
    this.count += blocks * (y1 - y0) * (x1 - x0);
  }

  result(): { mean: Float32Array; variance: Float32Array } {
    const sum = this.sum!;
    const mean = sum.map((s) => s / this.count);
    const variance = this.squares!.map((q, c) => Math.max(q / this.count - mean[c] * mean[c], 0));
    return { mean: Float32Array.from(mean), variance: Float32Array.from(variance) };
  }
}

export interface TiledOptions {
  readonly tile: number;
  readonly overlap: number;
  readonly signal?: AbortSignal;
  readonly onTile?: (done: number, total: number) => void;
}

/** One tile through a model: reflection-padded to a multiple of 4, cropped back afterwards. */
async function runTile(model: Model, style: StyleModel, tile: RgbImage, extra: Record<string, { data: Float32Array; dims: number[] }>, fetch: string) {
  const { image: padded, crop } = reflectPadTo(tile, 4);
  const out = await model.run({ ...extra, [style.input]: { data: padded.data, dims: [1, 3, padded.height, padded.width] } }, [fetch]);
  return { result: out[fetch], padded, crop };
}

/**
 * Runs `style` over `image` in overlapping tiles. `runWhole` handles a model without instance
 * norm (tiles need nothing shared then).
 */
export async function stylizeTiled(
  style: StyleModel, content: RgbImage, options: TiledOptions,
  runWhole: (tile: RgbImage) => Promise<RgbImage>,
): Promise<RgbImage> {
  // Pad as an untiled run would, so tiles on multiples of 4 see the same pixel phase.
  const { image, crop: unpad } = reflectPadTo(content, 4);
  const rects = planTiles(image.width, image.height, { tile: options.tile, overlap: options.overlap, multiple: 4 });
  const owned = ownedRects(rects, image.width, image.height);
  // Near its edges a tile sees zero padding where the whole image has neighbours, and the
  // network's receptive field is wide: blend only across a narrow band around the middle of each
  // overlap, where both tiles are furthest from their edges.
  const feather = Math.min(BLEND_BAND, options.overlap);
  const blender = new TileBlender(image.width, image.height, { feather });
  const models = rewriteFor(style);
  const passes = (models?.norms.length ?? 0) + 1;
  const total = rects.length * passes;
  let done = 0;
  const tick = (): void => {
    done++;
    options.onTile?.(done, total);
  };

  const stats: Record<string, { data: Float32Array; dims: number[] }> = {};
  if (models) {
    for (const [k, norm] of models.norms.entries()) {
      const { mean, variance } = await withModel(models.prefix(k), style.runtime, `${style.label} (statistics ${k + 1})`, async (prefix) => {
        const moments = new Moments();
        for (const [t, rect] of rects.entries()) {
          throwIfAborted(options.signal);
          const { result, padded, crop } = await runTile(prefix, style, cropImage(image, rect), stats, norm.inputOutput);
          // The tile's own region, in this activation's resolution (1, 1/2 or 1/4 of the tile). An
          // activation whose pixel phases are stacked along H (see graph/peephole.ts) repeats the
          // region once per phase block.
          const [, , h, w] = result.dims;
          const scaleX = padded.width / w;
          const blocks = Math.max(1, Math.round((h * scaleX) / padded.height));
          const scaleY = padded.height / (h / blocks);
          const x = (v: number): number => Math.floor((v - rect.left + crop.left) / scaleX);
          const y = (v: number): number => Math.floor((v - rect.top + crop.top) / scaleY);
          const own = owned[t];
          moments.add(result, x(own.left), x(own.left + own.width), y(own.top), y(own.top + own.height), blocks);
          tick();
        }
        return moments.result();
      });
      stats[norm.meanInput] = { data: mean, dims: [1, mean.length, 1, 1] };
      stats[norm.varianceInput] = { data: variance, dims: [1, mean.length, 1, 1] };
    }
  }

  const render = async (runOne: (tile: RgbImage) => Promise<RgbImage>): Promise<void> => {
    for (const [t, rect] of rects.entries()) {
      throwIfAborted(options.signal);
      const out = await runOne(cropImage(image, rect));
      const keep = expand(owned[t], feather / 2, rect);
      blender.add(cropImage(out, { left: keep.left - rect.left, top: keep.top - rect.top, width: keep.width, height: keep.height }), keep);
      tick();
    }
  };
  if (!models) {
    await render(runWhole);
  } else {
    await withModel(models.bytes, style.runtime, `${style.label} (tiled)`, (full) => render(async (tile) => {
      const { result, padded, crop } = await runTile(full, style, tile, stats, style.output);
      return cropImage({ data: clampToPixelRange(result.data), width: padded.width, height: padded.height }, crop);
    }));
  }
  return cropImage(blender.result(), unpad);
}
