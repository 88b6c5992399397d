/**
 * Tiled inference for images too large to run whole. Tiles overlap and are blended with feathered
 * weights; when the network normalises (instance norm), every tile is normalised with statistics
 * of the whole image rather than its own, so tiles do not drift in colour from one another. Those
 * statistics come either from one pass over a downscaled copy of the image (fast: one extra run at
 * ~1 MP), or exactly, gathered over the tiles norm by norm (one tiled pass per norm: 16 for the
 * lengstrom networks).
 */
import { clampCountingNonFinite } from '../image/pixels.js';
import { withModel, type Model } from '../runtime/index.js';
import { cropImage, reflectPadTo } from '../image/pad.js';
import { fitLongerSide, resizeImage } from '../image/resize.js';
import { planTiles, TileBlender } from '../image/tiles.js';
import type { Rect, RgbImage } from '../image/types.js';
import { throwIfAborted } from '../util/errors.js';
import { withExternalNormStats, withNormStatsOutputs, type NormSegment, type NormStatsModel } from '../weights/norm-stats.js';
import { nonFiniteOutput } from '../weights/model-door.js';
import type { StyleModel } from './model.js';

// Sessions for the statistics passes are made per pass and released (withModel): each holds an
// arena sized for its largest tile, and seventeen alive at once would hold gigabytes.
const rewrites = new WeakMap<StyleModel, NormStatsModel | null>();

const statsModels = new WeakMap<StyleModel, Uint8Array>();

/** The model rewritten for external statistics (null without instance norms), made once per model. */
function rewriteFor(style: StyleModel): NormStatsModel | null {
  if (!rewrites.has(style)) rewrites.set(style, withExternalNormStats(style.bytes, style.label));
  return rewrites.get(style)!;
}

/** The model reporting the statistics its norms use, made once per model (only for models with norms). */
function statsModelFor(style: StyleModel): Uint8Array {
  if (!statsModels.has(style)) statsModels.set(style, withNormStatsOutputs(style.bytes, style.label)!);
  return statsModels.get(style)!;
}

type Tensor = { data: Float32Array; dims: readonly number[] };
type Feeds = Record<string, Tensor>;

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

/**
 * Where each instance norm's statistics come from: 'exact' gathers them over the tiles (one tiled
 * pass per norm), `{ side }` takes them from one run over the image downscaled so its longer side
 * is at most `side` (the image itself when it is no larger: then they are exact too).
 */
export type TiledStatistics = 'exact' | { readonly side: number };

export interface TiledOptions {
  readonly tile: number;
  readonly overlap: number;
  readonly statistics: TiledStatistics;
  /**
   * Bytes the exact path may hold in activations carried from one norm to the next (every tile's,
   * at once); past it the tiles are recomputed from the image for each norm instead. Default 0:
   * always recompute.
   */
  readonly cacheBytes?: number;
  readonly signal?: AbortSignal;
  readonly onTile?: (done: number, total: number) => void;
}

/** One tile through a model: reflection-padded to a multiple of 4, cropped back afterwards. */
async function runTile(model: Model, style: StyleModel, tile: RgbImage, extra: Feeds, fetch: string) {
  const { image: padded, crop } = reflectPadTo(tile, 4);
  const out = await model.run({ ...extra, [style.input]: { data: padded.data, dims: [1, 3, padded.height, padded.width] } }, [fetch]);
  return { result: out[fetch], padded, crop };
}

/**
 * Each norm's statistics from one run over `image` shrunk to a longer side of at most `side`.
 * Downscaling takes the finest detail out of the early activations, so their variances come out a
 * little low; bench/large-photo.ts measures what that costs against the exact statistics.
 */
async function downscaledStats(style: StyleModel, image: RgbImage, side: number): Promise<Feeds> {
  const longer = Math.max(image.width, image.height);
  const size = longer <= side ? image : fitLongerSide(image.width, image.height, side);
  const small = await resizeImage(image, size.width, size.height);
  const { image: padded } = reflectPadTo(small, 4);
  const models = rewriteFor(style)!;
  const names = models.norms.flatMap((norm) => [norm.meanInput, norm.varianceInput]);
  return withModel(statsModelFor(style), style.runtime, `${style.label} (statistics)`, async (model) => {
    const out = await model.run({ [style.input]: { data: padded.data, dims: [1, 3, padded.height, padded.width] } }, names);
    const feeds: Feeds = {};
    for (const name of names) feeds[name] = { data: out[name].data, dims: [1, out[name].data.length, 1, 1] };
    return feeds;
  });
}

/**
 * Each norm's exact whole-image statistics, gathered over the tiles' owned regions: one tiled pass
 * per norm, each through the part of the model that computes that norm's input.
 */
/** Adds a tile's own region of `activation` (norm input of a padded tile) to `moments`. */
function addOwned(moments: Moments, activation: Tensor, tile: PaddedTile, rect: Rect, own: Rect): void {
  // The tile's own region, in this activation's resolution (1, 1/2 or 1/4 of the tile). An
  // activation whose pixel phases are stacked along H (see graph/peephole.ts) repeats the
  // region once per phase block.
  const { padded, crop } = tile;
  const [, , h, w] = activation.dims;
  const scaleX = padded.width / w;
  const blocks = Math.max(1, Math.round((h * scaleX) / padded.height));
  const scaleY = padded.height / (h / blocks);
  const x = (v: number): number => Math.floor((v - rect.left + crop.left) / scaleX);
  const y = (v: number): number => Math.floor((v - rect.top + crop.top) / scaleY);
  moments.add(activation, x(own.left), x(own.left + own.width), y(own.top), y(own.top + own.height), blocks);
}

function setStats(stats: Feeds, norm: NormStatsModel['norms'][number], { mean, variance }: { mean: Float32Array; variance: Float32Array }): void {
  stats[norm.meanInput] = { data: mean, dims: [1, mean.length, 1, 1] };
  stats[norm.varianceInput] = { data: variance, dims: [1, mean.length, 1, 1] };
}

/**
 * Each norm's exact whole-image statistics from norm `from` on (the earlier ones already in
 * `stats`), gathered over the tiles' owned regions: one tiled pass per norm, each through the part
 * of the model that computes that norm's input from the image.
 */
async function tiledStats(
  style: StyleModel, models: NormStatsModel, image: RgbImage, rects: readonly Rect[], owned: readonly Rect[],
  stats: Feeds, from: number, signal: AbortSignal | undefined, tick: () => void,
): Promise<void> {
  for (let k = from; k < models.norms.length; k++) {
    const norm = models.norms[k];
    setStats(stats, norm, await withModel(models.prefix(k), style.runtime, `${style.label} (statistics ${k + 1})`, async (prefix) => {
      const moments = new Moments();
      for (const [t, rect] of rects.entries()) {
        throwIfAborted(signal);
        const { result, padded, crop } = await runTile(prefix, style, cropImage(image, rect), stats, norm.inputOutput);
        addOwned(moments, result, { padded, crop }, rect, owned[t]);
        tick();
      }
      return moments.result();
    }));
  }
}

interface PaddedTile { readonly padded: RgbImage; readonly crop: Rect }

const bytesOf = (tensors: Iterable<Tensor>): number => [...tensors].reduce((sum, t) => sum + t.data.byteLength, 0);

/**
 * The exact path without recomputation: the model cut at its norms runs piece by piece over every
 * tile, each piece once, and the activations that cross a cut are kept for every tile until the
 * next piece reads them; each norm's statistics are gathered between the pieces. One network's
 * worth of work instead of one prefix per norm (16 for the lengstrom networks), the same numbers.
 * The carried activations are held only while they fit in `cacheBytes` (extrapolated from the
 * first tile before each piece's pass); when the next would not, it returns the norm it reached, and
 * the caller recomputes from there. Otherwise it returns the tiles' outputs.
 */
async function cachedPasses(
  style: StyleModel, models: NormStatsModel, segments: readonly NormSegment[], image: RgbImage, rects: readonly Rect[],
  owned: readonly Rect[], stats: Feeds, cacheBytes: number, signal: AbortSignal | undefined, tick: () => void,
): Promise<{ outputs: RgbImage[] } | { stoppedAt: number }> {
  const tiles = rects.map((rect): PaddedTile => {
    const { image: padded, crop } = reflectPadTo(cropImage(image, rect), 4);
    return { padded, crop };
  });
  const pixels = tiles.reduce((sum, t) => sum + t.padded.width * t.padded.height, 0);
  let carried: Map<string, Tensor>[] = tiles.map(({ padded }) => new Map([[style.input, { data: padded.data, dims: [1, 3, padded.height, padded.width] }]]));
  let held = bytesOf(carried.flatMap((c) => [...c.values()]));
  const outputs: RgbImage[] = [];
  for (const [s, segment] of segments.entries()) {
    const last = s === segments.length - 1;
    const norm = last ? undefined : models.norms[s];
    const stopped = await withModel(segment.bytes, style.runtime, `${style.label} (piece ${s + 1} of ${segments.length})`, async (model) => {
      const moments = new Moments();
      const next: Map<string, Tensor>[] = [];
      for (const [t, rect] of rects.entries()) {
        throwIfAborted(signal);
        const feeds: Feeds = {};
        for (const name of segment.inputs) feeds[name] = carried[t].get(name)!;
        for (const name of segment.statsInputs) feeds[name] = stats[name];
        const out = await model.run(feeds, segment.outputs);
        const kept = new Map(segment.live.map((name) => [name, (out[name] ?? carried[t].get(name))!]));
        if (t === 0 && !last) {
          // What every tile's carried activations will weigh, from this tile's per pixel.
          const { padded } = tiles[0];
          const projected = (bytesOf(kept.values()) / (padded.width * padded.height)) * pixels;
          if (held + projected > cacheBytes) return true;
        }
        carried[t] = new Map();
        if (last) {
          const result = out[style.output];
          const bad = clampCountingNonFinite(result.data);
          if (bad > 0) throw nonFiniteOutput(style.label, bad, result.data.length, ' in a tile');
          const { padded, crop } = tiles[t];
          outputs.push(cropImage({ data: result.data, width: padded.width, height: padded.height }, crop));
        } else {
          addOwned(moments, kept.get(norm!.input)!, tiles[t], rect, owned[t]);
          next.push(kept);
        }
        tick();
      }
      if (norm) setStats(stats, norm, moments.result());
      carried = next;
      held = bytesOf(carried.flatMap((c) => [...c.values()]));
      return false;
    });
    if (stopped) return { stoppedAt: s };
  }
  return { outputs };
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
  const statsRuns = models === null ? 0 : options.statistics === 'exact' ? models.norms.length * rects.length : 1;
  const total = statsRuns + rects.length;
  let done = 0;
  const tick = (): void => {
    done++;
    options.onTile?.(done, total);
  };

  const stats: Feeds = {};
  const place = (t: number, out: RgbImage): void => {
    const rect = rects[t];
    const keep = expand(owned[t], feather / 2, rect);
    blender.add(cropImage(out, { left: keep.left - rect.left, top: keep.top - rect.top, width: keep.width, height: keep.height }), keep);
  };
  if (models !== null) {
    throwIfAborted(options.signal);
    if (options.statistics === 'exact') {
      const segments = (options.cacheBytes ?? 0) > 0 ? models.segments() : null;
      const cached = segments ? await cachedPasses(style, models, segments, image, rects, owned, stats, options.cacheBytes!, options.signal, tick) : { stoppedAt: 0 };
      if ('outputs' in cached) {
        cached.outputs.forEach((out, t) => place(t, out));
        return cropImage(blender.result(), unpad);
      }
      await tiledStats(style, models, image, rects, owned, stats, cached.stoppedAt, options.signal, tick);
    } else {
      Object.assign(stats, await downscaledStats(style, image, options.statistics.side));
      tick();
    }
  }

  const render = async (runOne: (tile: RgbImage) => Promise<RgbImage>): Promise<void> => {
    for (const [t, rect] of rects.entries()) {
      throwIfAborted(options.signal);
      place(t, await runOne(cropImage(image, rect)));
      tick();
    }
  };
  if (!models) {
    await render(runWhole);
  } else {
    await withModel(models.bytes, style.runtime, `${style.label} (tiled)`, (full) => render(async (tile) => {
      const { result, padded, crop } = await runTile(full, style, tile, stats, style.output);
      const bad = clampCountingNonFinite(result.data);
      if (bad > 0) throw nonFiniteOutput(style.label, bad, result.data.length, ' in a tile');
      return cropImage({ data: result.data, width: padded.width, height: padded.height }, crop);
    }));
  }
  return cropImage(blender.result(), unpad);
}
