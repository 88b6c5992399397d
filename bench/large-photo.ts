/**
 * Large photos (issue 10): a 12 MP image through a quality network, with exact tiled statistics
 * (one tiled pass per instance norm) against the fast path (statistics from one run over a
 * downscaled copy, then one tiled pass), the PSNR between them, where the fast path's time goes,
 * and PNG crops of both to look at. Inputs: tubingen upscaled to 4000x3000 (smooth: an upscale has
 * no detail at full resolution) and a 4x4 mosaic of the shared photos at about their own
 * resolution (1000x750 each: real fine detail, the harder case for downscaled statistics).
 * Options: --large-inputs upscaled,mosaic · --large-model PATH or name (default the wave checkpoint) ·
 * --large-variants (also stats sizes 512/2048 and overlap 32/128: ~8 more fast runs per input) ·
 * --large-recompute (also the exact path recomputing every tile from the image for each norm, as
 * it must when the carried activations do not fit in the memory budget: 214 s per image, quiet).
 * The exact default carries the tiles' activations from norm to norm (src/style/tiled.ts).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { openStyleModel, type StyleModel } from '../src/style/model.js';
import { AUTO_TILE_SIDE, DEFAULT_MARGIN, DEFAULT_STATS_SIZE, DEFAULT_TILE_OVERLAP, estimateStylizeMemory, stylizeImage, type StylizeOptions } from '../src/style/transfer.js';
import { resourceUsage } from 'node:process';
import { readImage, writeImage } from '../src/image/codec.js';
import { cropImage, reflectPad, reflectPadTo } from '../src/image/pad.js';
import { planTiles } from '../src/image/tiles.js';
import type { RgbImage } from '../src/image/types.js';
import { withModel } from '../src/runtime/index.js';
import { withExternalNormStats } from '../src/weights/norm-stats.js';
import { psnr } from '../test/helpers/compare.js';
import { table } from './util.js';

const OUT = join(import.meta.dirname, 'out', 'large-photo');
const CONTENT = ['tubingen', 'golden_gate', 'stata', 'face', 'brad_pitt', 'diana', 'hoovertowernight', 'tubingen'];

/** The two 4000x3000 test photos, as PNG files (decoding them is part of what is timed). */
async function makeInputs(dataDir: string, which: readonly string[]): Promise<{ name: string; path: string }[]> {
  await mkdir(OUT, { recursive: true });
  const content = (n: string): string => join(dataDir, 'images', 'content', `${n}.jpg`);
  const inputs: { name: string; path: string }[] = [];
  if (which.includes('upscaled')) {
    const path = join(OUT, 'upscaled.png');
    await sharp(content('tubingen')).resize(4000, 3000, { kernel: 'lanczos3' }).png().toFile(path);
    inputs.push({ name: 'upscaled', path });
  }
  if (which.includes('mosaic')) {
    const path = join(OUT, 'mosaic.png');
    const tiles = await Promise.all(Array.from({ length: 16 }, async (_, i) => ({
      input: await sharp(content(CONTENT[i % CONTENT.length])).resize(1000, 750, { fit: 'cover' }).toBuffer(),
      left: (i % 4) * 1000, top: Math.floor(i / 4) * 750,
    })));
    await sharp({ create: { width: 4000, height: 3000, channels: 3, background: '#000' } }).composite(tiles).png().toFile(path);
    inputs.push({ name: 'mosaic', path });
  }
  return inputs;
}

interface Run {
  readonly image: RgbImage;
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** Seconds to the first tick: for the fast path, the statistics run (its one tick). */
  readonly statsSeconds: number;
  /** Network runs (ticks): the statistics run(s) and the tiles. */
  readonly runs: number;
}

async function timed(style: StyleModel, image: RgbImage, options: StylizeOptions): Promise<Run> {
  const ticks: number[] = [];
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const out = await stylizeImage(style, image, { ...options, onTile: () => ticks.push(performance.now()) });
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  return { image: out, seconds, cpuSeconds: (used.user + used.system) / 1e6, statsSeconds: ((ticks[0] ?? t0) - t0) / 1000, runs: ticks.length };
}

/** Where a default fast run's time goes, for `image` (already decoded). */
async function breakdown(style: StyleModel, path: string, image: RgbImage, fast: Run, threads: number): Promise<string[][]> {
  let t = performance.now();
  await readImage(path);
  const decode = (performance.now() - t) / 1000;
  t = performance.now();
  await writeImage(join(OUT, 'encode-probe.jpg'), fast.image);
  const encodeJpeg = (performance.now() - t) / 1000;
  await rm(join(OUT, 'encode-probe.jpg'), { force: true });
  // The tiles the default run planned, on the image with its margin, padded to a multiple of 4.
  const m = DEFAULT_MARGIN;
  const { image: padded } = reflectPadTo(reflectPad(image, { left: m, top: m, right: m, bottom: m }), 4);
  const rects = planTiles(padded.width, padded.height, { tile: AUTO_TILE_SIDE, overlap: DEFAULT_TILE_OVERLAP, multiple: 4 });
  const tilePixels = rects.reduce((s, r) => s + r.width * r.height, 0);
  // The network alone on one tile of that size, with fixed statistics: what the tiles cannot beat.
  const rewritten = withExternalNormStats(style.bytes, style.label)!;
  const tile = cropImage(padded, rects[0]);
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const norm of rewritten.norms) {
    feeds[norm.meanInput] = { data: new Float32Array(norm.channels).fill(0), dims: [1, norm.channels, 1, 1] };
    feeds[norm.varianceInput] = { data: new Float32Array(norm.channels).fill(1), dims: [1, norm.channels, 1, 1] };
  }
  const modelMs = await withModel(rewritten.bytes, { threads }, 'tile probe', async (model) => {
    const run = (): Promise<unknown> => model.run({ ...feeds, [style.input]: { data: tile.data, dims: [1, 3, tile.height, tile.width] } }, [style.output]);
    await run();
    const t1 = performance.now();
    await run();
    await run();
    return (performance.now() - t1) / 2;
  });
  const tilesSeconds = fast.seconds - fast.statsSeconds;
  return [
    ['decode PNG (sharp)', decode.toFixed(2)],
    [`statistics run (longer side ${DEFAULT_STATS_SIZE}, incl. resize)`, fast.statsSeconds.toFixed(2)],
    [`${rects.length} tiles of ${rects[0].width}x${rects[0].height}, network + JS`, tilesSeconds.toFixed(2)],
    ['  of which the network alone (one tile timed x count)', ((modelMs * rects.length) / 1000).toFixed(2)],
    [`  tile overlap: tile pixels / image pixels`, `${((tilePixels / (padded.width * padded.height)) * 100).toFixed(0)} %`],
    [`  margin ${m} px: padded pixels / image pixels`, `${((padded.width * padded.height / (image.width * image.height)) * 100).toFixed(0)} %`],
    ['encode JPEG (sharp)', encodeJpeg.toFixed(2)],
  ];
}

/** 512x512 crops of both outputs at the same places: a corner, the middle, and a tile seam. */
async function writeCrops(name: string, exact: RgbImage, fast: RgbImage): Promise<string[]> {
  const places = [{ left: 0, top: 0 }, { left: 1744, top: 1244 }, { left: 800, top: 600 }];
  const files: string[] = [];
  for (const [i, p] of places.entries()) {
    const rect = { ...p, width: 512, height: 512 };
    for (const [label, image] of [['exact', exact], ['fast', fast]] as const) {
      const file = join(OUT, `${name}-crop${i + 1}-${label}.png`);
      await writeImage(file, cropImage(image, rect));
      files.push(file);
    }
  }
  return files;
}

export async function benchLargePhoto(dataDir: string, threads: number, args: readonly string[]): Promise<void> {
  const arg = (flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const which = (arg('--large-inputs') ?? 'upscaled,mosaic').split(',');
  const modelPath = arg('--large-model') ?? join(dataDir, 'models', 'fast-style', 'wave');
  const style = await openStyleModel(modelPath, { threads });
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  for (const { name, path } of await makeInputs(dataDir, which)) {
    const { image } = await readImage(path);
    const exact = await timed(style, image, {});
    const exactRss = resourceUsage().maxRSS / 2 ** 20;
    const fast = await timed(style, image, { fastStats: true });
    const row = (label: string, run: Run, rss = '—'): (string | number)[] => [name, label, run.runs, run.seconds.toFixed(1), run.cpuSeconds.toFixed(1), rss, run === exact ? '—' : psnr(run.image.data, exact.image.data).toFixed(1)];
    rows.push(row('exact statistics, activations carried (default)', exact, `${exactRss.toFixed(2)} (peak so far)`), row(`--fast-stats: statistics at ${DEFAULT_STATS_SIZE} px`, fast));
    if (args.includes('--large-recompute')) {
      // A budget of the tiled run's own estimate leaves nothing to carry: every norm recomputes its tiles from the image.
      const maxMemory = estimateStylizeMemory(image.width, image.height, {});
      rows.push(row('exact statistics, recomputed per norm (the fallback)', await timed(style, image, { maxMemory })));
    }
    if (args.includes('--large-variants')) {
      for (const statsSize of [512, 2048]) rows.push(row(`--fast-stats: statistics at ${statsSize} px`, await timed(style, image, { fastStats: true, statsSize })));
      for (const tileOverlap of [32, 128]) rows.push(row(`--fast-stats: tile overlap ${tileOverlap}`, await timed(style, image, { fastStats: true, tileOverlap })));
    }
    console.log(`\n### ${name}: where a --fast-stats run's time goes\n`);
    console.log(table(['step', 'seconds'], await breakdown(style, path, image, fast, threads)));
    notes.push(...await writeCrops(name, exact.image, fast.image));
    await writeFile(join(OUT, `${name}-psnr.txt`), `${psnr(fast.image.data, exact.image.data)}\n`);
  }
  console.log(`\n## Large photos: 4000x3000 through ${modelPath} (${threads} threads, tiles ${AUTO_TILE_SIDE} px, overlap ${DEFAULT_TILE_OVERLAP}, margin ${DEFAULT_MARGIN})\n`);
  console.log(table(['input', 'statistics', 'network runs', 'wall s', 'CPU s', 'max RSS GiB', 'PSNR vs exact dB'], rows));
  console.log(`\ncrops (exact and fast side by side) in ${OUT}: ${notes.map((f) => f.slice(OUT.length + 1)).join(', ')}`);
}
