/**
 * The model store: importing lengstrom checkpoints and foreign ONNX files, listing, replacing,
 * removing and exporting them, resolving `--model`, and the errors for broken sources.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, stat, truncate, writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { exportModel, importModel, listModels, META, removeModel, resolveModel, storeDir } from '../../src/weights/store.js';
import { openStyleModel } from '../../src/style/model.js';
import { stylizeImage } from '../../src/style/transfer.js';
import { clearModelCache } from '../../src/runtime/index.js';
import { dataPath } from '../helpers/data.js';
import { copyCheckpoint, editManifest, listTree, scratch, tempLeftovers } from '../helpers/files.js';
import { maxAbsDiff } from '../helpers/compare.js';
import { rank2Model, ZOO_SCALE, ZOO_SHIFT, zooLikeModel } from '../helpers/models.js';
import { imageFrom, smoothImage } from '../image/fixtures.js';

const laMuse = dataPath('models/fast-style/la_muse');

after(() => clearModelCache());

/** A scratch folder that is also the model store (PASTICHE_HOME) for the duration of one test. */
async function withStore(): Promise<{ path: (...parts: string[]) => string; cleanup: () => Promise<void> }> {
  const s = await scratch('pastiche-store-');
  const previous = process.env.PASTICHE_HOME;
  const builtins = process.env.PASTICHE_BUILTINS;
  process.env.PASTICHE_HOME = s.path('home');
  // The store alone: built-in styles (tested in builtins.test.ts) would join every listing.
  process.env.PASTICHE_BUILTINS = '';
  return {
    path: s.path,
    cleanup: async () => {
      if (previous === undefined) delete process.env.PASTICHE_HOME;
      else process.env.PASTICHE_HOME = previous;
      if (builtins === undefined) delete process.env.PASTICHE_BUILTINS;
      else process.env.PASTICHE_BUILTINS = builtins;
      await s.cleanup();
    },
  };
}

/** Input dims of an ONNX file as written, read with onnx-proto alone: numbers or symbol names. */
async function inputDims(file: string): Promise<(number | string)[]> {
  const model = onnxProto.onnx.ModelProto.decode(await readFile(file));
  const input = model.graph!.input!.find((i) => !(model.graph!.initializer ?? []).some((t) => t.name === i.name))!;
  return input.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
}

/** Asserts that `promise` rejects with an Error whose message names `file` and matches `problem`. */
async function rejectsNaming(promise: Promise<unknown>, file: string, problem: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    assert.ok(error.message.includes(file), `message should name ${file}: ${error.message}`);
    assert.match(error.message, problem);
    assert.ok(!error.message.includes('\n'), `message should be one line: ${error.message}`);
    return true;
  });
}

test('importing a lengstrom checkpoint folder stores it with its architecture and metadata', { skip: laMuse.skip }, async () => {
  const store = await withStore();
  try {
    const before = Date.now();
    const imported = await importModel(laMuse.path);
    assert.equal(imported.name, 'la_muse');
    assert.equal(imported.architecture, 'lengstrom');
    assert.equal(imported.path, join(storeDir(), 'models', 'la_muse.onnx'));
    const list = await listModels();
    assert.deepEqual(list.map((m) => m.name), ['la_muse']);
    const [m] = list;
    assert.equal(m.architecture, 'lengstrom');
    assert.equal(m.source, resolve(laMuse.path));
    assert.equal(m.description, 'lengstrom style network imported from la_muse');
    assert.ok(Date.parse(m.created) >= before - 1000 && Date.parse(m.created) <= Date.now(), `created ${m.created}`);
    assert.equal(m.bytes, (await stat(m.path)).size);
    assert.ok(m.bytes > 6_000_000, `${m.bytes} bytes: the 1.7 M float weights should be in the file`);
    assert.deepEqual(await inputDims(m.path), ['N', 3, 'H', 'W']);
  } finally {
    await store.cleanup();
  }
});

test('importing a taken name fails without force and replaces the model with it', { skip: laMuse.skip }, async () => {
  const store = await withStore();
  try {
    await importModel(laMuse.path, { name: 'muse', description: 'first' });
    await assert.rejects(importModel(laMuse.path, { name: 'muse', description: 'second' }), /A model named 'muse' is already in the store .*--force/);
    assert.equal((await listModels())[0].description, 'first');
    await importModel(laMuse.path, { name: 'muse', description: 'second', force: true });
    const list = await listModels();
    assert.deepEqual(list.map((m) => [m.name, m.description]), [['muse', 'second']]);
    assert.deepEqual(tempLeftovers(await listTree(store.path('home'))), []);
  } finally {
    await store.cleanup();
  }
});

test('remove deletes a stored model; removing an absent one fails naming it', { skip: laMuse.skip }, async () => {
  const store = await withStore();
  try {
    await importModel(laMuse.path);
    await removeModel('la_muse');
    assert.deepEqual(await listModels(), []);
    await assert.rejects(removeModel('la_muse'), /No model named 'la_muse' in the store/);
  } finally {
    await store.cleanup();
  }
});

test('an exported model runs in plain onnxruntime-node at two sizes, matching pastiche', { skip: laMuse.skip }, async () => {
  const store = await withStore();
  try {
    await importModel(laMuse.path);
    const file = store.path('out', 'la_muse.onnx');
    await exportModel('la_muse', file);
    assert.deepEqual(await readFile(file), await readFile(join(storeDir(), 'models', 'la_muse.onnx')));
    // Symbolic height and width, as written in the file: one file serves every size.
    assert.deepEqual(await inputDims(file), ['N', 3, 'H', 'W']);

    const session = await ort.InferenceSession.create(file);
    assert.deepEqual([session.inputNames, session.outputNames], [['image'], ['stylized']]);
    const style = await openStyleModel('la_muse');
    for (const [width, height] of [[64, 48], [96, 80]]) {
      const content = smoothImage(width, height);
      const result = await session.run({ image: new ort.Tensor('float32', content.data.slice(), [1, 3, height, width]) });
      const out = result.stylized;
      assert.deepEqual(out.dims, [1, 3, height, width]);
      const data = out.data as Float32Array;
      let min = Infinity;
      let max = -Infinity;
      for (const v of data) { min = Math.min(min, v); max = Math.max(max, v); }
      assert.ok(min >= 0 && max <= 255 && max - min > 50, `${width}x${height}: values ${min}..${max}`);
      // Sides that are multiples of 4, no margin, no tiles: pastiche feeds the network the image as is.
      const ours = await stylizeImage(style, content, { margin: 0, tile: 0 });
      assert.ok(maxAbsDiff(data, ours.data) < 1e-3, `${width}x${height}: max difference ${maxAbsDiff(data, ours.data)}`);
    }
    await session.release();
  } finally {
    await store.cleanup();
  }
});

test('resolveModel finds a store name, an .onnx path and a checkpoint folder', { skip: laMuse.skip }, async () => {
  const store = await withStore();
  try {
    await importModel(laMuse.path);
    const file = store.path('exported.onnx');
    await exportModel('la_muse', file);
    const byName = await resolveModel('la_muse');
    const byFile = await resolveModel(file);
    const byDir = await resolveModel(laMuse.path);
    assert.deepEqual([byName.label, byFile.label, byDir.label], ['la_muse', file, laMuse.path]);
    for (const r of [byName, byFile, byDir]) assert.deepEqual([r.input, r.output], ['image', 'stylized']);
    assert.equal(byName.metadata[META.architecture], 'lengstrom');
    assert.equal(byFile.metadata[META.name], 'la_muse');
    assert.deepEqual(Buffer.from(byName.bytes), await readFile(file));
    // A checkpoint folder is built on the fly, with the same weights as the stored model.
    const style = await openStyleModel(laMuse.path);
    const stored = await openStyleModel('la_muse');
    const content = smoothImage(32, 24);
    const a = await stylizeImage(style, content, { margin: 0 });
    const b = await stylizeImage(stored, content, { margin: 0 });
    assert.ok(maxAbsDiff(a.data, b.data) < 1e-3);
  } finally {
    await store.cleanup();
  }
});

test('an unknown model name lists the available ones, or says the store is empty', { skip: laMuse.skip }, async () => {
  const store = await withStore();
  try {
    await assert.rejects(resolveModel('nosuch'), /No model named 'nosuch' in the store .*it is empty: add one with `pastiche models import`/);
    await importModel(laMuse.path);
    await importModel(laMuse.path, { name: 'muse2' });
    await assert.rejects(resolveModel('nosuch'), (error: Error) => {
      assert.match(error.message, /^No model named 'nosuch' in the store \(.*\) nor built in; available: la_muse, muse2$/);
      assert.ok(error.message.includes(join(storeDir(), 'models')));
      return true;
    });
  } finally {
    await store.cleanup();
  }
});

test('a fixed-size model-zoo-like ONNX file imports with symbolic sizes and runs at 100x60', async () => {
  const store = await withStore();
  try {
    const source = store.path('zoo.onnx');
    await writeFile(source, zooLikeModel());
    assert.deepEqual(await inputDims(source), [1, 3, 224, 224]);
    const imported = await importModel(source);
    assert.deepEqual([imported.name, imported.architecture], ['zoo', 'external']);
    assert.deepEqual(await inputDims(imported.path), ['N', 3, 'H', 'W']);
    const style = await openStyleModel('zoo');
    assert.deepEqual([style.input, style.output], ['input1', 'output1']);
    const content = imageFrom(100, 60, (x, y, c) => (x * 2 + y * 3 + c * 40) % 256);
    const out = await stylizeImage(style, content);
    assert.deepEqual([out.width, out.height], [100, 60]);
    const expected = content.data.map((v) => ZOO_SCALE * v + ZOO_SHIFT);
    assert.ok(maxAbsDiff(out.data, expected) < 1e-3, `max difference ${maxAbsDiff(out.data, expected)}`);
  } finally {
    await store.cleanup();
  }
});

test('broken sources fail naming the file and the problem, and import nothing', async (t) => {
  const store = await withStore();
  const broken = async (name: string): Promise<string> => copyCheckpoint(laMuse.path, store.path(name));
  try {
    await t.test('a checkpoint whose variable file is missing', { skip: laMuse.skip }, async () => {
      const dir = await broken('missing-file');
      await rm(join(dir, 'Variable_7'));
      await rejectsNaming(importModel(dir), join(dir, 'Variable_7'), /cannot read variable 'Variable_7' \(ENOENT/);
      await rejectsNaming(resolveModel(dir), join(dir, 'Variable_7'), /cannot read variable 'Variable_7'/);
    });
    await t.test('a manifest entry whose shape does not match the file size', { skip: laMuse.skip }, async () => {
      const dir = await broken('wrong-size');
      await editManifest(dir, (m) => { m.Variable_3.shape = [3, 3, 32, 32]; });
      await rejectsNaming(importModel(dir), join(dir, 'Variable_3'), /variable 'Variable_3' of shape \[3, 3, 32, 32\] needs 36864 bytes but the file has 73728/);
    });
    await t.test('a truncated variable file', { skip: laMuse.skip }, async () => {
      const dir = await broken('truncated');
      await truncate(join(dir, 'Variable_3'), 1000);
      await rejectsNaming(importModel(dir), join(dir, 'Variable_3'), /needs 73728 bytes but the file has 1000/);
    });
    await t.test('a variable whose (consistent) shape does not fit the network', { skip: laMuse.skip }, async () => {
      const dir = await broken('wrong-shape');
      await editManifest(dir, (m) => { m.Variable_3.shape = [3, 3, 64, 32]; });
      await rejectsNaming(importModel(dir), join(dir, 'Variable_3'), /variable 'Variable_3' has shape \[3, 3, 64, 32\], which does not fit conv2\.conv2d\.weight of the lengstrom network/);
    });
    await t.test('a manifest without one of the variables', { skip: laMuse.skip }, async () => {
      const dir = await broken('missing-entry');
      await editManifest(dir, (m) => { delete m.Variable_5; });
      await rejectsNaming(importModel(dir), join(dir, 'manifest.json'), /missing variable 'Variable_5'/);
    });
    await t.test('a folder that is not a checkpoint', async () => {
      const dir = store.path('empty-folder');
      await mkdir(dir);
      await rejectsNaming(importModel(dir), dir, /not a checkpoint directory: cannot read manifest\.json/);
    });
    await t.test('a text file named .onnx', async () => {
      const file = store.path('x.onnx');
      await writeFile(file, 'this is not a model\n');
      await rejectsNaming(importModel(file), file, /not an ONNX model/);
      await rejectsNaming(resolveModel(file), file, /not an ONNX model/);
    });
    await t.test('an ONNX file whose input is not an image', async () => {
      const file = store.path('features.onnx');
      await writeFile(file, rank2Model());
      await rejectsNaming(importModel(file), file, /a style model needs a float32 image input of shape \[N, 3, H, W\]/);
    });
    await t.test('a path that does not exist', async () => {
      const file = store.path('nowhere', 'model.onnx');
      await rejectsNaming(importModel(file), file, /no such model file or directory/);
    });
    assert.deepEqual(await listModels(), []);
    assert.deepEqual(await listTree(store.path('home')), []);
  } finally {
    await store.cleanup();
  }
});
