/**
 * TF.js layers models: the shared VGG19 (uint8-quantised, only its 20 convolution shards present;
 * and the float32 one-group-per-layer partial model), plus small models made here for uint16 and
 * float16 quantisation, tensors spanning shards, and missing shards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { readTfjsLayers, readTfjsManifest } from '../../src/weights/tfjs-layers.js';
import { loadVggWeights } from '../../src/weights/vgg-weights.js';
import { vggParamShapes } from '../../src/nets/vgg.js';
import { FileError } from '../../src/util/errors.js';
import { dataPath } from '../helpers/data.js';
import { scratch } from '../helpers/files.js';

const uint8 = dataPath('models/vgg19-imagenet-tfjs-uint8');
const f32 = dataPath('models/vgg19-imagenet-tfjs-f32-partial');

test('uint8 VGG19: all 16 convolutions load from the 20 shards present, touching nothing beyond them', { skip: uint8.skip }, async () => {
  const touched = new Map<string, number>();
  const convs = await readTfjsLayers(uint8.path, (name) => name.startsWith('block'), {
    onRead: (path, bytes) => touched.set(basename(path), (touched.get(basename(path)) ?? 0) + bytes),
  });
  assert.equal(convs.size, 32);
  assert.deepEqual(convs.get('block5_conv4/kernel')!.shape, [3, 3, 512, 512]);
  assert.deepEqual([...touched.keys()].sort(), Array.from({ length: 20 }, (_, i) => `group1-shard${i + 1}of138.bin`).sort());
  // Tensors are one byte per value, back to back: the 16 convolutions end 20,024,384 bytes in.
  assert.equal([...touched.values()].reduce((a, b) => a + b), 20_024_384);

  const vgg = await loadVggWeights(uint8.path);
  assert.equal(vgg.depth, 19);
  assert.equal(vgg.preprocessing, 'caffe');
  assert.equal(vgg.format, 'tfjs-layers');
  const expected = vggParamShapes(19);
  assert.deepEqual([...vgg.params.keys()], [...expected.keys()]);
  for (const [name, shape] of expected) assert.deepEqual(vgg.params.get(name)!.shape, shape, name);
});

test('uint8 VGG19: dequantised blocks 1–3 agree with the float32 model within each tensor\'s quantisation step', { skip: uint8.skip || f32.skip }, async () => {
  const manifest = await readTfjsManifest(uint8.path);
  const scale = new Map(manifest.specs.map((s) => [s.name, s.quantization!.scale!]));
  const names = manifest.specs.map((s) => s.name).filter((n) => /^block[123]_/.test(n));
  assert.equal(names.length, 16);
  const quantised = await readTfjsLayers(uint8.path, names);
  const exact = await readTfjsLayers(f32.path, names);
  for (const name of names) {
    const q = quantised.get(name)!;
    const e = exact.get(name)!;
    assert.deepEqual(q.shape, e.shape, name);
    let worst = 0;
    for (let i = 0; i < e.data.length; i++) worst = Math.max(worst, Math.abs(q.data[i] - e.data[i]));
    // Rounding to the nearest level errs by at most half a step; allow float32 slack on top.
    assert.ok(worst <= scale.get(name)! * 0.5 + 1e-6, `${name}: max |uint8 − f32| = ${worst}, step ${scale.get(name)}`);
  }
});

test('float32 partial VGG19: blocks 1–3 load; deeper layers name the missing group file', { skip: f32.skip }, async () => {
  const vgg = await loadVggWeights(f32.path, { lastTap: 'relu3_4' });
  assert.equal(vgg.depth, 19);
  assert.equal(vgg.params.size, 16);
  assert.deepEqual(vgg.params.get('block3_conv4.weight')!.shape, [256, 256, 3, 3]);
  await assert.rejects(loadVggWeights(f32.path, { lastTap: 'relu4_1' }), (e: Error) => e instanceof FileError
    && /group9-shard1of2: missing shard of model\.json, needed for tensor 'block4_conv1\/kernel'/.test(e.message));
});

test('uint8 VGG19: a tensor in a missing shard is a FileError naming that shard', { skip: uint8.skip }, async () => {
  await assert.rejects(readTfjsLayers(uint8.path, ['fc1/kernel']), (e: Error) => e instanceof FileError
    && e.message.startsWith(`${uint8.path}/group1-shard21of138.bin`) && /needed for tensor 'fc1\/kernel'/.test(e.message));
  await assert.rejects(readTfjsLayers(uint8.path, ['nope']), /has no tensor 'nope'/);
});

test('made-up model: uint16 and float16 quantisation, float32, tensors spanning shards', async () => {
  const s = await scratch();
  try {
    // Group 1 (2 shards of 5 and 9 bytes): a [2] uint16 tensor, a [3] float16, then [1] float32.
    const u16 = Buffer.from(Uint16Array.of(0, 1000).buffer);
    const f16 = Buffer.from(Uint16Array.of(0x3c00, 0xc000, 0x3555).buffer); // 1, -2, 0.333251953125
    const f32v = Buffer.from(Float32Array.of(6.25).buffer);
    const group1 = Buffer.concat([u16, f16, f32v]);
    await writeFile(s.path('g1-a.bin'), group1.subarray(0, 5));
    await writeFile(s.path('g1-b.bin'), group1.subarray(5));
    await writeFile(s.path('model.json'), JSON.stringify({
      format: 'layers-model',
      weightsManifest: [
        {
          paths: ['g1-a.bin', 'g1-b.bin'],
          weights: [
            { name: 'u', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.5, min: -3, original_dtype: 'float32' } },
            { name: 'h', shape: [3], dtype: 'float32', quantization: { dtype: 'float16', original_dtype: 'float32' } },
            { name: 'f', shape: [1], dtype: 'float32' },
          ],
        },
        { paths: ['g2-missing.bin'], weights: [{ name: 'gone', shape: [4], dtype: 'float32' }] },
      ],
    }));
    const read = await readTfjsLayers(s.path('model.json'), ['u', 'h', 'f']);
    assert.deepEqual([...read.get('u')!.data], [-3, 497]);
    assert.deepEqual([...read.get('h')!.data], [1, -2, 0.333251953125]);
    assert.deepEqual([...read.get('f')!.data], [6.25]);
    assert.deepEqual([...(await readTfjsLayers(s.dir, ['h'])).keys()], ['h']);
    await assert.rejects(readTfjsLayers(s.dir), (e: Error) => e instanceof FileError && e.message.startsWith(s.path('g2-missing.bin')));
    await assert.rejects(loadVggWeights(s.dir), /does not look like VGG weights: it holds u, h, f, gone/);

    await writeFile(s.path('g1-b.bin'), group1.subarray(5, 9));
    await assert.rejects(readTfjsLayers(s.dir, ['f']), /weight group 1 has 9 bytes in its shards but tensor 'f' needs bytes up to 14/);
    await writeFile(s.path('model.json'), '{"modelTopology": {}}');
    await assert.rejects(readTfjsLayers(s.dir), (e: Error) => e instanceof FileError && /has no weightsManifest/.test(e.message));
    await assert.rejects(readTfjsLayers(s.path('nowhere')), /no such TF.js model/);
  } finally {
    await s.cleanup();
  }
});
