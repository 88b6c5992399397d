/**
 * The temporal blend (src/video/temporal.ts) against a reference written here from its definition
 * — w = strength · (1 − smoothstep(NOISE, MOTION, change)), change the largest channel difference
 * widened to 3x3, history dropped at a cut — then through stylizeVideo and the CLI's --temporal.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createTemporalBlend, TEMPORAL_MOTION, TEMPORAL_NOISE, TEMPORAL_SCENE_CUT,
} from '../../src/video/temporal.js';
import { checkStylizeOptions, stylizeVideo } from '../../src/style/transfer.js';
import { openStyleModel } from '../../src/style/model.js';
import { countFrames } from '../../src/video/ffmpeg.js';
import { decodeFrames } from '../../src/video/decode.js';
import { writeImage } from '../../src/image/codec.js';
import { program } from '../../src/cli/main.js';
import { rng } from '../helpers/random.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { zooLikeModel } from '../helpers/models.js';
import { smoothImage } from '../image/fixtures.js';
import { ffmpeg, listDir, makeClip, meanAbsDiff, tempDir } from './clips.js';

const W = 48;
const H = 32;
const BYTES = W * H * 3;

/** Reference weight of the previous output for an input change d (0..255), from the definition. */
function weight(strength: number, d: number): number {
  const t = Math.min(1, Math.max(0, (d - TEMPORAL_NOISE) / (TEMPORAL_MOTION - TEMPORAL_NOISE)));
  return strength * (1 - t * t * (3 - 2 * t));
}

function randomFrame(next: () => number, lo = 0, hi = 256): Uint8Array {
  const f = new Uint8Array(BYTES);
  for (let i = 0; i < BYTES; i++) f[i] = lo + Math.floor((hi - lo) * next());
  return f;
}

/** `base` plus uniform noise in [-amplitude, amplitude], clamped: a network that repaints every frame. */
function jitter(base: Uint8Array, amplitude: number, next: () => number): Uint8Array {
  const f = new Uint8Array(base.length);
  for (let i = 0; i < base.length; i++) f[i] = Math.max(0, Math.min(255, Math.round(base[i] + amplitude * (2 * next() - 1))));
  return f;
}

/** Mean absolute change between consecutive frames of a sequence. */
function flicker(frames: Uint8Array[]): number {
  let sum = 0;
  for (let t = 1; t < frames.length; t++) sum += meanAbsDiff(frames[t], frames[t - 1]);
  return sum / (frames.length - 1);
}

const solid = (value: number): Uint8Array => new Uint8Array(BYTES).fill(value);

test('a static input with a jittering output: the blend is a running average, flicker cut ~7x', () => {
  const next = rng(14);
  const input = randomFrame(next);
  const base = randomFrame(next, 40, 216);
  const outputs = Array.from({ length: 40 }, () => jitter(base, 20, next));
  const strength = 0.8;
  const blend = createTemporalBlend({ strength, width: W, height: H });
  const blended = outputs.map((o) => blend.apply(input, o.slice()));

  // Independent: out_t = s·out_{t-1} + (1 − s)·new_t in floats (the blend rounds to bytes each frame).
  const reference: Float64Array[] = [];
  for (const [t, o] of outputs.entries()) {
    reference.push(t === 0 ? Float64Array.from(o) : Float64Array.from(o, (v, i) => strength * reference[t - 1][i] + (1 - strength) * v));
  }
  let worst = 0;
  for (const [t, b] of blended.entries()) for (let i = 0; i < BYTES; i++) worst = Math.max(worst, Math.abs(b[i] - reference[t][i]));
  assert.ok(worst <= 3, `largest difference from the float running average ${worst}`);

  // Past the warm-up: (1−s)·sqrt((1 + (1−s)/(1+s))/2) ≈ 0.15 of the unblended flicker in theory.
  const [before, afterBlend] = [flicker(outputs.slice(10)), flicker(blended.slice(10))];
  assert.ok(before > 10, `unblended flicker ${before}`);
  assert.ok(afterBlend < 0.25 * before, `flicker ${afterBlend} blended vs ${before} unblended`);
});

test('each input change gets the weight of the ramp; a moved region takes the new output', () => {
  // Stripes of 4 columns, each with its own input change; the middle two see only their own stripe in 3x3.
  const changes = [0, 3, 6, 9, 12, 15, 18, 21, 24, 30, 0, 200];
  assert.equal(changes.length * 4, W);
  const strength = 0.9;
  const blend = createTemporalBlend({ strength, width: W, height: H });
  const first = solid(20);
  blend.apply(first, solid(0));
  const moved = solid(20);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) moved.fill(20 + changes[Math.floor(x / 4)], (y * W + x) * 3, (y * W + x) * 3 + 3);
  const mean = changes.reduce((a, b) => a + b, 0) / changes.length;
  assert.ok(mean < TEMPORAL_SCENE_CUT, 'this frame is not a cut');
  const out = blend.apply(moved, solid(200));
  for (const [k, d] of changes.entries()) {
    const x = 4 * k + 1;
    for (const col of [x, x + 1]) {
      for (const y of [0, 5, H - 1]) {
        const expected = 200 * (1 - weight(strength, d));
        const got = out[(y * W + col) * 3];
        assert.ok(Math.abs(got - expected) <= 1, `change ${d} at (${col}, ${y}): ${got}, expected ${expected.toFixed(1)}`);
      }
    }
  }
  // Next to a moved stripe the 3x3 widening takes its change: column 43 (unchanged) borders the 200 stripe.
  assert.equal(out[(5 * W + 43) * 3], 200);
  assert.ok(Math.abs(out[(5 * W + 42) * 3] - 200 * (1 - strength)) <= 1, 'one column further it blends');
});

test('a region that moves takes the new output there, the still rest keeps averaging', () => {
  const next = rng(7);
  const background = randomFrame(next);
  const blend = createTemporalBlend({ strength: 0.8, width: W, height: H });
  blend.apply(background, randomFrame(next));
  const moving = background.slice();
  // A 10x8 block that changes by 100: 80 of 1536 pixels, far from a cut.
  const inBlock = (x: number, y: number): boolean => x >= 20 && x < 30 && y >= 10 && y < 18;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (inBlock(x, y)) for (let c = 0; c < 3; c++) moving[(y * W + x) * 3 + c] ^= 100;
  const fresh = randomFrame(next);
  const out = blend.apply(moving, fresh.slice());
  let inside = 0;
  let outsideSame = 0;
  let outside = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const j = (y * W + x) * 3;
      const near = x >= 19 && x < 31 && y >= 9 && y < 19;
      if (inBlock(x, y)) inside += Number(out[j] === fresh[j] && out[j + 1] === fresh[j + 1] && out[j + 2] === fresh[j + 2]);
      else if (!near) {
        outside += 1;
        outsideSame += Number(out[j] === fresh[j]);
      }
    }
  }
  assert.equal(inside, 80, 'every moved pixel is the new output');
  assert.ok(outsideSame < 0.05 * outside, `${outsideSame} of ${outside} still pixels unblended`);
});

test('a scene cut drops the history, even where the new shot happens to match the old', () => {
  const strength = 0.8;
  const half = BYTES / 2; // top rows
  const frameWith = (top: number, bottom: number): Uint8Array => {
    const f = new Uint8Array(BYTES);
    f.fill(top, 0, half);
    f.fill(bottom, half);
    return f;
  };
  // Half the frame changes by 100 (mean 50 > the cut threshold): a cut, the unchanged half included.
  const cut = createTemporalBlend({ strength, width: W, height: H });
  cut.apply(frameWith(50, 50), solid(0));
  assert.deepEqual(cut.apply(frameWith(50, 150), solid(100)), solid(100));
  // The next still frame blends with the cut's output, not with the shot before.
  const after = cut.apply(frameWith(50, 150), solid(200));
  assert.ok(Math.abs(after[0] - (strength * 100 + (1 - strength) * 200)) <= 1, `after the cut ${after[0]}`);

  // Half the frame changes by 60 (mean 30, under the threshold): not a cut, the unchanged half blends.
  const pan = createTemporalBlend({ strength, width: W, height: H });
  pan.apply(frameWith(50, 50), solid(0));
  const out = pan.apply(frameWith(50, 110), solid(100));
  assert.ok(Math.abs(out[0] - (1 - strength) * 100) <= 1, `unchanged half ${out[0]}`);
  assert.equal(out[BYTES - 1], 100, 'changed half takes the new output');

  // reset() is a cut on demand.
  pan.reset();
  assert.deepEqual(pan.apply(frameWith(50, 110), solid(77)), solid(77));
});

test('strength 0 returns every output as it is', () => {
  const next = rng(3);
  const input = randomFrame(next);
  const blend = createTemporalBlend({ strength: 0, width: W, height: H });
  for (let t = 0; t < 5; t++) {
    const output = randomFrame(next);
    const copy = output.slice();
    const result = blend.apply(input, output);
    assert.equal(result, output);
    assert.deepEqual(result, copy);
  }
});

test('bad strengths, sizes and frames are rejected', () => {
  assert.throws(() => checkStylizeOptions({ temporal: -0.1 }), { name: 'RangeError', message: 'Expected a number between 0 and 1 for temporal but received -0.1' });
  assert.throws(() => checkStylizeOptions({ temporal: 1.5 }), { name: 'RangeError', message: 'Expected a number between 0 and 1 for temporal but received 1.5' });
  // NaN is a wrong type for validate.ts, as for every other number option.
  assert.throws(() => checkStylizeOptions({ temporal: Number.NaN }), { name: 'TypeError', message: 'Expected a number for temporal but received NaN' });
  assert.throws(() => checkStylizeOptions({ temporal: '0.5' as never }), TypeError);
  checkStylizeOptions({ temporal: 0 });
  checkStylizeOptions({ temporal: 1 });

  assert.throws(() => createTemporalBlend({ strength: 2, width: W, height: H }), { name: 'RangeError', message: 'Expected a number between 0 and 1 for strength but received 2' });
  assert.throws(() => createTemporalBlend({ strength: 0.5, width: 0, height: H }), RangeError);
  assert.throws(() => createTemporalBlend({ strength: 0.5, width: 1.5, height: H }), TypeError);
  const blend = createTemporalBlend({ strength: 0.5, width: W, height: H });
  assert.throws(() => blend.apply(new Uint8Array(BYTES), new Uint8Array(BYTES - 3)),
    { name: 'RangeError', message: `Expected RGB24 frames of ${W}x${H}x3 = ${BYTES} bytes but received ${BYTES} (input) and ${BYTES - 3} (output)` });
});

test('cost of apply() on 640x480 frames (reported, not asserted)', () => {
  const [width, height] = [640, 480];
  const next = rng(1);
  const input = new Uint8Array(width * height * 3);
  for (let i = 0; i < input.length; i++) input[i] = Math.floor(256 * next());
  const outputs = Array.from({ length: 4 }, () => Uint8Array.from(input, (v) => v ^ Math.floor(16 * next())));
  const inputs = [input, Uint8Array.from(input, (v, i) => (i % 7 === 0 ? v ^ 64 : v))];
  const blend = createTemporalBlend({ strength: 0.8, width, height });
  for (let t = 0; t < 20; t++) blend.apply(inputs[t % 2], outputs[t % 4]); // warm-up (JIT)
  const frames = 100;
  const started = performance.now();
  for (let t = 0; t < frames; t++) blend.apply(inputs[t % 2], outputs[t % 4]);
  const ms = (performance.now() - started) / frames;
  console.log(`# temporal blend apply(): ${ms.toFixed(2)} ms per 640x480 frame`);
  assert.ok(ms > 0);
});

// ---- Through stylizeVideo and the CLI ----------------------------------------------------------

let dir = '';
let cleanup = async (): Promise<void> => {};
let zoo = '';
before(async () => {
  ({ dir, cleanup } = await tempDir());
  zoo = join(dir, 'zoo.onnx');
  await writeFile(zoo, zooLikeModel());
});
after(() => cleanup());

async function frames(path: string): Promise<Uint8Array[]> {
  const all: Uint8Array[] = [];
  for await (const f of decodeFrames(path)) all.push(f.slice());
  return all;
}

test('stylizeVideo with temporal 0.8 flickers less on a noisy still shot than without', async () => {
  // A grey still with fresh noise every frame, kept exactly (lossless), like sensor noise.
  const noisy = join(dir, 'noisy.mkv');
  await ffmpeg(['-f', 'lavfi', '-i', 'color=c=gray:size=64x48:rate=25,noise=alls=6:allf=t+u', '-t', '0.8',
    '-c:v', 'libx264rgb', '-qp', '0', '-pix_fmt', 'rgb24', '-y', noisy]);
  const style = await openStyleModel(zoo);
  const plain = join(dir, 'plain.mp4');
  const smooth = join(dir, 'smooth.mp4');
  await stylizeVideo(style, noisy, plain, { margin: 0, crf: 0 });
  const result = await stylizeVideo(style, noisy, smooth, { margin: 0, crf: 0, temporal: 0.8 });
  assert.equal(result.frames, 20);
  const [a, b] = [flicker((await frames(plain)).slice(5)), flicker((await frames(smooth)).slice(5))];
  assert.ok(a > 0.5, `the noise survives the model and codec: ${a}`);
  console.log(`# noisy still: flicker ${a.toFixed(2)} plain, ${b.toFixed(2)} temporal 0.8`);
  assert.ok(b < 0.6 * a, `flicker ${b} with temporal 0.8 vs ${a} without`);
});

test('stylize --help names --temporal with its default (in-process)', () => {
  const stylize = program().commands.find((c) => c.name() === 'stylize');
  assert.match(stylize?.helpInformation() ?? '', /--temporal <0\.\.1>[^]*\(default: 0, off\)/);
});

const show = (r: CliResult): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

test('CLI: --temporal 0.8 keeps every frame; 2, or an image input, is a usage error', async () => {
  const clip = await makeClip(dir, 'clip.mp4', { size: '64x48', rate: '25', seconds: 1, audio: false });
  const output = join(dir, 'cli', 'styled.mp4');
  const ok = await runCli(['stylize', clip, '-m', zoo, '-o', output, '--margin', '0', '--temporal', '0.8', '--json']);
  assert.equal(ok.code, 0, show(ok));
  assert.equal((JSON.parse(ok.stdout) as { frames: number }).frames, 25);
  assert.equal(await countFrames(output), 25);

  const big = await runCli(['stylize', clip, '-m', zoo, '-o', join(dir, 'cli', 'big.mp4'), '--temporal', '2']);
  assert.equal(big.code, 2, show(big));
  assert.deepEqual(big.errorLines, ['pastiche: Expected a number between 0 and 1 for --temporal but received 2']);

  const image = join(dir, 'still.png');
  await writeImage(image, smoothImage(32, 24));
  const still = await runCli(['stylize', image, '-m', zoo, '-o', join(dir, 'cli', 'still.png'), '--temporal', '0.5']);
  assert.equal(still.code, 2, show(still));
  assert.deepEqual(still.errorLines, [`pastiche: Expected a video input for --temporal but received the image ${image}`]);
  assert.deepEqual(await listDir(join(dir, 'cli')), ['styled.mp4']);
});
