/**
 * Gatys optimisation with the shared VGG19 (TF.js uint8): the style loss falls by orders of
 * magnitude, masked styles land in their regions, textures come without content, and bad input
 * is refused. The 256 px / 200-iteration run of the acceptance is in bench/gatys.ts (slower).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { optimizeImage } from '../../src/style/optimize.js';
import { loadVggWeights } from '../../src/weights/vgg-weights.js';
import { readImage } from '../../src/image/codec.js';
import { resizeImage } from '../../src/image/resize.js';
import type { RgbImage } from '../../src/image/types.js';
import { Graph, toOnnxBytes } from '../../src/graph/index.js';
import { buildVgg } from '../../src/nets/vgg.js';
import { loadModel } from '../../src/runtime/session.js';
import { dataPath } from '../helpers/data.js';
import { runCli } from '../helpers/cli.js';

const vggDir = dataPath('models/vgg19-imagenet-tfjs-uint8');
const tubingen = dataPath('images/content/tubingen.jpg');
const starry = dataPath('images/style/starry_night.jpg');
const scream = dataPath('images/style/the_scream.jpg');
const skip = vggDir.skip || tubingen.skip || starry.skip || scream.skip;

const vgg = skip ? null : loadVggWeights(vggDir.path, { depth: 19 });
const load = async (path: string, width?: number, height?: number): Promise<RgbImage> => {
  const { image } = await readImage(path);
  return width ? resizeImage(image, width, height!) : image;
};

test('style loss falls more than 100x within 100 L-BFGS iterations (128 px)', { skip }, async () => {
  const result = await optimizeImage({
    content: await load(tubingen.path), styles: [{ image: await load(starry.path) }], vgg: (await vgg)!,
    size: 128, iterations: 100, runtime: { threads: 2 },
  });
  const [{ first, last, width, height }] = result.history;
  assert.deepEqual([width, height, result.image.width, result.image.height], [128, 96, 128, 96]);
  assert.ok(first.style / last.style > 100, `style loss ${first.style} → ${last.style}`);
  assert.ok(last.loss < first.loss);
  for (const v of result.image.data) assert.ok(v >= 0 && v <= 255);
});

/** relu1_1 and relu2_1 features of an image, for Gram statistics measured outside pastiche's loss. */
async function features(image: RgbImage): Promise<{ data: Float32Array; dims: readonly number[] }[]> {
  const graph = new Graph();
  const x = graph.input('image', [1, 3, image.height, image.width]);
  const taps = buildVgg(graph, x, (await vgg)!.params, { depth: 19, pooling: 'max', preprocessing: 'caffe', taps: ['relu1_1', 'relu2_1'] });
  graph.output(taps.get('relu1_1')!, 'a');
  graph.output(taps.get('relu2_1')!, 'b');
  const out = await (await loadModel(toOnnxBytes(graph))).run({ image: { data: image.data, dims: [1, 3, image.height, image.width] } });
  return [out.a, out.b];
}

/** Gram matrix of features over the columns x ∈ [from, to) of the map (a region), normalised. */
function regionGram({ data, dims }: { data: Float32Array; dims: readonly number[] }, from: number, to: number): Float64Array {
  const [, c, h, w] = dims;
  const x0 = Math.floor(from * w);
  const x1 = Math.floor(to * w);
  const gram = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = i; j < c; j++) {
      let s = 0;
      for (let y = 0; y < h; y++) for (let x = x0; x < x1; x++) s += data[(i * h + y) * w + x] * data[(j * h + y) * w + x];
      gram[i * c + j] = gram[j * c + i] = s / (c * h * (x1 - x0));
    }
  }
  return gram;
}

const distance = (a: Float64Array, b: Float64Array): number => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);

test('masked transfer: each region\'s Gram statistics end closer to its own style than to the other', { skip }, async (t) => {
  const [w, h] = [128, 96];
  const left = new Float32Array(w * h).map((_, i) => (i % w < w / 2 ? 1 : 0));
  const right = left.map((v) => 1 - v);
  const starryImage = await load(starry.path, 128, 101);
  const screamImage = await load(scream.path, 101, 128);
  const result = await optimizeImage({
    content: await load(tubingen.path, w, h), vgg: (await vgg)!, size: w, iterations: 60, runtime: { threads: 2 },
    styles: [
      { image: starryImage, mask: { data: left, width: w, height: h } },
      { image: screamImage, mask: { data: right, width: w, height: h } },
    ],
  });
  const out = await features(result.image);
  const starryFeatures = await features(starryImage);
  const screamFeatures = await features(screamImage);
  for (const layer of [0, 1]) {
    const starryGram = regionGram(starryFeatures[layer], 0, 1);
    const screamGram = regionGram(screamFeatures[layer], 0, 1);
    // Regions measured away from the seam in the middle.
    const leftGram = regionGram(out[layer], 0, 0.4);
    const rightGram = regionGram(out[layer], 0.6, 1);
    const leftToOwn = distance(leftGram, starryGram);
    const leftToOther = distance(leftGram, screamGram);
    const rightToOwn = distance(rightGram, screamGram);
    const rightToOther = distance(rightGram, starryGram);
    t.diagnostic(`layer ${layer}: left ${leftToOwn.toExponential(2)} (starry) vs ${leftToOther.toExponential(2)} (scream); right ${rightToOwn.toExponential(2)} (scream) vs ${rightToOther.toExponential(2)} (starry)`);
    assert.ok(leftToOwn < leftToOther, `layer ${layer}: left region ${leftToOwn.toExponential(2)} from starry vs ${leftToOther.toExponential(2)} from scream`);
    assert.ok(rightToOwn < rightToOther, `layer ${layer}: right region ${rightToOwn.toExponential(2)} from scream vs ${rightToOther.toExponential(2)} from starry`);
  }
});

test('texture synthesis: no content, seeded noise start, same result for the same seed', { skip }, async () => {
  const run = async (seed: number) => optimizeImage({ styles: [{ image: await load(starry.path) }], vgg: (await vgg)!, size: 64, iterations: 15, seed, runtime: { threads: 2 } });
  const [a, b, c] = [await run(7), await run(7), await run(8)];
  assert.equal(a.image.width, 64);
  assert.equal(a.history[0].first.content, 0);
  assert.ok(a.history[0].last.style < a.history[0].first.style / 10);
  assert.deepEqual(a.image.data, b.image.data, 'the same seed repeats exactly');
  assert.notDeepEqual(a.image.data, c.image.data);
});

test('coarse-to-fine: each scale starts from the previous result and the last sets the size', { skip }, async () => {
  const result = await optimizeImage({
    content: await load(tubingen.path), styles: [{ image: await load(starry.path) }], vgg: (await vgg)!,
    scales: [48, 96], iterations: 8, runtime: { threads: 2 }, preserveColors: 'luminance',
  });
  assert.deepEqual(result.history.map((h) => [h.width, h.height]), [[48, 36], [96, 72]]);
  // The second scale starts from the upsampled result, well below where the first one started.
  assert.ok(result.history[1].first.style < result.history[0].first.style);
  assert.deepEqual([result.image.width, result.image.height], [96, 72]);
});

test('bad options name the problem', { skip }, async () => {
  const content = await load(tubingen.path, 64, 48);
  const style = await load(starry.path, 64, 64);
  const weights = (await vgg)!;
  await assert.rejects(optimizeImage({ content, styles: [{ image: style }], vgg: weights, styleLayers: ['relu9_9'] }), /Unknown VGG19 layer 'relu9_9'/);
  await assert.rejects(optimizeImage({ content, styles: [{ image: style, mask: { data: new Float32Array(64 * 64), width: 64, height: 64 } }], vgg: weights }),
    /The style mask 1 is 64x64 but the content is 64x48: their aspect ratios differ/);
  await assert.rejects(optimizeImage({ content, styles: [], vgg: weights }), /at least one style image/);
  await assert.rejects(optimizeImage({ content, styles: [{ image: style }], vgg: weights, styleWeight: -1 }), /Expected a number of at least 0 for styleWeight but received -1/);
});

test('CLI: several styles with weights, masks, Ctrl-C writes the best image so far', { skip, timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-optimize-'));
  try {
    const mask = join(dir, 'left.png');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#000' } })
      .composite([{ input: { create: { width: 32, height: 48, channels: 3, background: '#fff' } }, left: 0, top: 0 }]).png().toFile(mask);
    const common = ['--vgg', vggDir.path, '--size', '64', '--threads', '2'];
    const ok = await runCli(['optimize', tubingen.path, '--style', `${starry.path}:0.7`, '--style-mask', mask, '--style', `${scream.path}:0.3`,
      '--iterations', '3', '--json', '-o', join(dir, 'out.png'), ...common]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).width, 64);
    // Every other flag once, at a tiny size.
    const all = await runCli(['optimize', tubingen.path, '--style', starry.path, '--content-mask', mask, '--scales', '24,32', '--iterations', '2',
      '--optimizer', 'adam', '--learning-rate', '5', '--content-weight', '4', '--style-weight', '50', '--tv-weight', '0.01',
      '--content-layers', 'relu3_2', '--style-layers', 'relu1_1,relu2_1', '--style-layer-weights', '1,0.5', '--pooling', 'avg',
      '--init', 'noise', '--seed', '3', '--style-scale', '0.5', '--preserve-colors', 'histogram', '--vgg-depth', '19',
      '--save-every', '1', '--execution-provider', 'cpu', '--json', '-o', join(dir, 'all.png'), '--vgg', vggDir.path, '--threads', '2']);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(JSON.parse(all.stdout).history.map((h: { width: number }) => h.width), [24, 32]);
    assert.ok((await readdir(dir)).some((f) => f.startsWith('all.scale2.iter0002')), 'snapshots written with --save-every');
    const help = await runCli(['optimize', '--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--style', '--style-mask', '--content-mask', '--scales', '--optimizer', '--pooling', '--init', '--seed', '--preserve-colors', '--vgg', '--save-every']) {
      assert.ok(help.stdout.includes(flag), `--help mentions ${flag}`);
    }
    const bad = await runCli(['optimize', tubingen.path, '--style', starry.path, '--content-layers', 'relu4_9', '-o', join(dir, 'bad.png'), ...common]);
    assert.equal(bad.code, 1);
    assert.match(bad.errorLines[0], /Unknown VGG19 layer 'relu4_9'/);
    const missing = await runCli(['optimize', tubingen.path, '--style', join(dir, 'nope.jpg'), ...common]);
    assert.equal(missing.code, 1);
    assert.match(missing.errorLines[0], /nope\.jpg/);
    // Interrupted: the best image so far is written, exit code 130.
    const interrupted = await runCli(['optimize', tubingen.path, '--style', starry.path, '--iterations', '100000', '-o', join(dir, 'stopped.png'), ...common], {
      onSpawn: (child) => setTimeout(() => child.kill('SIGINT'), 6000),
    });
    assert.equal(interrupted.code, 130, interrupted.stderr);
    assert.ok(existsSync(join(dir, 'stopped.png')));
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('pastiche-tmp')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
