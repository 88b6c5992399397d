/**
 * The model door through the library API (importModel, resolveModel, openStyleModel — what the
 * server will call): non-regular and oversized files, external data anywhere in the file, models
 * that cannot work (unknown operator, classifier, half size, NaN), NaN at stylise time, and an
 * execution provider that is not installed. Each refusal is one line naming the file and the
 * reason, leaves the source unchanged and the store empty. Crafted models are written by
 * test/helpers/hostile-models.ts; nothing here is a committed binary.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { importModel, listModels, resolveModel, storeDir } from '../../src/weights/store.js';
import { checkNoExternalData, MODEL_MAX_BYTES } from '../../src/weights/model-door.js';
import { openStyleModel } from '../../src/style/model.js';
import { stylizeImage } from '../../src/style/transfer.js';
import { clearModelCache, loadModel } from '../../src/runtime/index.js';
import { dataPath } from '../helpers/data.js';
import { copyCheckpoint, editManifest, listTree, scratch } from '../helpers/files.js';
import { zooLikeModel } from '../helpers/models.js';
import { classifierModel, halvingModel, nanModel, nanOnBrightModel, secretModel, unknownOpModel, type SecretPlace } from '../helpers/hostile-models.js';
import { imageFrom, smoothImage } from '../image/fixtures.js';

const laMuse = dataPath('models/fast-style/la_muse');
const noFifo = process.platform === 'win32' ? 'no mkfifo on Windows' : false;

after(() => clearModelCache());

/** A scratch folder that is also the model store (PASTICHE_HOME) for one test. */
async function withStore(): Promise<Awaited<ReturnType<typeof scratch>>> {
  const s = await scratch('pastiche-door-');
  const previous = process.env.PASTICHE_HOME;
  const builtins = process.env.PASTICHE_BUILTINS;
  process.env.PASTICHE_HOME = s.path('home');
  // The store alone: built-in styles (tested in builtins.test.ts) would join every listing.
  process.env.PASTICHE_BUILTINS = '';
  return {
    ...s,
    cleanup: async () => {
      if (previous === undefined) delete process.env.PASTICHE_HOME;
      else process.env.PASTICHE_HOME = previous;
      if (builtins === undefined) delete process.env.PASTICHE_BUILTINS;
      else process.env.PASTICHE_BUILTINS = builtins;
      await s.cleanup();
    },
  };
}

const sha256 = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

/** Asserts a rejection whose message is one line naming `file` and matching `problem`. */
async function refused(promise: Promise<unknown>, file: string, problem: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error, `expected an Error, got ${String(error)}`);
    assert.ok(error.message.startsWith(`${file}: `), `message should start with ${file}: ${error.message}`);
    assert.match(error.message, problem);
    assert.ok(!/[\n\u001b]/.test(error.message), `message should be one plain line: ${JSON.stringify(error.message)}`);
    return true;
  });
}

/** The source is refused by importModel, resolveModel and openStyleModel alike, and nothing is stored. */
async function refusedEverywhere(source: string, problem: RegExp): Promise<void> {
  const before = await sha256(source).catch(() => null);
  await refused(importModel(source, { name: 'crafted' }), source, problem);
  await refused(resolveModel(source), source, problem);
  await refused(openStyleModel(source), source, problem);
  assert.deepEqual(await listTree(storeDir()), [], 'nothing in the store');
  assert.equal(await sha256(source).catch(() => null), before, 'the source is unchanged');
}

test('non-regular files are refused before reading: /dev/zero, a FIFO, a folder named x.onnx', { skip: noFifo, timeout: 30_000 }, async () => {
  const store = await withStore();
  try {
    const fifo = store.path('pipe.onnx');
    execFileSync('mkfifo', [fifo]);
    const folder = store.path('folder.onnx');
    await mkdir(folder);
    for (const [path, kind] of [['/dev/zero', 'a character device'], [fifo, 'a FIFO'], [folder, 'a folder']]) {
      await refused(importModel(path, { name: 'crafted' }), path, new RegExp(`: not a regular file \\(${kind}\\)$`));
      await refused(resolveModel(path), path, /: not a regular file/);
      await refused(openStyleModel(path), path, /: not a regular file/);
    }
    assert.deepEqual(await listTree(storeDir()), []);
    // A folder (or FIFO) in the store under a model's name: named as such, and `models list` still works.
    await mkdir(store.path('home', 'models', 'odd.onnx'), { recursive: true });
    await refused(resolveModel('odd'), store.path('home', 'models', 'odd.onnx'), /: not a regular file \(a folder\)$/);
    assert.deepEqual((await listModels()).map((m) => [m.name, m.architecture]), [['odd', 'unreadable']]);
  } finally {
    await store.cleanup();
  }
});

test(`a model file over ${MODEL_MAX_BYTES / 2 ** 30} GiB is refused from its size, before reading (a sparse file)`, async () => {
  const store = await withStore();
  try {
    const big = store.path('big.onnx');
    await writeFile(big, zooLikeModel());
    await truncate(big, MODEL_MAX_BYTES + 1);
    await refusedEverywhere(big, /: too large for a model file \(2147483649 bytes, over the limit of 2 GiB\)$/);
  } finally {
    await store.cleanup();
  }
});

const PLACES: SecretPlace[] = ['initializer', 'constant', 'subgraph'];
const WHERE: Record<SecretPlace, RegExp> = {
  initializer: /: initializer "secret" refers to external data in "secret\.txt"; pastiche only opens models that hold all their weights inside the file$/,
  constant: /: tensor attribute "value" of Constant node "const_secret_bytes" refers to external data in "secret\.txt"/,
  subgraph: /: tensor attribute "value" of Constant node "const_branch_out" in a subgraph of If node "pick" refers to external data in "secret\.txt"/,
};

test('external data is refused wherever it hides, so a crafted model cannot read a local file into the output', async () => {
  const store = await withStore();
  const cwd = process.cwd();
  // onnxruntime resolves external data against the working directory, where the secret lies.
  process.chdir(store.dir);
  try {
    const secret = 'hunter2: the password';
    await writeFile(store.path('secret.txt'), secret);
    for (const place of PLACES) {
      const file = store.path(`${place}.onnx`);
      await writeFile(file, secretModel('secret.txt', place));
      await refusedEverywhere(file, WHERE[place]);
    }
    // The control: the same model with the bytes inside the file is a valid style model, which
    // shows the refusals above are for the external data alone (and what a leak would look like).
    const inline = store.path('inline.onnx');
    await writeFile(inline, secretModel('', 'initializer', new TextEncoder().encode(secret)));
    const out = await stylizeImage(await openStyleModel(inline), smoothImage(8, 8), { margin: 0 });
    assert.deepEqual([out.data[0], out.data[64], out.data[128]], [...secret.slice(0, 3)].map((ch) => ch.charCodeAt(0)));
  } finally {
    process.chdir(cwd);
    await store.cleanup();
  }
});

test('checkNoExternalData finds references in sparse initializers, local functions and by external_data alone', () => {
  const { onnx } = onnxProto;
  const external = { name: 't', dataType: 1, dims: [1], externalData: [{ key: 'location', value: 'x\n\u001b[31m' }] };
  const sparse = onnx.ModelProto.create({ graph: { sparseInitializer: [{ values: external, indices: { dataType: 7, dims: [1], int64Data: [0] }, dims: [4] }] } });
  assert.throws(() => checkNoExternalData(sparse, 'a.onnx'), { message: /^a\.onnx: sparse initializer "t" refers to external data in "x\\n\\u001b\[31m"; / });
  const fn = onnx.ModelProto.create({ functions: [{ name: 'f', node: [{ opType: 'Constant', name: 'c', attribute: [{ name: 'value', type: 4, t: external }] }] }] });
  assert.throws(() => checkNoExternalData(fn, 'b.onnx'), { message: /^b\.onnx: tensor attribute "value" of Constant node "c" in function "f" refers to external data/ });
  assert.doesNotThrow(() => checkNoExternalData(onnx.ModelProto.decode(zooLikeModel()), 'zoo.onnx'));
});

const UNFIT: { name: string; make: () => Uint8Array; problem: RegExp }[] = [
  { name: 'unknown', make: unknownOpModel, problem: /: not a model onnxruntime can load \(operator 'FrobnicateStyle' is unknown to onnxruntime at opset 17\)$/ },
  { name: 'classifier', make: classifierModel, problem: /: a style model must return an image the size of its input, but for \[1, 3, 64, 64\] it returned \[1, 3, 1, 1\]$/ },
  { name: 'half', make: halvingModel, problem: /: a style model must return an image the size of its input, but for \[1, 3, 64, 64\] it returned \[1, 3, 32, 32\]$/ },
  { name: 'nan', make: nanModel, problem: /: produced non-finite values \(NaN or Infinity in 12288 of 12288 outputs on a 64x64 test image\)$/ },
];

test('models that cannot work are refused at import and at open, after a trial run on a 64x64 image', async () => {
  const store = await withStore();
  try {
    for (const c of UNFIT) {
      const file = store.path(`${c.name}.onnx`);
      await writeFile(file, c.make());
      await refusedEverywhere(file, c.problem);
    }
  } finally {
    await store.cleanup();
  }
});

test('NaN at stylise time is an error naming the model, not black pixels', async () => {
  const store = await withStore();
  try {
    const file = store.path('bright.onnx');
    await writeFile(file, nanOnBrightModel());
    const style = await openStyleModel(file); // finite on the trial image
    const grey = await stylizeImage(style, imageFrom(12, 10, () => 128), { margin: 0 });
    assert.ok(grey.data.every((v) => v === 128));
    await refused(stylizeImage(style, imageFrom(12, 12, () => 255), { margin: 0 }), file, /: produced non-finite values \(NaN or Infinity in 432 of 432 outputs\)$/);
  } finally {
    await store.cleanup();
  }
});

test('an execution provider that is not installed says so and lists the available ones, not blaming the model', async (t) => {
  const bytes = zooLikeModel();
  const loaded = await loadModel(bytes, { executionProvider: 'cuda' }, 'zoo.onnx').then(() => true, (error: unknown) => error);
  if (loaded === true) return t.skip('the CUDA provider loads on this machine');
  assert.ok(loaded instanceof RangeError, `expected a RangeError, got ${String(loaded)}`);
  assert.match(loaded.message, /^Execution provider 'cuda' is not available here \(onnxruntime-node could not load it: .+\); available: cpu\b/);
  assert.ok(!loaded.message.includes('zoo.onnx') && !/not a model/.test(loaded.message), loaded.message);
});

test('a checkpoint folder whose manifest points outside it, or at a FIFO, is refused', { skip: laMuse.skip || noFifo, timeout: 30_000 }, async () => {
  const store = await withStore();
  try {
    const outside = await copyCheckpoint(laMuse.path, store.path('outside'));
    await editManifest(outside, (m) => { m.Variable_9.filename = '../secret'; });
    await refused(importModel(outside), store.path('outside', 'manifest.json'), /: entry 'Variable_9' names "\.\.\/secret", which is not a file inside the checkpoint folder$/);
    const piped = await copyCheckpoint(laMuse.path, store.path('piped'));
    await editManifest(piped, (m) => { m.Variable_9.filename = 'pipe'; });
    execFileSync('mkfifo', [store.path('piped', 'pipe')]);
    await refused(resolveModel(piped), store.path('piped', 'pipe'), /: not a regular file \(a FIFO\)$/);
    assert.deepEqual(await listTree(storeDir()), []);
  } finally {
    await store.cleanup();
  }
});
