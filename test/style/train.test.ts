/**
 * trainTransformer, the acceptance tests of training at library level: overfitting one batch,
 * resuming bit for bit from a checkpoint file (after a planned stop and after an abort),
 * fine-tuning from given parameters, distillation from a teacher ONNX model, and the refusals
 * (bad options, memory, a checkpoint of another setup, a checkpoint that cannot be written).
 * Networks are tiny (compact 4-8-8, one residual block), crops 32x32, VGG seeded random weights to
 * relu2_2 (the shared ImageNet VGG too, when present), so a step takes ~20 ms and every case runs
 * on photos this file generates. onnxruntime runs on one thread: deterministic, so runs compare
 * byte for byte.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTransformer, initTransformerParams, resolveArchitecture } from '../../src/nets/transformer.js';
import { toOnnxBytes } from '../../src/graph/index.js';
import { clearModelCache } from '../../src/runtime/index.js';
import { openStyleModel } from '../../src/style/model.js';
import { trainTransformer, type TrainOptions, type TrainResult } from '../../src/style/train.js';
import { loadCheckpoint, saveCheckpoint, type TrainState } from '../../src/style/train-checkpoint.js';
import { listPhotos } from '../../src/style/train-data.js';
import { loadStartingParams } from '../../src/style/train-init.js';
import { FileError } from '../../src/util/errors.js';
import { loadVggWeights } from '../../src/weights/vgg-weights.js';
import { dataPath } from '../helpers/data.js';
import { scratch, tempLeftovers } from '../helpers/files.js';
import {
  assertSameParams, CONTENT_LAYERS, LAST_TAP, randomVgg, STYLE_LAYERS, stripedStyle, TINY, writePhotos,
} from '../helpers/train.js';

const imagenetVgg = dataPath('models/vgg19-imagenet-tfjs-f32-partial');

let tmp: Awaited<ReturnType<typeof scratch>>;
/** Two photos: with batch 2 every step sees the same two images (in either order). */
let pair: string[];
/** One photo: with batch 1 every step sees exactly the same input. */
let single: string[];
/** Five photos and an unreadable file: batches cross epochs, and one file is skipped. */
let mixed: string[];
const vgg = randomVgg();
const style = { image: stripedStyle(), name: 'stripes.png' };

before(async () => {
  tmp = await scratch('pastiche-train-');
  pair = await writePhotos(tmp.path('pair'), 2);
  single = (await writePhotos(tmp.path('single'), 2, 5)).slice(0, 1);
  await writePhotos(tmp.path('mixed'), 5, 11);
  await writeFile(tmp.path('mixed', 'broken.jpg'), 'not a photo');
  mixed = await listPhotos(tmp.path('mixed'));
});

after(async () => {
  await clearModelCache();
  await tmp.cleanup();
});

/** A perceptual-loss run of the tiny network at batch 2, 32x32, on one thread. */
function perceptual(photos: readonly string[], extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    architecture: TINY, photos, styles: [style], vgg, contentLayers: CONTENT_LAYERS, styleLayers: STYLE_LAYERS,
    styleSize: 64, batch: 2, size: 32, steps: 6, learningRate: 1e-2, runtime: { threads: 1 }, ...extra,
  };
}

/** Asserts that two training states are the same to the bit, wall-clock seconds aside. */
function assertSameState(actual: TrainState, expected: TrainState, what: string): void {
  assert.equal(actual.step, expected.step, `${what}: step`);
  assert.equal(actual.imagesSeen, expected.imagesSeen, `${what}: images seen`);
  assert.deepEqual(actual.order, expected.order, `${what}: data order`);
  assert.deepEqual(actual.history, expected.history, `${what}: loss history`);
  assert.deepEqual(actual.record, expected.record, `${what}: record`);
  assertSameParams(actual.params, expected.params, `${what}: parameters`);
  assertSameParams(actual.adam.m, expected.adam.m, `${what}: Adam's first moments`);
  assertSameParams(actual.adam.v, expected.adam.v, `${what}: Adam's second moments`);
  assert.equal(actual.adam.step, expected.adam.step, `${what}: Adam's step count`);
}

const ratio = (r: TrainResult, term?: string): number => {
  const value = (i: number): number => (term ? r.state.history.at(i)!.terms[term] : r.state.history.at(i)!.loss);
  return value(0) / value(-1);
};

// ---- Learning -----------------------------------------------------------------------------------

for (const [label, source] of [['random VGG', null], ['ImageNet VGG19 (float32, blocks 1-3)', imagenetVgg]] as const) {
  test(`overfitting two photos: the loss falls more than 5x in 60 steps (${label})`, { skip: source?.skip ?? false }, async (t) => {
    const weights = source ? await loadVggWeights(source.path, { depth: 19, lastTap: LAST_TAP }) : vgg;
    // Content and TV weights low enough that the style term, which the network can drive down, dominates.
    const result = await trainTransformer(perceptual(pair, { vgg: weights, steps: 60, learningRate: 5e-3, contentWeight: 1, tvWeight: 1 }));
    const history = result.state.history;
    assert.equal(history.length, 60);
    assert.ok(history.every((e) => Number.isFinite(e.loss) && e.loss > 0));
    const fall = ratio(result);
    t.diagnostic(`loss ${history[0].loss.toExponential(3)} → ${history.at(-1)!.loss.toExponential(3)}: ${fall.toFixed(1)}x (style term ${ratio(result, 'style').toFixed(1)}x)`);
    // Measured 10.8x (random VGG) and 11.7x (ImageNet).
    assert.ok(fall >= 5, `the loss fell only ${fall.toFixed(2)}x in 60 steps`);
    assert.ok(result.onnx.byteLength > 0);
  });
}

// ---- Exact resume -------------------------------------------------------------------------------

test('resuming from a checkpoint file is bit-identical to training straight through, after a planned stop and after an abort', async () => {
  const skipped: string[] = [];
  const options = perceptual(mixed, { onSkip: (file) => skipped.push(file) });
  const midway: TrainState[] = [];
  const straight = await trainTransformer({ ...options, checkpointEvery: 3, onCheckpoint: async (s) => { midway.push(s); } });
  assert.equal(straight.aborted, false);
  assert.deepEqual(midway.map((s) => s.step), [3, 6], 'a checkpoint every 3 steps and one at the end');
  assert.equal(straight.state.imagesSeen, 12);
  assert.ok(straight.state.order.epoch >= 2, `12 images of 5 readable photos run over two epochs (${JSON.stringify(straight.state.order)})`);
  assert.deepEqual(skipped, [tmp.path('mixed', 'broken.jpg')], 'the unreadable file is reported once');
  assert.deepEqual([...straight.skippedPhotos.keys()], skipped, 'and counted in the result');

  // Planned stop: 3 steps, the final state through a real checkpoint file, then 3 more.
  const first = await trainTransformer({ ...options, steps: 3 });
  const file = tmp.path('resume', 'checkpoint.safetensors');
  await saveCheckpoint(file, first.state);
  const saved = await loadCheckpoint(file);
  assertSameState(saved, { ...first.state, record: saved.record }, 'checkpoint file round trip');
  assert.equal(saved.record.steps, 3);
  assertSameState({ ...first.state, record: midway[0].record }, midway[0], 'a 3-step run and the periodic checkpoint at step 3 of a 6-step run');
  const resumed = await trainTransformer({ ...options, resume: saved });
  assertSameState(resumed.state, straight.state, 'resumed after a planned stop');
  assert.ok(resumed.state.seconds >= saved.seconds, 'training time accumulates over sessions');

  // Abort: stop after step 2 of 6; the checkpoint written on the way out continues exactly.
  const controller = new AbortController();
  let onAbort: TrainState | undefined;
  const stopped = await trainTransformer({
    ...options, signal: controller.signal,
    onProgress: (p) => { if (p.step === 2) controller.abort(); },
    onCheckpoint: async (s) => { onAbort = s; await saveCheckpoint(file, s); },
  });
  assert.equal(stopped.aborted, true);
  assert.equal(stopped.state.step, 2);
  assert.equal(onAbort?.step, 2, 'a checkpoint is written when aborted');
  const afterAbort = await trainTransformer({ ...options, resume: await loadCheckpoint(file) });
  assertSameState(afterAbort.state, straight.state, 'resumed after an abort');
  assert.deepEqual(tempLeftovers(await readdir(tmp.path('resume'))), []);
});

// ---- Fine-tuning --------------------------------------------------------------------------------

test('--init starts from the given parameters: the first loss is theirs, from a checkpoint or an ONNX file', async () => {
  // Batch 1 on a single photo: every step sees the same input, so a loss depends on the parameters only.
  const options = perceptual(single, { batch: 1, steps: 21 });
  let at20: TrainState | undefined;
  const previous = await trainTransformer({ ...options, checkpointEvery: 20, onCheckpoint: async (s) => { at20 ??= s; } });
  assert.equal(at20?.step, 20);
  const checkpoint = tmp.path('init', 'checkpoint.safetensors');
  await saveCheckpoint(checkpoint, at20!);
  const onnx = tmp.path('init', 'step20.onnx');
  await writeFile(onnx, toOnnxBytes(buildTransformer(TINY.config, at20!.params).graph));
  const lossAt20 = previous.state.history[20].loss;

  for (const source of [checkpoint, onnx]) {
    const start = await loadStartingParams(source);
    const tuned = await trainTransformer({ ...options, steps: 3, init: { params: start.params, label: source } });
    assert.equal(tuned.state.history[0].loss, lossAt20, `the first loss from ${source} is the loss of the parameters after step 20`);
    assert.equal(tuned.state.record.init, source);
    assert.ok(tuned.state.history[0].loss < previous.state.history[0].loss / 2, 'and well below a fresh start');
  }

  // The seeded fresh parameters given as init reproduce the fresh run exactly.
  const fresh = await trainTransformer({ ...options, steps: 3 });
  const same = await trainTransformer({ ...options, steps: 3, init: { params: initTransformerParams(TINY.config, 1), label: 'seed 1' } });
  assert.deepEqual(same.state.history, fresh.state.history);
  assertSameParams(same.state.params, fresh.state.params, 'init with the seed\'s own parameters');
});

// ---- Distillation -------------------------------------------------------------------------------

test('distilling a teacher ONNX model into a smaller student: the pixel loss falls', async (t) => {
  const teacherNet = resolveArchitecture('compact', { widths: [8, 16, 16], residualBlocks: 2 });
  const teacherFile = tmp.path('teacher.onnx');
  await writeFile(teacherFile, toOnnxBytes(buildTransformer(teacherNet.config, initTransformerParams(teacherNet.config, 5)).graph));
  const teacher = await openStyleModel(teacherFile, { threads: 1 });
  const result = await trainTransformer({
    architecture: TINY, photos: pair, batch: 2, size: 32, steps: 40, learningRate: 1e-2, runtime: { threads: 1 },
    teacher: { session: teacher.session, input: teacher.input, output: teacher.output, label: teacherFile },
  });
  const fall = ratio(result, 'pixel');
  t.diagnostic(`pixel loss ${result.state.history[0].terms.pixel.toExponential(3)} → ${result.state.history.at(-1)!.terms.pixel.toExponential(3)}: ${fall.toFixed(1)}x`);
  assert.ok(result.state.history.every((e) => e.terms.feature === 0), 'no feature term without a feature weight');
  assert.ok(fall >= 3, `the pixel loss fell only ${fall.toFixed(2)}x in 40 steps`);
  assert.deepEqual(result.state.record.loss, { kind: 'distill', teacher: teacherFile, pixelWeight: 1, featureWeight: 0 });

  // With a VGG feature term as well.
  const withFeatures = await trainTransformer({
    architecture: TINY, photos: pair, batch: 2, size: 32, steps: 3, learningRate: 1e-2, runtime: { threads: 1 },
    teacher: { session: teacher.session, input: teacher.input, output: teacher.output, label: teacherFile },
    vgg, featureWeight: 1e-2, featureLayer: 'relu1_2',
  });
  assert.ok(withFeatures.state.history.every((e) => e.terms.feature > 0));
});

// ---- Refusals -----------------------------------------------------------------------------------

test('bad options are refused before any work, each naming the problem', async () => {
  let called = false;
  const watch = { onProgress: () => { called = true; }, onCheckpoint: async () => { called = true; } };
  const refuse = (extra: Partial<TrainOptions>, error: RegExp | (new (...args: any[]) => Error), message?: RegExp): Promise<void> =>
    assert.rejects(trainTransformer({ ...perceptual(pair, watch), ...extra }), (e: Error) => {
      if (typeof error === 'function') assert.ok(e instanceof error, `${e.name}: ${e.message}`);
      assert.match(e.message, message ?? (error as RegExp));
      return true;
    });
  await refuse({ teacher: { session: null as never, input: 'x', output: 'y', label: 't' } }, TypeError, /either style images or a teacher model/);
  await refuse({ styles: [] }, TypeError, /either style images or a teacher model/);
  await refuse({ photos: [] }, RangeError, /at least one training photo/);
  await refuse({ size: 34 }, RangeError, /multiple of 4 for size .* 34/);
  await refuse({ size: 16 }, RangeError, /between 32 and 4096 for size but received 16/);
  await refuse({ batch: 0 }, RangeError, /batch/);
  await refuse({ styleLayers: ['relu9_1'] }, RangeError, /relu9_1/);
  await refuse({ batch: 256, size: 4096 }, RangeError, /batch 256 and 4096x4096 needs about [\d.]+ GiB of memory but the budget is [\d.]+ GiB/);
  await refuse({ memoryBudget: 2 ** 20 }, RangeError, /needs about [\d.]+ GiB of memory but the budget is 0\.0 GiB/);
  const other = resolveArchitecture('compact', { widths: [4, 8, 4], residualBlocks: 1 });
  await refuse({ init: { params: initTransformerParams(other.config, 1), label: 'other' } }, RangeError, /lack 'conv3\.conv2d\.weight' of shape \[8, 8, 3, 3\] .*has \[4, 8, 3, 3\]/);
  assert.equal(called, false, 'nothing ran');
});

test('a checkpoint of another setup is refused, naming each difference', async () => {
  const first = await trainTransformer(perceptual(pair, { steps: 1 }));
  await assert.rejects(trainTransformer(perceptual(pair, { batch: 1, learningRate: 2e-2, resume: first.state })), (e: Error) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /different training setup/);
    assert.match(e.message, /batch \(checkpoint: 2, now: 1\)/);
    assert.match(e.message, /learningRate \(checkpoint: 0\.01, now: 0\.02\)/);
    return true;
  });
  // A longer run and another name are not differences.
  const longer = await trainTransformer(perceptual(pair, { steps: 2, name: 'other', resume: first.state }));
  assert.equal(longer.state.step, 2);
});

test('photos that are all unreadable fail with the folder and the first problem', async () => {
  await mkdir(tmp.path('unreadable'));
  await writeFile(tmp.path('unreadable', 'a.jpg'), 'not a jpeg');
  await writeFile(tmp.path('unreadable', 'b.png'), '');
  let checkpoints = 0;
  await assert.rejects(trainTransformer(perceptual(await listPhotos(tmp.path('unreadable')), { onCheckpoint: async () => { checkpoints++; } })), (e: Error) => {
    assert.ok(e instanceof FileError);
    assert.match(e.message, new RegExp(`^${tmp.path('unreadable')}: cannot read any of the 2 photos \\(first failure: [ab]\\.(jpg|png): `));
    return true;
  });
  assert.equal(checkpoints, 0, 'no checkpoint of a run that never stepped');
});

test('a checkpoint that cannot be written fails the run clearly and leaves the previous checkpoint intact', async () => {
  // The checkpoint folder is reached through a link; replacing the link by a regular file makes
  // the next write fail (ENOTDIR) even for root, whom a read-only chmod would not stop.
  const real = tmp.path('ckpt-real');
  const link = tmp.path('ckpt-link');
  await mkdir(real);
  await symlink(real, link);
  const target = join(link, 'checkpoint.safetensors');
  let written = 0;
  await assert.rejects(trainTransformer(perceptual(pair, {
    steps: 6, checkpointEvery: 2,
    onCheckpoint: async (s) => {
      await saveCheckpoint(target, s);
      written = s.step;
      if (s.step === 2) {
        await rm(link);
        await writeFile(link, 'the disk is full');
      }
    },
  })), (e: Error) => {
    assert.ok(e instanceof FileError, `${e.name}: ${e.message}`);
    assert.match(e.message, new RegExp(`^${target}: cannot write here \\(`));
    return true;
  });
  assert.equal(written, 2, 'the step-4 checkpoint failed');
  const survivor = await loadCheckpoint(join(real, 'checkpoint.safetensors'));
  assert.equal(survivor.step, 2);
  assert.equal(survivor.history.length, 2);
  assert.deepEqual(await readdir(real), ['checkpoint.safetensors'], 'no temporary file left');
});
