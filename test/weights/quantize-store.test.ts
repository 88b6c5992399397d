/**
 * `pastiche models quantize` (src/style/quantize-stored.ts, src/cli/models.ts): an int8 copy of a
 * stored model, calibrated on synthetic photos or a folder, stored through the model door with its
 * provenance and measured PSNR, marked in `models list`, usable by `stylize`; bad input refused
 * before any work with one line naming the problem. Tiny random-weight networks (seconds).
 *
 * Stated accuracy: on smooth and synthetic photo-like images the int8 copy of a tamed random-weight
 * realtime network (below) stays ≥ 30 dB from its float source (measured 32.5-38.1 dB at 96x72
 * and 384x288). Trained networks measured: the wave student (realtime) 38-43 dB and the lengstrom
 * wave 28-34 dB on photos/val, calibrated on the synthetic set; test/weights/quantize.test.ts
 * checks the lengstrom wave ≥ 30 dB when calibrated on photos.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTransformer, initTransformerParams, resolveArchitecture } from '../../src/nets/transformer.js';
import { toOnnxBytes } from '../../src/graph/onnx.js';
import { writeImage } from '../../src/image/codec.js';
import { syntheticPhotos } from '../../src/image/synthetic-photos.js';
import { clearModelCache, loadModel } from '../../src/runtime/index.js';
import { defaultInt8Name, quantizeStoredModel } from '../../src/style/quantize-stored.js';
import { decodeOnnx, readMetadata } from '../../src/weights/onnx-file.js';
import { QUANTIZE_META } from '../../src/weights/quantize.js';
import { listModels, modelPath, saveModel } from '../../src/weights/store.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { listTree, scratch } from '../helpers/files.js';
import { psnr as psnrOf, smoothImage } from '../image/fixtures.js';

let dir: Awaited<ReturnType<typeof scratch>>;
let env: Record<string, string>;
const show = (r: CliResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/**
 * A tiny seeded realtime network, tamed the way training leaves one: He-initialised weights drive
 * tanh·150 into saturation and add residual branches as large as the trunk, so any rounding is
 * amplified (19-29 dB int8 vs fp32 as initialised); residual branches scaled to 0.2 and the last
 * convolution to a quarter bring it to the regime of trained networks.
 */
function tinyRealtime(seed = 3): Uint8Array {
  const { config } = resolveArchitecture('realtime', { widths: [8, 8, 16], residualBlocks: 2 });
  const params = initTransformerParams(config, seed);
  for (const [name, { data }] of params) {
    if (/^res\d+\.in2\.weight$/.test(name)) data.fill(0.2);
    if (name === 'deconv3.conv2d.weight') data.forEach((v, i) => { data[i] = v / 4; });
  }
  return toOnnxBytes(buildTransformer(config, params).graph);
}

before(async () => {
  dir = await scratch('pastiche-quantize-');
  env = { PASTICHE_HOME: dir.path('home') };
  process.env.PASTICHE_HOME = env.PASTICHE_HOME;
  await saveModel('tiny', tinyRealtime(), { architecture: 'realtime', source: 'test', description: 'a tiny random realtime network' });
});

after(async () => {
  await clearModelCache();
  await dir.cleanup();
});

async function run(bytes: Uint8Array, image: { data: Float32Array; width: number; height: number }): Promise<Float32Array> {
  const model = await loadModel(bytes, { threads: 1 });
  return (await model.run({ image: { data: image.data, dims: [1, 3, image.height, image.width] } })).stylized.data;
}

test('quantizeStoredModel: stores NAME-int8 with its source, calibration and PSNR, and it matches fp32 ≥ 30 dB', async () => {
  const result = await quantizeStoredModel('tiny', { photos: 5, threads: 1 });
  assert.equal(result.model.name, 'tiny-int8');
  assert.equal(result.model.precision, 'int8');
  assert.equal(result.model.architecture, 'realtime');
  assert.equal(result.model.source, 'tiny');
  assert.equal(result.photoSet, 'synthetic');
  assert.equal(result.calibrated, 4, '5 photos: 4 calibrate, 1 held out');
  assert.equal(result.psnr.length, 1);
  assert.ok(result.heldOut);

  const [fp32, int8] = [await readFile(modelPath('tiny')), await readFile(modelPath('tiny-int8'))];
  const meta = readMetadata(decodeOnnx(int8, 'tiny-int8'));
  assert.equal(meta[QUANTIZE_META.quantized], 'int8');
  const record = JSON.parse(meta[QUANTIZE_META.calibration]);
  assert.equal(record.source, 'tiny');
  assert.equal(record.images, 4);
  assert.deepEqual(record.calibrationPhotos, ['synthetic-1', 'synthetic-2', 'synthetic-3', 'synthetic-4']);
  assert.equal(record.psnr.photos[0].photo, 'synthetic-5');

  // The recorded PSNR against an independent one: the held-out photo regenerated, both models run here.
  const held = syntheticPhotos(5, 384, 288)[4];
  const own = psnrOf({ ...held, data: await run(fp32, held) }, { ...held, data: await run(int8, held) });
  assert.ok(Math.abs(own - result.psnr[0].db) < 0.01, `recorded ${result.psnr[0].db} dB, recomputed ${own} dB`);
  for (const image of [smoothImage(96, 72), ...syntheticPhotos(2, 96, 72, 7)]) {
    const db = psnrOf({ ...image, data: await run(fp32, image) }, { ...image, data: await run(int8, image) });
    console.log(`tiny realtime (random weights) int8 vs fp32 at 96x72: ${db.toFixed(1)} dB`);
    assert.ok(db >= 30, `${db.toFixed(2)} dB`);
  }
  assert.ok(int8.length < fp32.length, `int8 ${int8.length} bytes, fp32 ${fp32.length}`);
});

test('any photo count: one photo calibrates and measures; a folder with fewer photos than asked uses them all', async () => {
  const one = await quantizeStoredModel('tiny', { as: 'tiny-one', photos: 1, threads: 1 });
  assert.deepEqual([one.calibrated, one.psnr.length, one.heldOut], [1, 1, false]);
  const photos = dir.path('photos');
  const sizes: [number, number][] = [[45, 37], [64, 48], [33, 70]]; // odd sizes: padded to a multiple of 4
  for (const [i, [w, h]] of sizes.entries()) await writeImage(join(photos, `p${i}.png`), { ...syntheticPhotos(1, w, h, i + 1)[0] });
  const three = await quantizeStoredModel('tiny', { as: 'tiny-folder', calibration: photos, photos: 8, threads: 1 });
  assert.deepEqual([three.calibrated, three.psnr.map((p) => p.photo), three.photoSet], [2, ['p2.png'], photos]);
  assert.ok(Number.isFinite(three.psnr[0].db));
});

test('bad input: unknown model, calibration not a folder or empty, name taken, bad count, already int8: nothing stored', async () => {
  const before = await listTree(dir.path('home'));
  await assert.rejects(quantizeStoredModel('nope'), /No model named 'nope' in the store/);
  const file = dir.path('not-a-folder.jpg');
  await writeFile(file, 'x');
  await assert.rejects(quantizeStoredModel('tiny', { as: 'x1', calibration: file }), { name: 'FileError', message: `${file}: is not a folder` });
  await assert.rejects(quantizeStoredModel('tiny', { as: 'x2', calibration: dir.path('missing') }), { message: `${dir.path('missing')}: no such folder` });
  await assert.rejects(quantizeStoredModel('tiny', { as: 'x3', calibration: dir.path('home') }), { message: /holds no JPEG, PNG or WebP photos/ });
  await assert.rejects(quantizeStoredModel('tiny', { as: 'x4', photos: 0 }), { name: 'RangeError', message: /between 1 and 1000 for the number of calibration photos but received 0/ });
  await assert.rejects(quantizeStoredModel('tiny', { as: 'bad/name' }), { name: 'RangeError', message: /Expected a model name/ });
  await assert.rejects(quantizeStoredModel('tiny', { as: 'tiny' }), /A model named 'tiny' is already in the store .*--force/);
  await assert.rejects(quantizeStoredModel('tiny-int8', { as: 'x5' }), { name: 'RangeError', message: /already int8/ });
  assert.deepEqual(await listTree(dir.path('home')), before);
  assert.equal(defaultInt8Name('/a/b/wave.onnx'), 'wave-int8');
  assert.equal(defaultInt8Name('/a/b/wave/'), 'wave-int8');
});

test('CLI: models quantize round-trips through the store (list marks int8, stylize runs it); a taken name needs --force', async () => {
  const quantized = await runCli(['models', 'quantize', 'tiny', '--as', 'tiny-cli', '--photos', '3', '--threads', '1', '--json'], { env });
  assert.equal(quantized.code, 0, show(quantized));
  const result = JSON.parse(quantized.stdout);
  assert.equal(result.model.name, 'tiny-cli');
  assert.equal(result.psnr.length, 1);
  // Refused before any work: the name is checked first.
  const taken = await runCli(['models', 'quantize', 'tiny', '--as', 'tiny-cli'], { env });
  assert.equal(taken.code, 1, show(taken));
  assert.deepEqual(taken.errorLines, [`pastiche: A model named 'tiny-cli' is already in the store (${join(env.PASTICHE_HOME, 'models', 'tiny-cli.onnx')}); pass --force to replace it, or --as to choose another name`]);
  const folder = dir.path('cli-photos');
  for (const [i, image] of syntheticPhotos(3, 48, 36, 9).entries()) await writeImage(join(folder, `p${i}.jpg`), image);
  const text = await runCli(['models', 'quantize', 'tiny', '--as', 'tiny-cli', '--force', '--calibration', folder, '--photos', '2'], { env });
  assert.equal(text.code, 0, show(text));
  assert.equal(text.errorLines.length, 1, show(text));
  assert.match(text.errorLines[0], /^quantized tiny → tiny-cli \(realtime int8, \d+ KiB\), calibrated on 1 photo; PSNR vs fp32 on 1 held-out photo \(.*cli-photos\): min [\d.]+ dB, mean [\d.]+ dB → .*tiny-cli\.onnx$/);

  const list = await runCli(['models', 'list'], { env });
  assert.equal(list.code, 0, show(list));
  assert.match(list.stdout, /^tiny-cli\s+realtime int8\s+\d+ KiB\s+stored\s+int8 of tiny: a tiny random realtime network$/m);
  assert.match(list.stdout, /^tiny\s+realtime\s+\d+ KiB\s+stored\s+a tiny random realtime network$/m);
  assert.deepEqual((await listModels()).filter((m) => m.name === 'tiny-cli').map((m) => m.precision), ['int8']);

  const photo = dir.path('photo.png');
  await writeImage(photo, smoothImage(40, 30));
  const stylized = await runCli(['stylize', photo, '--model', 'tiny-cli', '-o', dir.path('out.png'), '--threads', '1'], { env });
  assert.equal(stylized.code, 0, show(stylized));
});

test('the synthetic calibration photos: seeded, image i the same whatever the count, 0..255, photo-like spread', () => {
  const [a, b] = [syntheticPhotos(3, 64, 48, 5), syntheticPhotos(2, 64, 48, 5)];
  assert.deepEqual(a[1].data, b[1].data);
  assert.notDeepEqual(a[0].data, a[1].data);
  assert.notDeepEqual(syntheticPhotos(1, 64, 48, 6)[0].data, a[0].data);
  for (const { data, width, height } of a) {
    assert.equal(data.length, 3 * width * height);
    let [min, max, sum, sq] = [Infinity, -Infinity, 0, 0];
    for (const v of data) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      sq += v * v;
    }
    const std = Math.sqrt(sq / data.length - (sum / data.length) ** 2);
    assert.ok(min >= 0 && max <= 255, `${min}..${max}`);
    assert.ok(std > 20, `standard deviation ${std.toFixed(1)}: not a flat image`);
  }
});
