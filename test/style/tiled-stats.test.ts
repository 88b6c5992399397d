/**
 * Where a tiled image's instance-norm statistics come from (src/style/tiled.ts): by default the
 * exact whole-image statistics gathered over the tiles; with `fastStats`, one run over a downscaled
 * copy, then one tiled pass with those statistics fixed. Small seeded networks, forced to tile with
 * small tiles, so each test takes seconds. The reference for the fast path is computed here
 * without tiles and without the statistics-reporting rewrite it uses: the rewritten model's
 * prefixes on the downscaled image give each norm's input, whose moments are taken in float64.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, stat } from 'node:fs/promises';
import { openStyleModel, type StyleModel } from '../../src/style/model.js';
import { stylizeFile, stylizeImage } from '../../src/style/transfer.js';
import { stylizeTiled } from '../../src/style/tiled.js';
import { readImage, writeImage } from '../../src/image/codec.js';
import { resizeImage } from '../../src/image/resize.js';
import { planTiles } from '../../src/image/tiles.js';
import type { RgbImage } from '../../src/image/types.js';
import { clearModelCache, withModel } from '../../src/runtime/index.js';
import { withExternalNormStats } from '../../src/weights/norm-stats.js';
import { AbortError } from '../../src/util/errors.js';
import { listTree, scratch, tempLeftovers } from '../helpers/files.js';
import { runCli } from '../helpers/cli.js';
import { tinyTransformerModel } from '../helpers/models.js';
import { noiseImage, psnr, smoothImage } from '../image/fixtures.js';

type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

const W = 256;
const H = 192;
/** Forces 4 x 3 tiles on the 256x192 image (no margin), each seeing ~32 px of context past its seams. */
const TILED = { tile: 128, tileOverlap: 64, margin: 0 } as const;
const STATS = 96;

let dir: Awaited<ReturnType<typeof scratch>>;
const styles = new Map<string, StyleModel>();
/** A photo-like input: smooth colour plus a fifth of noise, so downscaling changes the statistics. */
let content: RgbImage;

before(async () => {
  dir = await scratch('pastiche-tiled-stats-');
  for (const arch of ['lengstrom', 'pytorch-examples', 'realtime'] as const) {
    await writeFile(dir.path(`${arch}.onnx`), tinyTransformerModel(arch));
    styles.set(arch, await openStyleModel(dir.path(`${arch}.onnx`), { threads: 1 }));
  }
  const smooth = smoothImage(W, H);
  const noise = noiseImage(W, H, 3);
  content = { ...smooth, data: smooth.data.map((v, i) => 0.8 * v + 0.2 * noise.data[i]) };
});

after(async () => {
  clearModelCache();
  await dir?.cleanup();
});

/** Per-channel mean and biased variance of an activation [1, C, h, w], in float64. */
function moments({ data, dims }: { data: Float32Array; dims: readonly number[] }): { mean: Float32Array; variance: Float32Array } {
  const channels = dims[1];
  const n = data.length / channels;
  const mean = new Float32Array(channels);
  const variance = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += data[c * n + i];
    const m = s / n;
    let q = 0;
    for (let i = 0; i < n; i++) q += (data[c * n + i] - m) ** 2;
    mean[c] = m;
    variance[c] = q / n;
  }
  return { mean, variance };
}

/** The reference: statistics of `small` norm by norm, then `image` whole through the rewritten model with them. */
async function fixedStatsReference(style: StyleModel, image: RgbImage, small: RgbImage): Promise<RgbImage> {
  const rewritten = withExternalNormStats(style.bytes, style.label)!;
  const stats: Feeds = {};
  for (const [k, norm] of rewritten.norms.entries()) {
    const activation = await withModel(rewritten.prefix(k), style.runtime, 'prefix', async (m) =>
      (await m.run({ ...stats, [style.input]: { data: small.data, dims: [1, 3, small.height, small.width] } }, [norm.inputOutput]))[norm.inputOutput]);
    const { mean, variance } = moments(activation);
    stats[norm.meanInput] = { data: mean, dims: [1, mean.length, 1, 1] };
    stats[norm.varianceInput] = { data: variance, dims: [1, mean.length, 1, 1] };
  }
  const out = await withModel(rewritten.bytes, style.runtime, 'whole', async (m) =>
    (await m.run({ ...stats, [style.input]: { data: image.data, dims: [1, 3, image.height, image.width] } }, [style.output]))[style.output]);
  return { data: out.data.map((v) => Math.min(255, Math.max(0, v))), width: image.width, height: image.height };
}

for (const arch of ['lengstrom', 'pytorch-examples', 'realtime'] as const) {
  test(`${arch}: tiles with statistics from one downscaled run equal the whole image run once with those statistics`, async (t) => {
    const style = styles.get(arch)!;
    const fast = await stylizeImage(style, content, { ...TILED, fastStats: true, statsSize: STATS });
    const reference = await fixedStatsReference(style, content, await resizeImage(content, STATS, (STATS * H) / W));
    const own = await stylizeImage(style, content, { tile: 0, margin: 0 });
    const db = psnr(fast, reference);
    t.diagnostic(`${arch}: fast tiled vs fixed-statistics reference ${db.toFixed(1)} dB; vs the image's own statistics ${psnr(fast, own).toFixed(1)} dB`);
    // Measured 78-116 dB: only float rounding and the tiles' borders separate them.
    assert.ok(db >= 60, `fast path vs reference ${db.toFixed(1)} dB`);
    // The control: the downscaled statistics are not the full image's, so the test can tell them apart.
    assert.ok(psnr(fast, own) < db - 10, 'the reference should differ from a run with the image\'s own statistics');
  });
}

test('with statsSize at least the image size the statistics are the whole image\'s: tiled equals untiled, as exact does', async (t) => {
  for (const [arch, style] of styles) {
    const untiled = await stylizeImage(style, content, { tile: 0, margin: 0 });
    const fast = await stylizeImage(style, content, { ...TILED, fastStats: true, statsSize: W });
    const exact = await stylizeImage(style, content, { ...TILED });
    t.diagnostic(`${arch}: fast ${psnr(fast, untiled).toFixed(1)} dB, exact ${psnr(exact, untiled).toFixed(1)} dB against untiled`);
    assert.ok(psnr(fast, untiled) >= 60, `${arch}: fast vs untiled ${psnr(fast, untiled).toFixed(1)} dB`);
    assert.ok(psnr(exact, untiled) >= 60, `${arch}: exact vs untiled ${psnr(exact, untiled).toFixed(1)} dB`);
  }
});

test('the model cut at its norms, run piece by piece with each norm\'s statistics taken between the pieces, is the model run whole', async (t) => {
  for (const [arch, style] of styles) {
    const rewritten = withExternalNormStats(style.bytes, style.label)!;
    const segments = rewritten.segments()!;
    assert.equal(segments.length, rewritten.norms.length + 1, arch);
    let carried = new Map<string, { data: Float32Array; dims: readonly number[] }>([[style.input, { data: content.data, dims: [1, 3, H, W] }]]);
    const stats: Feeds = {};
    for (const [s, segment] of segments.entries()) {
      const feeds: Feeds = {};
      for (const name of segment.inputs) feeds[name] = carried.get(name)! as Feeds[string];
      for (const name of segment.statsInputs) feeds[name] = stats[name];
      const out = await withModel(segment.bytes, style.runtime, `piece ${s}`, (m) => m.run(feeds, segment.outputs));
      carried = new Map(segment.live.map((name) => [name, out[name] ?? carried.get(name)!]));
      const norm = rewritten.norms[s];
      if (norm) {
        const { mean, variance } = moments(carried.get(norm.input)! as Feeds[string]);
        stats[norm.meanInput] = { data: mean, dims: [1, mean.length, 1, 1] };
        stats[norm.varianceInput] = { data: variance, dims: [1, mean.length, 1, 1] };
      }
    }
    const whole = await stylizeImage(style, content, { tile: 0, margin: 0 });
    const pieces = { data: carried.get(style.output)!.data.map((v) => Math.min(255, Math.max(0, v))), width: W, height: H };
    const db = psnr(pieces, whole);
    t.diagnostic(`${arch}: ${segments.length} pieces vs whole ${db.toFixed(1)} dB`);
    assert.ok(db >= 60, `${arch}: ${db.toFixed(1)} dB`);
  }
});

test('exact statistics: carrying the activations between pieces gives the very same image as recomputing them, whatever the budget', async () => {
  const options = { tile: 128, overlap: 64, statistics: 'exact' as const };
  const noNorms = (): never => assert.fail('the models have norms');
  for (const [arch, style] of styles) {
    const recomputed = await stylizeTiled(style, content, { ...options, cacheBytes: 0 }, noNorms);
    const carried = await stylizeTiled(style, content, { ...options, cacheBytes: 2 ** 30 }, noNorms);
    assert.deepEqual(carried.data, recomputed.data, arch);
  }
  // Narrow first layer, wide second: the tiles' activations weigh most after the second piece, so
  // the budgets below run out before any piece, partway, or never, and each way ends in
  // the same image.
  await writeFile(dir.path('widening.onnx'), tinyTransformerModel('pytorch-examples', { widths: [2, 16, 32] }));
  const style = await openStyleModel(dir.path('widening.onnx'), { threads: 1 });
  const recomputed = await stylizeTiled(style, content, { ...options, cacheBytes: 0 }, noNorms);
  for (let cacheBytes = 1e6; cacheBytes < 2e7; cacheBytes *= 1.25) {
    const ticks: number[] = [];
    const out = await stylizeTiled(style, content, { ...options, cacheBytes, onTile: (done) => ticks.push(done) }, noNorms);
    assert.deepEqual(out.data, recomputed.data, `with ${cacheBytes} bytes to carry`);
    assert.ok(ticks.every((d, i) => i === 0 || d > ticks[i - 1]), 'progress only goes up');
  }
});

test('the tile progress: exact counts a pass per norm, then the tiles; fast one statistics run, then the tiles', async () => {
  const style = styles.get('lengstrom')!;
  const fast: [number, number][] = [];
  await stylizeImage(style, content, { ...TILED, fastStats: true, statsSize: STATS, onTile: (d, n) => fast.push([d, n]) });
  const exact: [number, number][] = [];
  await stylizeImage(style, content, { ...TILED, onTile: (d, n) => exact.push([d, n]) });
  const tiles = planTiles(W, H, { tile: TILED.tile, overlap: TILED.tileOverlap, multiple: 4 }).length;
  const norms = withExternalNormStats(style.bytes, style.label)!.norms.length;
  assert.deepEqual(fast.map(([d]) => d), Array.from({ length: tiles + 1 }, (_, i) => i + 1));
  assert.ok(fast.every(([, n]) => n === tiles + 1));
  assert.equal(exact.length, tiles * (norms + 1));
});

test('bad fastStats and statsSize are refused before any work', async () => {
  const style = styles.get('lengstrom')!;
  await assert.rejects(stylizeImage(style, content, { fastStats: true, statsSize: 32 }), /Expected a number between 64 and 65536 for statsSize but received 32/);
  await assert.rejects(stylizeImage(style, content, { statsSize: 256 }), /Expected fastStats with statsSize but received statsSize 256 alone/);
  await assert.rejects(stylizeImage(style, content, { fastStats: 'yes' as never }), TypeError);
});

test('interrupted during the tiles: no output and no temporary file is left', async () => {
  const style = styles.get('lengstrom')!;
  const input = dir.path('abort-in.png');
  await writeImage(input, content);
  const controller = new AbortController();
  const output = dir.path('aborted', 'out.png');
  await assert.rejects(stylizeFile(style, input, output, {
    ...TILED, signal: controller.signal, onTile: (done) => { if (done === 3) controller.abort(); },
  }), AbortError);
  assert.equal(await stat(output).catch(() => null), null);
  assert.deepEqual(tempLeftovers(await listTree(dir.dir)), []);
});

test('CLI: --fast-stats and --stats-size reach the tiled run, exact is the default; a bad --stats-size writes nothing', async () => {
  const input = dir.path('cli-in.png');
  await writeImage(input, content);
  const model = dir.path('lengstrom.onnx');
  const style = styles.get('lengstrom')!;
  const common = ['--model', model, '--tile', '128', '--tile-overlap', '64', '--margin', '0', '--threads', '1'];
  const fastRun = await runCli(['stylize', input, ...common, '--fast-stats', '--stats-size', String(STATS), '-o', dir.path('fast.png')]);
  assert.equal(fastRun.code, 0, fastRun.stderr);
  const exactRun = await runCli(['stylize', input, ...common, '-o', dir.path('exact.png')]);
  assert.equal(exactRun.code, 0, exactRun.stderr);
  // What was written is what the API gives for the same options, to 8-bit rounding.
  const source = (await readImage(input)).image;
  const fast = (await readImage(dir.path('fast.png'))).image;
  const exact = (await readImage(dir.path('exact.png'))).image;
  assert.ok(psnr(fast, await stylizeImage(style, source, { ...TILED, fastStats: true, statsSize: STATS })) >= 45);
  assert.ok(psnr(exact, await stylizeImage(style, source, { ...TILED })) >= 45);
  assert.ok(psnr(fast, exact) < 40, 'downscaled statistics and exact ones should give different images here');

  const bad = await runCli(['stylize', input, ...common, '--fast-stats', '--stats-size', '10', '-o', dir.path('bad.png')]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /Expected a number between 64 and 65536 for --stats-size but received 10/);
  const alone = await runCli(['stylize', input, ...common, '--stats-size', '128', '-o', dir.path('bad.png')]);
  assert.notEqual(alone.code, 0);
  assert.match(alone.stderr, /Expected --fast-stats with --stats-size/);
  assert.equal(await stat(dir.path('bad.png')).catch(() => null), null);
});
