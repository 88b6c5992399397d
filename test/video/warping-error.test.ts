import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import type { RgbImage } from '../../src/image/types.js';
import { writeImage } from '../../src/image/codec.js';
import { FileError } from '../../src/util/errors.js';
import { flowValidMask, occlusionMask, readFlo, readMaskImage, warpBackward, type Flow } from '../../src/video/flow.js';
import { readSintelPair, syntheticMotionClip, warpingError } from '../../src/video/warping-error.js';
import { imageFrom, noiseImage, scratchDir, smoothImage } from '../image/fixtures.js';
import { dataPath } from '../helpers/data.js';

let scratch: Awaited<ReturnType<typeof scratchDir>>;
before(async () => { scratch = await scratchDir(); });
after(() => scratch.cleanup());

/** A .flo file written byte by byte, independently of readFlo. */
function floBytes(width: number, height: number, pairs: number[], magic = 'PIEH'): Buffer {
  const buffer = Buffer.alloc(12 + 4 * pairs.length);
  buffer.write(magic, 0, 'latin1');
  buffer.writeInt32LE(width, 4);
  buffer.writeInt32LE(height, 8);
  pairs.forEach((value, i) => buffer.writeFloatLE(value, 12 + 4 * i));
  return buffer;
}

function uniformFlow(width: number, height: number, u: number, v: number): Flow {
  return { width, height, u: new Float32Array(width * height).fill(u), v: new Float32Array(width * height).fill(v) };
}

const at = (image: RgbImage, x: number, y: number, c: number): number => image.data[(c * image.height + y) * image.width + x];

test('readFlo reads a hand-written 3x2 .flo file', async () => {
  const pairs = [0.5, -1, 2, 3.25, -4, 0, 1e-3, 7, 8, -9, 10.5, 11];
  const path = scratch.path('tiny.flo');
  await writeFile(path, floBytes(3, 2, pairs));
  const flow = await readFlo(path);
  assert.equal(flow.width, 3);
  assert.equal(flow.height, 2);
  assert.deepEqual([...flow.u], pairs.filter((_, i) => i % 2 === 0).map(Math.fround));
  assert.deepEqual([...flow.v], pairs.filter((_, i) => i % 2 === 1).map(Math.fround));
});

test('readFlo refuses hostile files, naming the file and the problem', async () => {
  const cases: [string, Buffer, RegExp][] = [
    ['magic.flo', floBytes(1, 1, [0, 0], 'PNG\x00'), /magic\.flo: not a Middlebury \.flo file \(bad magic\)/],
    ['short.flo', Buffer.from('PIE'), /short\.flo: not a Middlebury \.flo file \(only 3 bytes\)/],
    ['truncated.flo', floBytes(3, 2, [1, 2, 3]), /truncated\.flo: truncated: expected 60 bytes, found 24/],
    ['trailing.flo', Buffer.concat([floBytes(1, 1, [1, 2]), Buffer.alloc(4)]), /trailing\.flo: 4 bytes after the flow/],
    // Declares 100000 x 100000 (80 GB of floats): refused from the header, nothing allocated.
    ['huge.flo', floBytes(100000, 100000, [1, 2]), /huge\.flo: flow size 100000x100000 is outside 1\.\.16384/],
    ['negative.flo', floBytes(-3, 2, [1, 2]), /negative\.flo: flow size -3x2/],
  ];
  for (const [name, bytes, message] of cases) {
    await writeFile(scratch.path(name), bytes);
    await assert.rejects(readFlo(scratch.path(name)), (error: Error) => error instanceof FileError && message.test(error.message), name);
  }
  await assert.rejects(readFlo(scratch.path('missing.flo')), /missing\.flo: cannot read flow file/);
  await assert.rejects(readFlo(scratch.dir), (error: Error) => error instanceof FileError && error.message.startsWith(`${scratch.dir}: `));
});

test('warpBackward with an integer translation reproduces the shifted image in the interior', () => {
  const image = noiseImage(9, 7, 3);
  const warped = warpBackward(image, uniformFlow(9, 7, 2, 1));
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 7; x++) assert.equal(at(warped, x, y, c), at(image, x + 2, y + 1, c), `(${x}, ${y}, ${c})`);
    }
  }
  // Destinations past the edge clamp to it, and the validity mask leaves them out.
  assert.equal(at(warped, 8, 6, 0), at(image, 8, 6, 0));
  const inside = flowValidMask(uniformFlow(9, 7, 2, 1));
  assert.equal(inside[6 * 9 + 0], 0);
  assert.equal(inside[5 * 9 + 6], 1);
  assert.equal(inside[5 * 9 + 7], 0);
});

test('warpBackward with a half-pixel shift averages the two neighbours', () => {
  const image = noiseImage(8, 5, 4);
  const across = warpBackward(image, uniformFlow(8, 5, 0.5, 0));
  const down = warpBackward(image, uniformFlow(8, 5, 0, -0.5));
  for (let c = 0; c < 3; c++) {
    for (let y = 1; y < 5; y++) {
      for (let x = 0; x < 7; x++) {
        assert.ok(Math.abs(at(across, x, y, c) - (at(image, x, y, c) + at(image, x + 1, y, c)) / 2) < 1e-4);
        assert.ok(Math.abs(at(down, x, y, c) - (at(image, x, y - 1, c) + at(image, x, y, c)) / 2) < 1e-4);
      }
    }
  }
});

test('a noise-free synthetic pan or zoom has a warping error near 0, and zero flow does not', async () => {
  const photo = smoothImage(120, 90);
  for (const motion of ['pan', 'zoom'] as const) {
    const clip = await syntheticMotionClip(photo, { frames: 6, width: 96, height: 72, motion, noise: 0 });
    assert.equal(clip.frames.length, 6);
    assert.equal(clip.flows.length, 5);
    const error = warpingError(clip.frames, clip.flows);
    const still = warpingError(clip.frames, clip.flows.map(() => uniformFlow(96, 72, 0, 0)));
    assert.ok(error < 1e-4, `${motion}: ${error}`);
    assert.ok(still > 20 * error, `${motion}: zero flow ${still} vs true flow ${error}`);
  }
});

test('the noise of a synthetic clip is Gaussian with the asked standard deviation', async () => {
  // Warping the noise of frame t+1 by (-0.7, -0.3) takes bilinear weights (0.7, 0.3) x (0.3, 0.7),
  // so the difference has variance sigma^2 (1 + (0.49 + 0.09)^2); in [0, 1] units, divided by 255^2.
  const sigma = 3;
  const expected = (sigma ** 2 * (1 + 0.58 ** 2)) / 255 ** 2;
  const clip = await syntheticMotionClip(smoothImage(200, 150), { frames: 3, width: 180, height: 140, motion: 'pan', noise: sigma, seed: 7 });
  const error = warpingError(clip.frames, clip.flows);
  assert.ok(Math.abs(error - expected) < 0.05 * expected, `${error} vs ${expected}`);
  const again = await syntheticMotionClip(smoothImage(200, 150), { frames: 3, width: 180, height: 140, motion: 'pan', noise: sigma, seed: 7 });
  assert.deepEqual(again.frames[2].data, clip.frames[2].data);
});

test('JPEG re-compression adds flicker but keeps the error small', async () => {
  const photo = smoothImage(100, 80);
  const clean = await syntheticMotionClip(photo, { frames: 3, width: 64, height: 48, motion: 'zoom', noise: 0 });
  const jpeg = await syntheticMotionClip(photo, { frames: 3, width: 64, height: 48, motion: 'zoom', noise: 0, jpegQuality: 60 });
  const error = warpingError(jpeg.frames, jpeg.flows);
  assert.ok(error > warpingError(clean.frames, clean.flows) && error < 1e-3, String(error));
  for (const value of jpeg.frames[1].data) assert.ok(Number.isInteger(value));
});

test('independent random frames give a large warping error; identical still frames give 0', () => {
  const random = [1, 2, 3, 4].map((seed) => noiseImage(32, 24, seed));
  const zero = random.slice(1).map(() => uniformFlow(32, 24, 0, 0));
  // Two independent uniform values on [0, 1] differ by 1/6 in mean square.
  const error = warpingError(random, zero);
  assert.ok(error > 0.05 && Math.abs(error - 1 / 6) < 0.02, String(error));
  const same = noiseImage(32, 24, 9);
  assert.equal(warpingError([same, same, same], zero.slice(1)), 0);
});

test('masks leave pixels out of the warping error', () => {
  const a = imageFrom(4, 1, () => 0);
  const b = imageFrom(4, 1, (x) => (x === 3 ? 255 : 0));
  const flow = uniformFlow(4, 1, 0, 0);
  assert.equal(warpingError([a, b], [flow]), 0.25);
  assert.equal(warpingError([a, b], [flow], [new Uint8Array([1, 1, 1, 0])]), 0);
  assert.throws(() => warpingError([a, b], [flow], [new Uint8Array(4)]), /Expected at least one valid pixel for frames 0 and 1/);
});

test('occlusionMask finds the background an object covers, and its motion boundaries', () => {
  // Columns 8..15 move 4 px right; frame t's background at 16..19 is covered in frame t+1.
  const width = 32;
  const height = 3;
  const forward = uniformFlow(width, height, 0, 0);
  const backward = uniformFlow(width, height, 0, 0);
  for (let y = 0; y < height; y++) {
    for (let x = 8; x <= 15; x++) forward.u[y * width + x] = 4;
    for (let x = 12; x <= 19; x++) backward.u[y * width + x] = -4;
  }
  const expected = Array.from({ length: width }, (_, x) => (x === 7 || x === 15 || (x >= 16 && x <= 19) ? 0 : 1));
  const mask = occlusionMask(forward, backward);
  for (let y = 0; y < height; y++) assert.deepEqual([...mask.subarray(y * width, (y + 1) * width)], expected, `row ${y}`);
});

test('readMaskImage reads white as excluded', async () => {
  const path = scratch.path('mask.png');
  await writeImage(path, imageFrom(3, 2, (x, y) => (x === y ? 255 : 0)));
  const { mask, width, height } = await readMaskImage(path);
  assert.deepEqual([width, height, ...mask], [3, 2, 0, 1, 1, 1, 0, 1]);
});

test('bad calls fail with the validation messages', () => {
  const frame = smoothImage(8, 6);
  assert.throws(() => warpingError([frame], []), { name: 'RangeError', message: 'Expected at least 2 frames for a warping error but received 1' });
  assert.throws(() => warpingError([frame, frame, frame], [uniformFlow(8, 6, 0, 0)]), { name: 'RangeError', message: 'Expected 2 flows for 3 frames but received 1' });
  assert.throws(() => warpingError([frame, frame], [uniformFlow(6, 8, 0, 0)]), { name: 'RangeError', message: 'Expected a 8x6 flow for flows[0] but received 6x8' });
  assert.throws(() => warpingError([frame, smoothImage(6, 8)], [uniformFlow(8, 6, 0, 0)]), /Expected images of the same size for frames\[0\] and frames\[1\]/);
  assert.throws(() => warpingError([frame, frame], [uniformFlow(8, 6, 0, 0)], [new Uint8Array(3)]), /masks\[0\]/);
  return assert.rejects(syntheticMotionClip(frame, { frames: 4, width: 8, height: 6, motion: 'pan' }), {
    name: 'RangeError', message: 'Expected a photo of at least 11x7 for a 4-frame pan of 8x6 but received 8x6',
  });
});

for (const level of ['easy', 'medium', 'hard']) {
  const sintel = dataPath(`video/sintel-flow/clean/${level}`);
  test(`Sintel ${level}: the input frames warp onto each other with the ground-truth flow`, { skip: sintel.skip }, async () => {
    const pair = await readSintelPair(sintel.path);
    const error = warpingError(pair.frames, pair.flows, pair.masks);
    const still = warpingError(pair.frames, [uniformFlow(pair.flows[0].width, pair.flows[0].height, 0, 0)], pair.masks);
    const valid = pair.masks[0].reduce((sum, m) => sum + m, 0) / pair.masks[0].length;
    console.log(`Sintel ${level}: warping error ${error.toExponential(3)} with the true flow, ${still.toExponential(3)} with zero flow (${(100 * valid).toFixed(1)}% of pixels valid)`);
    assert.ok(error < 0.01, String(error));
    assert.ok(error < still / 3, `${error} vs ${still}`);
  });
}
