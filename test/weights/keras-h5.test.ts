/**
 * Keras HDF5 weights: files written here with h5wasm in both Keras namings (and the whole-model
 * `model_weights` layout) with VGG's real block-1 shapes, read back exactly and mapped to OIHW;
 * wrong shapes and non-HDF5 files are refused with the file named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import h5wasm from 'h5wasm/node';
import { kerasWeightKind, readKerasH5 } from '../../src/weights/keras-h5.js';
import { loadVggWeights } from '../../src/weights/vgg-weights.js';
import { hwioToOihw } from '../../src/weights/layout.js';
import { FileError } from '../../src/util/errors.js';
import { randomTensor } from '../helpers/random.js';
import { scratch } from '../helpers/files.js';

type Naming = 'keras1' | 'keras2';

const block1 = {
  block1_conv1: { kernel: randomTensor([3, 3, 3, 64], 11), bias: randomTensor([64], 12) },
  block1_conv2: { kernel: randomTensor([3, 3, 64, 64], 13), bias: randomTensor([64], 14) },
};

/** Writes layers the way Keras's save_weights does (layer_names, weight_names attributes). */
async function writeKeras(path: string, layers: Record<string, { kernel: { data: Float32Array; shape: number[] }; bias: { data: Float32Array; shape: number[] } }>, naming: Naming, wholeModel = false): Promise<void> {
  await h5wasm.ready;
  const file = new h5wasm.File(path, 'w');
  try {
    const root = wholeModel ? file.create_group('model_weights') : file;
    root.create_attribute('layer_names', ['input_1', ...Object.keys(layers), 'block1_pool']);
    root.create_group('input_1').create_attribute('weight_names', []);
    for (const [layer, { kernel, bias }] of Object.entries(layers)) {
      const group = root.create_group(layer);
      const names = naming === 'keras1' ? [`${layer}_W_1:0`, `${layer}_b_1:0`] : [`${layer}/kernel:0`, `${layer}/bias:0`];
      // Old h5py wrote fixed-length ASCII strings; newer files have variable-length ones.
      if (naming === 'keras1') group.create_attribute('weight_names', names, null, `A${Math.max(...names.map((n) => n.length))}`);
      else group.create_attribute('weight_names', names);
      const parent = naming === 'keras1' ? group : group.create_group(layer);
      const leaf = (name: string): string => name.split('/').pop()!;
      parent.create_dataset({ name: leaf(names[0]), data: kernel.data, shape: kernel.shape });
      parent.create_dataset({ name: leaf(names[1]), data: bias.data, shape: bias.shape });
    }
    root.create_group('block1_pool');
  } finally {
    file.close();
  }
}

test('weight kinds: both Keras namings read as kernel / bias', () => {
  assert.equal(kerasWeightKind('block1_conv1_W_1:0'), 'kernel');
  assert.equal(kerasWeightKind('block1_conv1_b_1:0'), 'bias');
  assert.equal(kerasWeightKind('block1_conv1/kernel:0'), 'kernel');
  assert.equal(kerasWeightKind('block1_conv1/bias:0'), 'bias');
  assert.equal(kerasWeightKind('block1_conv1_W:0'), 'kernel');
  assert.equal(kerasWeightKind('moving_mean:0'), 'moving_mean');
});

for (const [naming, wholeModel] of [['keras1', false], ['keras2', false], ['keras2', true]] as const) {
  test(`${naming}${wholeModel ? ' whole-model' : ''} .h5: read back exactly; VGG params are the kernels in OIHW`, async () => {
    const s = await scratch();
    try {
      const path = s.path('vgg.h5');
      await writeKeras(path, block1, naming, wholeModel);
      const read = await readKerasH5(path);
      assert.deepEqual([...read.keys()].sort(), ['block1_conv1/bias', 'block1_conv1/kernel', 'block1_conv2/bias', 'block1_conv2/kernel']);
      assert.deepEqual(read.get('block1_conv2/kernel'), block1.block1_conv2.kernel);
      assert.deepEqual(read.get('block1_conv1/bias'), block1.block1_conv1.bias);

      const vgg = await loadVggWeights(path, { lastTap: 'relu1_2' });
      assert.equal(vgg.format, 'keras-h5');
      assert.equal(vgg.preprocessing, 'caffe');
      assert.equal(vgg.params.size, 4);
      for (const layer of ['block1_conv1', 'block1_conv2'] as const) {
        assert.deepEqual(vgg.params.get(`${layer}.weight`), hwioToOihw(block1[layer].kernel));
        assert.deepEqual(vgg.params.get(`${layer}.bias`), block1[layer].bias);
      }
      // Spot-check the layout by hand: OIHW [o, i, h, w] = HWIO [h, w, i, o].
      const [o, i, h, w] = [5, 2, 1, 2];
      assert.equal(vgg.params.get('block1_conv1.weight')!.data[((o * 3 + i) * 3 + h) * 3 + w], block1.block1_conv1.kernel.data[((h * 3 + w) * 3 + i) * 64 + o]);
      await assert.rejects(loadVggWeights(path, { lastTap: 'conv2_1' }), (e: Error) => e instanceof FileError && /lacks 'block2_conv1\/kernel'/.test(e.message));
    } finally {
      await s.cleanup();
    }
  });
}

test('.h5: wrong shapes, Theano ordering and non-HDF5 files are FileErrors naming the file', async () => {
  const s = await scratch();
  try {
    const narrow = s.path('narrow.h5');
    await writeKeras(narrow, { block1_conv1: { kernel: randomTensor([3, 3, 3, 32], 1), bias: randomTensor([32], 2) } }, 'keras2');
    await assert.rejects(loadVggWeights(narrow, { lastTap: 'relu1_1' }), (e: Error) => e instanceof FileError && e.message.startsWith(narrow)
      && /'block1_conv1\/kernel' has shape \[3, 3, 3, 32\] but VGG19 needs \[3, 3, 3, 64\]/.test(e.message));

    const theano = s.path('th.h5');
    await writeKeras(theano, { block1_conv1: { kernel: randomTensor([64, 3, 3, 3], 1), bias: randomTensor([64], 2) } }, 'keras1');
    await assert.rejects(loadVggWeights(theano, { lastTap: 'relu1_1' }), /Theano-ordered/);

    const other = s.path('dense.h5');
    await writeKeras(other, { dense_1: { kernel: randomTensor([4, 2], 1), bias: randomTensor([2], 2) } }, 'keras2');
    await assert.rejects(loadVggWeights(other), (e: Error) => e instanceof FileError && /does not look like VGG weights: it holds dense_1\/kernel/.test(e.message));

    const whole = await readFile(narrow);
    const truncated = s.path('truncated.h5');
    await writeFile(truncated, whole.subarray(0, whole.length - 100));
    await assert.rejects(readKerasH5(truncated), (e: Error) => e instanceof FileError && e.message.startsWith(truncated) && /is truncated: its HDF5 header says \d+ bytes but the file has \d+/.test(e.message));

    const scrambled = s.path('scrambled.h5');
    await writeFile(scrambled, Buffer.from(whole).fill(0x55, 200, 2000));
    await assert.rejects(readKerasH5(scrambled), (e: Error) => e instanceof FileError && e.message.startsWith(scrambled) && /cannot (open|read)/.test(e.message));

    const garbage = s.path('garbage.h5');
    await writeFile(garbage, 'not hdf5 at all');
    await assert.rejects(readKerasH5(garbage), (e: Error) => e instanceof FileError && e.message.startsWith(garbage) && /not an HDF5 file/.test(e.message));
    await assert.rejects(readKerasH5(s.path('missing.h5')), (e: Error) => e instanceof FileError && /cannot read Keras weights/.test(e.message));
  } finally {
    await s.cleanup();
  }
});
