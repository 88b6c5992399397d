/**
 * PyTorch .pth state dicts (zip and legacy layouts) built byte by byte in the test: values read
 * back exactly, strided and half-precision storages, VGG mapping, and the errors for files that
 * are not VGG, not PyTorch, or damaged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { openTorchPth, readTorchPth } from '../../src/weights/torch-pth.js';
import { loadVggWeights } from '../../src/weights/vgg-weights.js';
import { FileError } from '../../src/util/errors.js';
import { randomData } from '../helpers/random.js';
import { scratch } from '../helpers/files.js';
import { torchLegacy, torchZip, type FixtureTensor } from '../helpers/torch-fixture.js';

/** torchvision VGG's first two convolutions, real shapes. */
const block1: FixtureTensor[] = [
  { name: 'features.0.weight', storage: randomData(64 * 3 * 9, 1), shape: [64, 3, 3, 3] },
  { name: 'features.0.bias', storage: randomData(64, 2), shape: [64] },
  { name: 'features.2.weight', storage: randomData(64 * 64 * 9, 3), shape: [64, 64, 3, 3] },
  { name: 'features.2.bias', storage: randomData(64, 4), shape: [64] },
];

const layouts = {
  zip: torchZip,
  legacy: torchLegacy,
  'Python 2 legacy (torchvision 2017)': (tensors: readonly FixtureTensor[]) => torchLegacy(tensors, { py2: true }),
};

const fixture = (name: string): string => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));

test('files written by torch.save itself (zip and legacy; see fixtures/make-torch-fixtures.py) read back exactly', async () => {
  const expected = JSON.parse(await readFile(fixture('torch-expected.json'), 'utf8')) as { tensors: Record<string, { shape: number[]; values: number[] }> };
  for (const file of ['torch-zip.pth', 'torch-legacy.pth']) {
    const read = await readTorchPth(fixture(file));
    assert.deepEqual([...read.keys()].sort(), Object.keys(expected.tensors).sort(), file);
    for (const [name, { shape, values }] of Object.entries(expected.tensors)) {
      assert.deepEqual(read.get(name)!.shape, shape, `${file} ${name}`);
      assert.deepEqual([...read.get(name)!.data], values.map(Math.fround), `${file} ${name}`);
    }
  }
});

for (const [layout, write] of Object.entries(layouts)) {
  test(`${layout} .pth: tensors read back exactly, and map onto VGG block 1`, async () => {
    const s = await scratch();
    try {
      const path = s.path('vgg.pth');
      await writeFile(path, write(block1));
      const read = await readTorchPth(path);
      assert.deepEqual([...read.keys()], block1.map((t) => t.name));
      for (const t of block1) {
        assert.deepEqual(read.get(t.name)!.shape, t.shape);
        assert.deepEqual(read.get(t.name)!.data, t.storage);
      }
      const vgg = await loadVggWeights(path, { lastTap: 'relu1_2' });
      assert.equal(vgg.format, 'torch-pth');
      assert.equal(vgg.preprocessing, 'torch');
      assert.equal(vgg.depth, 19); // block 1 alone cannot tell; VGG19 is the default
      assert.deepEqual([...vgg.params.keys()], ['block1_conv1.weight', 'block1_conv1.bias', 'block1_conv2.weight', 'block1_conv2.bias']);
      assert.deepEqual(vgg.params.get('block1_conv2.weight')!.data, block1[2].storage);
      await assert.rejects(loadVggWeights(path, { lastTap: 'relu2_1' }), (e: Error) => e instanceof FileError && /lacks 'features\.5\.weight'/.test(e.message) && e.message.startsWith(path));
    } finally {
      await s.cleanup();
    }
  });

  test(`${layout} .pth: strided views, storage offsets and half-precision storages`, async () => {
    const s = await scratch();
    try {
      const half = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x0000]); // 1, -2, 0.5, 65504, 2^-24, 0
      const path = s.path('odd.pth');
      await writeFile(path, write([
        // A [2, 3] transposed view of a 6-element storage: element (i, j) = storage[i + 2j].
        { name: 'transposed', storage: Float32Array.from([0, 1, 2, 3, 4, 5]), shape: [2, 3], stride: [1, 2] },
        { name: 'offset', storage: Float32Array.from([9, 9, 7, 8]), shape: [2], offset: 2 },
        { name: 'half', storage: half, shape: [6], dtype: 'HalfStorage' },
      ]));
      const read = await readTorchPth(path, (name) => name !== 'offset');
      assert.deepEqual([...read.keys()], ['transposed', 'half']);
      assert.deepEqual([...read.get('transposed')!.data], [0, 2, 4, 1, 3, 5]);
      assert.deepEqual([...read.get('half')!.data], [1, -2, 0.5, 65504, 2 ** -24, 0]);
      assert.deepEqual([...(await readTorchPth(path, ['offset'])).get('offset')!.data], [7, 8]);
    } finally {
      await s.cleanup();
    }
  });
}

test('.pth: depth is inferred from torchvision indices and checked against the one asked for', async () => {
  const s = await scratch();
  try {
    const path = s.path('vgg16ish.pth');
    // features.17 is a convolution only in VGG16 (VGG19 has its block-3 pool there).
    await writeFile(path, torchZip([...block1, { name: 'features.17.weight', storage: new Float32Array(1), shape: [1, 1, 1, 1] }]));
    const vgg = await loadVggWeights(path, { lastTap: 'conv1_1' });
    assert.equal(vgg.depth, 16);
    assert.equal(vgg.params.size, 2);
    await assert.rejects(loadVggWeights(path, { depth: 19 }), (e: Error) => e instanceof FileError && /holds VGG16 weights but VGG19 was asked for/.test(e.message));
    await assert.rejects(loadVggWeights(path, { lastTap: 'relu9_9' }), RangeError);
  } finally {
    await s.cleanup();
  }
});

test('.pth: a ResNet, a batch-norm VGG and wrong shapes are refused with the file named', async () => {
  const s = await scratch();
  try {
    const resnet = s.path('resnet18.pth');
    await writeFile(resnet, torchZip([
      { name: 'conv1.weight', storage: new Float32Array(64 * 3 * 49), shape: [64, 3, 7, 7] },
      { name: 'bn1.weight', storage: new Float32Array(64), shape: [64] },
      { name: 'bn1.running_mean', storage: new Float32Array(64), shape: [64] },
      { name: 'fc.weight', storage: new Float32Array(10), shape: [10, 1] },
    ]));
    await assert.rejects(loadVggWeights(resnet), (e: Error) => e instanceof FileError && e.message.startsWith(resnet)
      && /does not look like VGG weights: it holds conv1\.weight, bn1\.weight/.test(e.message));

    const bn = s.path('vgg19_bn.pth');
    await writeFile(bn, torchZip([...block1.slice(0, 2), { name: 'features.1.running_mean', storage: new Float32Array(64), shape: [64] }]));
    await assert.rejects(loadVggWeights(bn), /batch-normalised VGG/);

    const narrow = s.path('narrow.pth');
    await writeFile(narrow, torchZip([{ name: 'features.0.weight', storage: new Float32Array(32 * 27), shape: [32, 3, 3, 3] }, block1[1]]));
    await assert.rejects(loadVggWeights(narrow, { lastTap: 'relu1_1' }), (e: Error) => e instanceof FileError
      && /'features\.0\.weight' has shape \[32, 3, 3, 3\] but VGG19 needs \[64, 3, 3, 3\]/.test(e.message));
  } finally {
    await s.cleanup();
  }
});

test('.pth: truncated, garbage and non-state-dict files are FileErrors naming the file', async () => {
  const s = await scratch();
  try {
    const zip = torchZip(block1);
    const legacy = torchLegacy(block1);
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated-zip.pth', zip.subarray(0, zip.length >> 1), /not a readable zip archive/],
      ['truncated-legacy.pth', legacy.subarray(0, legacy.length - 1000), /truncated/],
      ['cut-pickle.pth', legacy.subarray(0, 60), /truncated/],
      ['garbage.pth', Buffer.from('this is not a checkpoint at all'), /not a PyTorch file/],
      ['empty-zip.pth', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]), /not a readable zip archive/],
      // A plain pickle of a list: a pickle, but not torch's magic number.
      ['pickle.pth', Buffer.from([0x80, 0x02, 0x5d, 0x2e]), /not a PyTorch file/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = s.path(name);
      await writeFile(path, bytes);
      await assert.rejects(readTorchPth(path), (e: Error) => e instanceof FileError && e.message.startsWith(path) && pattern.test(e.message), name);
    }
    await assert.rejects(openTorchPth(s.path('missing.pth')), (e: Error) => e instanceof FileError && /cannot read PyTorch weights/.test(e.message));
  } finally {
    await s.cleanup();
  }
});
