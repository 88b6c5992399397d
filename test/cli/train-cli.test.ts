/**
 * `pastiche train` run as users run it (node bin/pastiche.js): help; a model trained into the
 * store with its metadata, then used by `stylize` and listed; resuming bit for bit; Ctrl-C saving
 * a checkpoint that --resume continues; distillation; fine-tuning with --init; and for each bad
 * input an exit code, one clear line and nothing written in the store. Everything is tiny (compact
 * 4-8-8 with one residual block, 32x32 crops, seeded random VGG weights to relu2_2 in a
 * .safetensors file), so a run costs about the ~1.5 s start-up of a spawn and no shared data is
 * needed. onnxruntime runs on one thread (--threads 1): deterministic, so runs compare byte for byte.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { program } from '../../src/cli/main.js';
import { toOnnxBytes } from '../../src/graph/index.js';
import { imageSize, readImage, writeImage } from '../../src/image/codec.js';
import { buildTransformer, initTransformerParams, resolveArchitecture } from '../../src/nets/transformer.js';
import { TRAIN_DEFAULTS } from '../../src/style/train.js';
import { loadCheckpoint } from '../../src/style/train-checkpoint.js';
import { decodeOnnx, readMetadata } from '../../src/weights/onnx-file.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { listTree, scratch, snapshotTree, tempLeftovers } from '../helpers/files.js';
import { assertSameParams, stripedStyle, TINY_FLAGS, writePhotos, writeRandomVgg } from '../helpers/train.js';
import { noiseImage, smoothImage } from '../image/fixtures.js';

let dir: Awaited<ReturnType<typeof scratch>>;
let home: string;
let env: Record<string, string>;
let photos: string;
let style: string;
let style2: string;
let vgg: string;
let teacher: string;

before(async () => {
  dir = await scratch('pastiche-train-cli-');
  home = dir.path('home');
  env = { PASTICHE_HOME: home, PASTICHE_OFFLINE: '1' };
  photos = dir.path('photos');
  await writePhotos(photos, 4);
  style = dir.path('stripes.png');
  await writeImage(style, stripedStyle());
  style2 = dir.path('noise.jpg');
  await writeImage(style2, noiseImage(48, 40, 9));
  vgg = await writeRandomVgg(dir.path('vgg.safetensors'));
  const net = resolveArchitecture('compact', { widths: [8, 16, 16], residualBlocks: 2 });
  teacher = dir.path('teacher.onnx');
  await writeFile(teacher, toOnnxBytes(buildTransformer(net.config, initTransformerParams(net.config, 5)).graph));
});

after(async () => {
  await dir.cleanup();
});

const show = (r: CliResult): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** What every training run here shares: the photos, the random VGG and its layers, a tiny network. */
const TINY_RUN = (): string[] => [
  '--data', photos, '--vgg', vgg, '--content-layers', 'relu2_2', '--style-layers', 'relu1_1,relu2_1',
  ...TINY_FLAGS, '--size', '32', '--batch', '2', '--style-size', '64', '--learning-rate', '0.01', '--threads', '1',
];

const train = (args: readonly string[], options: Parameters<typeof runCli>[1] = {}): Promise<CliResult> =>
  runCli(['train', ...args], { env, ...options });

interface StepEvent { event: 'step'; step: number; steps: number; loss: number; terms: Record<string, number> }

/** --json output: one line per step, then the result as an indented JSON object. */
function parseJson(stdout: string): { steps: StepEvent[]; result: Record<string, any> } {
  const lines = stdout.split('\n');
  const start = lines.indexOf('{');
  assert.ok(start >= 0, `no result object in:\n${stdout}`);
  return {
    steps: lines.slice(0, start).filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as StepEvent),
    result: JSON.parse(lines.slice(start).join('\n')),
  };
}

const checkpointOf = (name: string, root = home): string => join(root, 'training', name, 'checkpoint.safetensors');
const modelOf = (name: string, root = home): string => join(root, 'models', `${name}.onnx`);

// ---- Help --------------------------------------------------------------------------------------

const TRAIN_FLAGS = ['--style', '-s', '--teacher', '--data', '-d', '--name', '-n', '--arch', '--widths', '--blocks', '--batch',
  '--size', '--style-size', '--steps', '--epochs', '--learning-rate', '--content-weight', '--style-weight', '--tv-weight',
  '--content-layers', '--style-layers', '--style-layer-weights', '--pixel-weight', '--feature-weight', '--feature-layer',
  '--stability', '--stability-noise', '--stability-shift', '--vgg', '--vgg-depth', '--seed', '--init', '--resume', '--checkpoint-every', '--preview-every', '--force', '--json',
  '--threads', '--execution-provider', '--help'];
/** Flags that have no default to state: what to train on, and the alternatives to --steps. */
const NO_DEFAULT = ['--teacher', '--data', '--epochs', '--init', '--resume', '--help'];

test('train --help names every flag and states each default', async () => {
  const r = await runCli(['train', '--help'], { env });
  assert.equal(r.code, 0, show(r));
  for (const flag of TRAIN_FLAGS) assert.ok(new RegExp(`(^|[\\s,])${flag}\\b`).test(r.stdout), `train --help lacks ${flag}`);
  const d = TRAIN_DEFAULTS;
  const help = r.stdout.replace(/\s+/g, ' ');
  for (const [flag, value] of [['--batch', d.batch], ['--size', d.size], ['--style-size', d.styleSize], ['--steps', d.steps],
    ['--learning-rate', d.learningRate], ['--content-weight', d.contentWeight], ['--style-weight', d.styleWeight],
    ['--tv-weight', d.tvWeight], ['--pixel-weight', d.pixelWeight], ['--feature-weight', d.featureWeight], ['--seed', d.seed],
    ['--checkpoint-every', d.checkpointEvery], ['--preview-every', d.previewEvery]] as const) {
    // The option's own text runs up to the next option (' --x' or ' -x, --x').
    assert.match(help, new RegExp(`${flag} <[^>]+> (?:(?! -{1,2}[a-z]).)*\\(default: ${value}\\b`), `${flag} states its default ${value}`);
  }
  assert.match(help, /--arch <name> .*default: pytorch-examples; compact when distilling/);
  assert.match(help, /--content-layers <list> .*default: relu4_2\)/);
  assert.match(help, /--style-layers <list> .*default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1\)/);

  // The list above is complete, and every option but those without one states a default.
  const command = program().commands.find((c) => c.name() === 'train') as Command;
  for (const option of command.options) {
    assert.ok(TRAIN_FLAGS.includes(option.long!), `${option.long} is missing from this test's flag list`);
    if (!NO_DEFAULT.includes(option.long!)) {
      assert.ok(/default/.test(option.description) || option.defaultValue !== undefined, `${option.long}'s help states no default`);
    }
  }
});

// ---- Into the store, then used -------------------------------------------------------------------

test('a trained model lands in the store with its metadata, stylize runs on it and models list shows it', async () => {
  const r = await train([...TINY_RUN(), '--style', `${style}:1`, '--style', `${style2}:0.5`, '--style-layer-weights', '1,0.5',
    '--name', 'stripes', '--steps', '3', '--content-weight', '1', '--style-weight', '100', '--tv-weight', '1', '--seed', '3',
    '--checkpoint-every', '2', '--preview-every', '2', '--vgg-depth', '19', '--execution-provider', 'cpu', '--json']);
  assert.equal(r.code, 0, show(r));
  const { steps, result } = parseJson(r.stdout);
  assert.deepEqual(steps.map((s) => [s.event, s.step, s.steps]), [['step', 1, 3], ['step', 2, 3], ['step', 3, 3]]);
  assert.ok(steps.every((s) => Number.isFinite(s.loss) && s.terms.style > 0 && s.terms.content > 0 && s.terms.tv > 0));
  assert.deepEqual([result.name, result.steps, result.imagesSeen, result.interrupted, result.path], ['stripes', 3, 6, false, modelOf('stripes')]);

  assert.deepEqual(await listTree(join(home, 'training', 'stripes')),
    ['checkpoint.safetensors', 'log.jsonl', 'loss.svg', 'preview-000002.png', 'preview-000003.png', 'preview.png', 'training.json']);
  const log = (await readFile(join(home, 'training', 'stripes', 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as StepEvent);
  assert.deepEqual(log.map((e) => e.step), [1, 2, 3]);
  assert.equal((await loadCheckpoint(checkpointOf('stripes'))).step, 3);

  const meta = readMetadata(decodeOnnx(await readFile(modelOf('stripes')), 'stripes'));
  assert.equal(meta['pastiche.architecture'], 'compact[4,8,8]x1');
  assert.equal(meta['pastiche.name'], 'stripes');
  const training = JSON.parse(meta['pastiche.training']);
  assert.deepEqual([training.stepsDone, training.imagesSeen, training.batch, training.size, training.seed], [3, 6, 2, 32, 3]);
  assert.equal(training.loss.kind, 'perceptual');
  assert.deepEqual(training.loss.styleLayerWeights, [1, 0.5]);
  assert.deepEqual(training.loss.styles.map((s: any) => [s.name, s.path, s.givenWeight]), [['stripes.png', style, 1], ['noise.jpg', style2, 0.5]]);
  for (const [i, path] of [style, style2].entries()) {
    const { data } = (await readImage(path)).image;
    assert.equal(training.loss.styles[i].sha256, createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex'), `sha256 of ${path}'s pixels`);
  }
  assert.ok(Math.abs(training.loss.styles[0].weight - 2 / 3) < 1e-12, 'blend weights are normalised');
  assert.deepEqual(JSON.parse(await readFile(join(home, 'training', 'stripes', 'training.json'), 'utf8')), training);

  const input = dir.path('photo.png');
  await writeImage(input, smoothImage(50, 38));
  const output = dir.path('stylized', 'photo.png');
  const [stylized, list] = await Promise.all([runCli(['stylize', input, '--model', 'stripes', '-o', output], { env }), runCli(['models', 'list'], { env })]);
  assert.equal(stylized.code, 0, show(stylized));
  assert.deepEqual(await imageSize(output), { width: 50, height: 38 });
  assert.equal(list.code, 0, show(list));
  assert.match(list.stdout, /^stripes\s+compact\[4,8,8\]x1\s+.*trained by pastiche on stripes\.png \+ noise\.jpg, 3 steps$/m);
});

// ---- Resume --------------------------------------------------------------------------------------

test('--steps 2 then --resume --steps 4 ends byte for byte where a straight --steps 4 run ends', async () => {
  const args = [...TINY_RUN(), '--style', style];
  const [first, straight] = await Promise.all([
    train([...args, '--name', 'halves', '--steps', '2']),
    train([...args, '--name', 'straight', '--steps', '4']),
  ]);
  assert.equal(first.code, 0, show(first));
  assert.equal(straight.code, 0, show(straight));
  const resumed = await train(['--resume', 'halves', '--steps', '4', '--threads', '1', '--json']);
  assert.equal(resumed.code, 0, show(resumed));
  assert.deepEqual(parseJson(resumed.stdout).steps.map((s) => s.step), [3, 4], 'the resumed run continues at step 3');

  const a = await loadCheckpoint(checkpointOf('halves'));
  const b = await loadCheckpoint(checkpointOf('straight'));
  assert.deepEqual([a.step, a.imagesSeen], [4, 8]);
  assert.deepEqual(a.order, b.order, 'data order');
  assert.deepEqual(a.history, b.history, 'loss history');
  assertSameParams(a.params, b.params, 'parameters');
  assertSameParams(a.adam.m, b.adam.m, 'Adam\'s first moments');
  assertSameParams(a.adam.v, b.adam.v, 'Adam\'s second moments');
  const log = (await readFile(join(home, 'training', 'halves', 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l).step);
  assert.deepEqual(log, [1, 2, 3, 4], 'the log holds the whole run');
});

test('with 2 threads too, a resumed run ends byte for byte where a straight run ends (the real runs\' setting)', async () => {
  const args = [...TINY_RUN().filter((a, i, all) => a !== '--threads' && all[i - 1] !== '--threads'), '--threads', '2', '--size', '64', '--style', style];
  const first = await train([...args, '--name', 'halves2', '--steps', '2']);
  const straight = await train([...args, '--name', 'straight2', '--steps', '3']);
  assert.equal(first.code, 0, show(first));
  assert.equal(straight.code, 0, show(straight));
  const resumed = await train(['--resume', 'halves2', '--steps', '3', '--threads', '2']);
  assert.equal(resumed.code, 0, show(resumed));
  const [a, b] = [await loadCheckpoint(checkpointOf('halves2')), await loadCheckpoint(checkpointOf('straight2'))];
  assert.deepEqual(a.history, b.history, 'loss history');
  assertSameParams(a.params, b.params, 'parameters');
});

test('--resume of a run with a named architecture (no custom widths) continues it', async () => {
  const args = TINY_RUN().filter((a, i, all) => !['--widths', '--blocks'].includes(a) && !['--widths', '--blocks'].includes(all[i - 1]));
  const first = await train([...args, '--style', style, '--name', 'plain', '--steps', '1', '--size', '32']);
  assert.equal(first.code, 0, show(first));
  const resumed = await train(['--resume', 'plain', '--steps', '2', '--threads', '1', '--json']);
  assert.equal(resumed.code, 0, show(resumed));
  assert.deepEqual(parseJson(resumed.stdout).steps.map((s) => s.step), [2]);
  assert.equal((await loadCheckpoint(checkpointOf('plain'))).record.architecture, 'compact');
});

/** An onSpawn hook sending `signal` once the run's log shows its first step. */
function signalAfterFirstStep(log: string, signal: NodeJS.Signals): (child: import('node:child_process').ChildProcess) => void {
  return (child) => {
    void (async () => {
      for (let waited = 0; waited < 100_000; waited += 50) {
        const text = await readFile(log, 'utf8').catch(() => '');
        if (text.split('\n').some((l) => l.startsWith('{'))) {
          child.kill(signal);
          return;
        }
        await sleep(50);
      }
    })();
  };
}

test('SIGTERM saves a checkpoint like Ctrl-C and exits 143, without the Ctrl-C hint', async () => {
  const log = join(home, 'training', 'term', 'log.jsonl');
  const r = await train([...TINY_RUN(), '--style', style, '--name', 'term', '--steps', '100000', '--checkpoint-every', '100000'], {
    timeoutMs: 120_000,
    onSpawn: signalAfterFirstStep(log, 'SIGTERM'),
  });
  assert.equal(r.code, 143, show(r));
  const stopped = /Stopped at step (\d+)\/100000; checkpoint saved in/.exec(r.stderr);
  assert.ok(stopped, show(r));
  assert.equal((await loadCheckpoint(checkpointOf('term'))).step, Number(stopped[1]));
  assert.doesNotMatch(r.stderr, /Ctrl-C/);
  assert.deepEqual(tempLeftovers(await listTree(home)), []);
});

test('Ctrl-C saves a checkpoint and exits 130; --resume continues from its step', async () => {
  const log = join(home, 'training', 'ctrl', 'log.jsonl');
  let interruptedAt = 0;
  const r = await train([...TINY_RUN(), '--style', style, '--name', 'ctrl', '--steps', '100000', '--checkpoint-every', '100000'], {
    timeoutMs: 120_000,
    onSpawn: signalAfterFirstStep(log, 'SIGINT'),
  });
  assert.equal(r.code, 130, show(r));
  const stopped = /Stopped at step (\d+)\/100000; checkpoint saved in (.*)\. Continue with: pastiche train --resume ctrl/.exec(r.stderr);
  assert.ok(stopped, show(r));
  interruptedAt = Number(stopped[1]);
  assert.ok(interruptedAt >= 1);
  const checkpoint = await loadCheckpoint(checkpointOf('ctrl'));
  assert.equal(checkpoint.step, interruptedAt);
  assert.equal(checkpoint.history.length, interruptedAt);
  assert.equal(existsSync(modelOf('ctrl')), false, 'an interrupted run puts no model in the store');
  assert.deepEqual(tempLeftovers(await listTree(home)), []);

  const again = await train([...TINY_RUN(), '--style', style, '--name', 'ctrl', '--steps', '5']);
  assert.equal(again.code, 1, show(again));
  assert.match(again.stderr, /A training run for 'ctrl' has a checkpoint in .*; continue it with --resume ctrl, or pass --force to start over/);

  // Ending the run early: --steps as many as done lands the model as it is, training nothing more.
  const early = await train(['--resume', 'ctrl', '--steps', String(interruptedAt), '--threads', '1', '--json']);
  assert.equal(early.code, 0, show(early));
  assert.deepEqual(parseJson(early.stdout).steps, [], 'no step was trained');
  assert.equal(parseJson(early.stdout).result.steps, interruptedAt);
  assert.ok(existsSync(modelOf('ctrl')), 'the model as it was at the stop is in the store');
  await rm(modelOf('ctrl'));

  // By the checkpoint's path this time (the test above resumes by name).
  const resumed = await train(['--resume', checkpointOf('ctrl'), '--steps', String(interruptedAt + 2), '--threads', '1', '--json']);
  assert.equal(resumed.code, 0, show(resumed));
  const { steps, result } = parseJson(resumed.stdout);
  assert.deepEqual(steps.map((s) => s.step), [interruptedAt + 1, interruptedAt + 2]);
  assert.equal(result.steps, interruptedAt + 2);
  assert.ok(existsSync(modelOf('ctrl')));
});

// ---- Distillation and fine-tuning ------------------------------------------------------------------

test('--teacher distils a model into the store, named after the teacher file by default; the student stylizes', async (t) => {
  const r = await train(['--teacher', teacher, '--data', photos, ...TINY_FLAGS, '--size', '32', '--batch', '2',
    '--epochs', '10', '--learning-rate', '0.01', '--pixel-weight', '1', '--feature-weight', '0.01', '--feature-layer', 'relu1_2',
    '--vgg', vgg, '--threads', '1', '--json']);
  assert.equal(r.code, 0, show(r));
  const { steps, result } = parseJson(r.stdout);
  assert.equal(result.steps, 20, '10 epochs of 4 photos at batch 2');
  t.diagnostic(`pixel loss ${steps[0].terms.pixel.toExponential(3)} → ${steps.at(-1)!.terms.pixel.toExponential(3)}`);
  assert.ok(steps.at(-1)!.terms.pixel < steps[0].terms.pixel / 2, `the pixel loss falls: ${steps[0].terms.pixel} → ${steps.at(-1)!.terms.pixel}`);
  assert.ok(steps.every((s) => s.terms.feature > 0));
  const meta = readMetadata(decodeOnnx(await readFile(modelOf('teacher-compact')), 'teacher-compact'));
  assert.match(meta['pastiche.description'], /compact\[4,8,8\]x1 student of .*teacher\.onnx, distilled by pastiche in 20 steps/);
  assert.deepEqual(JSON.parse(meta['pastiche.training']).loss.teacher, teacher);

  const input = dir.path('for-student.jpg');
  await writeImage(input, smoothImage(44, 36));
  const output = dir.path('student.png');
  const stylized = await runCli(['stylize', input, '-m', 'teacher-compact', '-o', output], { env });
  assert.equal(stylized.code, 0, show(stylized));
  assert.deepEqual(await imageSize(output), { width: 44, height: 36 });
});

test('--init starts from a stored model: its first loss is below a fresh start\'s', async (t) => {
  const base = [...TINY_RUN(), '--style', style, '--seed', '4', '--json'];
  const fresh = await train([...base, '--name', 'warmup', '--steps', '8']);
  assert.equal(fresh.code, 0, show(fresh));
  const tuned = await train([...base, '--name', 'tuned', '--steps', '2', '--init', 'warmup']);
  assert.equal(tuned.code, 0, show(tuned));
  const [warm, fine] = [parseJson(fresh.stdout).steps, parseJson(tuned.stdout).steps];
  t.diagnostic(`first loss: fresh ${warm[0].loss.toExponential(3)}, after 8 warm-up steps ${warm.at(-1)!.loss.toExponential(3)}, fine-tuned ${fine[0].loss.toExponential(3)}`);
  // Same seed, so the same first batch: the fine-tuned run starts where warm-up ended, not at its start.
  assert.ok(fine[0].loss < warm[0].loss / 2, `fine-tuned first loss ${fine[0].loss} vs fresh ${warm[0].loss}`);
  assert.equal(JSON.parse(await readFile(join(home, 'training', 'tuned', 'training.json'), 'utf8')).init, 'warmup');
});

test('--vgg-depth 16 trains with VGG16 (Johnson\'s loss network): relu1_2…relu2_2 taps, recorded as VGG16', async () => {
  const vgg16 = await writeRandomVgg(dir.path('vgg16.safetensors'), 'relu2_2', 16);
  const r = await train(['--data', photos, '--vgg', vgg16, '--vgg-depth', '16', '--content-layers', 'relu2_2', '--style-layers', 'relu1_2,relu2_2',
    ...TINY_FLAGS, '--size', '32', '--batch', '2', '--style-size', '64', '--threads', '1', '--style', style, '--steps', '2', '--name', 'vgg16', '--json']);
  assert.equal(r.code, 0, show(r));
  assert.ok(parseJson(r.stdout).steps.every((s) => s.terms.style > 0 && s.terms.content > 0));
  const record = JSON.parse(await readFile(join(home, 'training', 'vgg16', 'training.json'), 'utf8'));
  assert.equal(record.loss.vgg, 'VGG16/caffe');
  // VGG19's layer names that VGG16 lacks are refused before any work.
  const bad = await train(['--data', photos, '--vgg', vgg16, '--vgg-depth', '16', '--style-layers', 'relu5_4', ...TINY_FLAGS, '--style', style, '--name', 'never16']);
  assert.notEqual(bad.code, 0, show(bad));
  assert.match(bad.stderr, /relu5_4/);
});

test('--stability adds the flicker term to distillation and to fine-tuning (--init); the record keeps it, --resume too', async () => {
  const distilled = await train(['--teacher', teacher, '--data', photos, ...TINY_FLAGS, '--size', '32', '--batch', '2', '--steps', '3',
    '--learning-rate', '0.01', '--stability', '0.5', '--stability-noise', '2', '--threads', '1', '--name', 'stable-student', '--json']);
  assert.equal(distilled.code, 0, show(distilled));
  const { steps } = parseJson(distilled.stdout);
  assert.ok(steps.every((s) => s.terms.stability > 0), JSON.stringify(steps.map((s) => s.terms)));
  const meta = readMetadata(decodeOnnx(await readFile(modelOf('stable-student')), 'stable-student'));
  assert.deepEqual(JSON.parse(meta['pastiche.training']).loss.stability, { weight: 0.5, noise: 2, shift: 1 });
  const listed = await runCli(['models', 'list'], { env });
  assert.match(listed.stdout, /^stable-student .*distilled by pastiche in 3 steps; stabilised against flicker \(--stability 0\.5\)$/m);

  const tuned = await train([...TINY_RUN(), '--style', style, '--init', 'stable-student', '--stability', '2', '--stability-shift', '1.5',
    '--steps', '2', '--checkpoint-every', '1', '--name', 'stable-tuned', '--json']);
  assert.equal(tuned.code, 0, show(tuned));
  assert.ok(parseJson(tuned.stdout).steps.every((s) => s.terms.stability > 0 && s.terms.style > 0));
  const record = JSON.parse(await readFile(join(home, 'training', 'stable-tuned', 'training.json'), 'utf8'));
  assert.deepEqual(record.loss.stability, { weight: 2, noise: 3, shift: 1.5 });
  const resumed = await train(['--resume', 'stable-tuned', '--steps', '3', '--threads', '1', '--json']);
  assert.equal(resumed.code, 0, show(resumed));
  assert.ok(parseJson(resumed.stdout).steps.every((s) => s.terms.stability > 0));

  const bad = await train([...TINY_RUN(), '--style', style, '--stability', '-1', '--name', 'never']);
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /Expected a number of at least 0 for --stability but received -1/);
});

// ---- Bad input -----------------------------------------------------------------------------------

interface BadCase {
  readonly name: string;
  readonly args: () => Promise<string[]> | string[];
  /** What the one line on stderr must say. */
  readonly problem: RegExp;
}

test('bad input: exit code, one line on stderr naming the problem, nothing written in the store', { concurrency: 3 }, async (t) => {
  // A store holding a finished run, 'taken', to collide with and to resume wrongly.
  const badHome = dir.path('bad-home');
  const badEnv = { ...env, PASTICHE_HOME: badHome };
  const taken = await runCli(['train', ...TINY_RUN(), '--style', style, '--name', 'taken', '--steps', '1'], { env: badEnv });
  assert.equal(taken.code, 0, show(taken));
  const before = await snapshotTree(badHome);

  const folder = async (name: string, files: Record<string, string>): Promise<string> => {
    const path = dir.path('bad', name);
    await mkdir(path, { recursive: true });
    for (const [file, content] of Object.entries(files)) await writeFile(join(path, file), content);
    return path;
  };
  const styled = (...more: string[]): string[] => [...TINY_RUN(), '--style', style, '--name', 'fresh', ...more];
  const cases: BadCase[] = [
    { name: 'a missing data folder', args: () => [...styled(), '--data', dir.path('nosuch')], problem: new RegExp(`^pastiche: ${dir.path('nosuch')}: no such folder$`) },
    {
      name: 'an empty data folder',
      args: async () => [...styled(), '--data', await folder('empty', { 'notes.txt': 'no photos here' })],
      problem: new RegExp(`^pastiche: ${dir.path('bad', 'empty')}: holds no JPEG, PNG or WebP photos$`),
    },
    {
      name: 'a data folder of unreadable images',
      args: async () => [...styled(), '--data', await folder('unreadable', { 'a.jpg': 'not a jpeg', 'b.png': '' })],
      problem: new RegExp(`^pastiche: ${dir.path('bad', 'unreadable')}: cannot read any of the 2 photos \\(first failure: [ab]\\.(jpg|png): `),
    },
    { name: 'a missing style image', args: () => [...TINY_RUN(), '--style', dir.path('nosuch.jpg'), '--name', 'fresh'], problem: new RegExp(`^pastiche: ${dir.path('nosuch.jpg')}: .*not found`) },
    {
      name: 'a corrupt style image',
      args: async () => {
        const path = join(await folder('corrupt', {}), 'style.jpg');
        const good = await readFile(style);
        await writeFile(path, Buffer.concat([good.subarray(0, 40), Buffer.alloc(40)]));
        return [...TINY_RUN(), '--style', path, '--name', 'fresh'];
      },
      problem: new RegExp(`^pastiche: ${dir.path('bad', 'corrupt', 'style.jpg')}: .*corrupt`),
    },
    { name: '--size 16', args: () => styled('--size', '16'), problem: /^pastiche: Expected a number between 32 and 4096 for --size but received 16$/ },
    { name: '--size 34 (not a multiple of 4)', args: () => styled('--size', '34'), problem: /^pastiche: Expected a multiple of 4 for --size .* but received 34$/ },
    { name: '--batch 300', args: () => styled('--batch', '300'), problem: /^pastiche: Expected a number between 1 and 256 for --batch but received 300$/ },
    {
      name: '--batch 256 --size 4096 (too big for memory)',
      args: () => styled('--batch', '256', '--size', '4096'),
      problem: /^pastiche: Training at batch 256 and 4096x4096 needs about [\d.]+ GiB of memory but the budget is [\d.]+ GiB; lower --batch or --size$/,
    },
    {
      name: '--resume with another --batch',
      args: () => ['--resume', 'taken', '--batch', '3', '--threads', '1'],
      problem: /^pastiche: The checkpoint was made by a different training setup; it differs in batch \(checkpoint: 2, now: 3\)$/,
    },
    { name: '--resume of a run that does not exist', args: () => ['--resume', 'nosuch'], problem: /^pastiche: nosuch: no training checkpoint to resume/ },
    { name: '--name of a model in the store', args: () => [...TINY_RUN(), '--style', style, '--name', 'taken'], problem: /^pastiche: A model named 'taken' is already in the store; pass --force to replace it, or --name another$/ },
    { name: '--style and --teacher together', args: () => styled('--teacher', teacher), problem: /^pastiche: Expected --style \(train a style\) or --teacher \(distil a model\), not both or neither$/ },
    { name: 'neither --style nor --teacher', args: () => [...TINY_RUN(), '--name', 'fresh'], problem: /^pastiche: Expected --style \(train a style\) or --teacher \(distil a model\), not both or neither$/ },
    { name: '--steps and --epochs together', args: () => styled('--steps', '2', '--epochs', '1'), problem: /^pastiche: Expected --steps or --epochs, not both$/ },
  ];
  await Promise.all(cases.map((c) => t.test(c.name, async () => {
    const r = await runCli(['train', ...await c.args()], { env: badEnv });
    // Bad option values ("Expected …") are usage errors, like commander's: exit 2.
    assert.equal(r.code, c.problem.source.startsWith('^pastiche: Expected') ? 2 : 1, show(r));
    assert.equal(r.errorLines.length, 1, `expected one line on stderr:\n${r.stderr}`);
    assert.match(r.errorLines[0], c.problem);
    assert.equal(r.stdout, '');
  })));
  assert.deepEqual(await snapshotTree(badHome), before, 'nothing was written in the store');

  // --force replaces the model.
  const forced = await runCli(['train', ...TINY_RUN(), '--style', style, '--name', 'taken', '--steps', '2', '--force', '--json'], { env: badEnv });
  assert.equal(forced.code, 0, show(forced));
  assert.equal(parseJson(forced.stdout).result.steps, 2);
  assert.equal(JSON.parse(readMetadata(decodeOnnx(await readFile(modelOf('taken', badHome)), 'taken'))['pastiche.training']).stepsDone, 2);
});
