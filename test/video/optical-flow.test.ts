import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { RgbImage } from '../../src/image/types.js';
import { readImage } from '../../src/image/codec.js';
import { occlusionMask, type Flow } from '../../src/video/flow.js';
import { estimateFlow } from '../../src/video/optical-flow.js';
import { readSintelPair, syntheticMotionClip, warpingError } from '../../src/video/warping-error.js';
import { smoothImage } from '../image/fixtures.js';
import { dataPath } from '../helpers/data.js';

/** Mean endpoint error over the pixels where `mask` (if given) is 1. */
function endpointError(estimate: Flow, truth: Flow, mask?: Uint8Array): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < truth.u.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    sum += Math.hypot(estimate.u[i] - truth.u[i], estimate.v[i] - truth.v[i]);
    count++;
  }
  return sum / count;
}

function zeroFlow(width: number, height: number): Flow {
  return { width, height, u: new Float32Array(width * height), v: new Float32Array(width * height) };
}

test('a sub-pixel pan is recovered to a small fraction of a pixel', async () => {
  const photo = smoothImage(200, 150);
  for (const noise of [0, undefined]) {
    const clip = await syntheticMotionClip(photo, { frames: 2, width: 180, height: 140, motion: 'pan', noise });
    const flow = estimateFlow(clip.frames[0], clip.frames[1]);
    const error = endpointError(flow, clip.flows[0]);
    const still = endpointError(zeroFlow(180, 140), clip.flows[0]);
    console.log(`# pan, noise ${noise ?? 'default'}: EPE ${error.toFixed(4)} px (zero flow ${still.toFixed(3)})`);
    assert.ok(error < (noise === 0 ? 0.15 : 0.25), `EPE ${error}`);
  }
});

test('a pan of several pixels (first to last frame) needs and gets the pyramid', async () => {
  const clip = await syntheticMotionClip(smoothImage(200, 150), { frames: 8, width: 180, height: 140, motion: 'pan', noise: 0 });
  // Seven steps of the clip's (−0.7, −0.3) per frame, derived from its documented motion.
  const truth = { width: 180, height: 140, u: new Float32Array(180 * 140).fill(-0.7 * 7), v: new Float32Array(180 * 140).fill(-0.3 * 7) };
  const pyramid = endpointError(estimateFlow(clip.frames[0], clip.frames[7]), truth);
  const single = endpointError(estimateFlow(clip.frames[0], clip.frames[7], { levels: 1, warps: 2 }), truth);
  console.log(`# pan of 5.3 px: EPE ${pyramid.toFixed(4)} px with the pyramid, ${single.toFixed(3)} with one level and two warps`);
  assert.ok(pyramid < 0.15, `EPE ${pyramid}`);
});

test('a zoom is recovered far better than by zero flow', async () => {
  const photo = smoothImage(360, 280);
  for (const noise of [0, undefined]) {
    const clip = await syntheticMotionClip(photo, { frames: 2, width: 320, height: 240, motion: 'zoom', noise });
    const error = endpointError(estimateFlow(clip.frames[0], clip.frames[1]), clip.flows[0]);
    const still = endpointError(zeroFlow(320, 240), clip.flows[0]);
    console.log(`# zoom, noise ${noise ?? 'default'}: EPE ${error.toFixed(4)} px (zero flow ${still.toFixed(3)})`);
    assert.ok(error < 0.3 && error < 0.5 * still, `EPE ${error}, zero flow ${still}`);
  }
});

// Bounds measured with margin (easy 0.19, medium 1.19, hard 19.5 px); zero flow scores 2.9, 15.2 and 33.
const sintelBounds = { easy: 1, medium: 4, hard: 27 } as const;
for (const level of ['easy', 'medium', 'hard'] as const) {
  const sintel = dataPath(`video/sintel-flow/clean/${level}`);
  test(`Sintel ${level}: endpoint error against the ground truth`, { skip: sintel.skip }, async () => {
    const { frames, flows, masks } = await readSintelPair(sintel.path);
    const start = performance.now();
    const flow = estimateFlow(frames[0], frames[1]);
    const ms = performance.now() - start;
    const error = endpointError(flow, flows[0], masks[0]);
    const still = endpointError(zeroFlow(flow.width, flow.height), flows[0], masks[0]);
    const flipped = endpointError({ ...flow, u: flow.u.map((u) => -u), v: flow.v.map((v) => -v) }, flows[0], masks[0]);
    console.log(`# Sintel ${level} (${flow.width}x${flow.height}): EPE ${error.toFixed(3)} px, zero flow ${still.toFixed(3)}, sign flipped ${flipped.toFixed(3)} (${ms.toFixed(0)} ms)`);
    assert.ok(error < sintelBounds[level], `EPE ${error}`);
    assert.ok(error < 0.8 * still, `EPE ${error}, zero flow ${still}`);
  });
}

const easy = dataPath('video/sintel-flow/clean/easy');
test('Sintel easy: the warping error with estimated flow and occlusions is close to that with the true flow', { skip: easy.skip }, async () => {
  const { frames, flows, masks } = await readSintelPair(easy.path);
  const forward = estimateFlow(frames[0], frames[1]);
  const backward = estimateFlow(frames[1], frames[0]);
  const mask = occlusionMask(forward, backward);
  const kept = mask.reduce((sum, m) => sum + m, 0) / mask.length;
  const estimated = warpingError(frames, [forward], [mask]);
  const truth = warpingError(frames, flows, masks);
  const still = warpingError(frames, [zeroFlow(forward.width, forward.height)]);
  console.log(`# Sintel easy warping error: ${estimated.toExponential(3)} estimated (${(100 * kept).toFixed(1)}% kept), ${truth.toExponential(3)} true flow, ${still.toExponential(3)} zero flow`);
  // The mask must not win by dropping most of the frame.
  assert.ok(kept > 0.7, `kept ${kept}`);
  assert.ok(estimated < 3 * truth, `estimated ${estimated}, true ${truth}`);
  assert.ok(estimated < 0.2 * still, `estimated ${estimated}, zero flow ${still}`);
});

const davis = dataPath('video/davis/blackswan');
test('DAVIS 854x480: time per pair, and the frames warp onto each other better than unmoved', { skip: davis.skip }, async () => {
  const frames: RgbImage[] = [];
  for (const name of ['00000.jpg', '00001.jpg']) frames.push((await readImage(join(davis.path, name))).image);
  const start = performance.now();
  const flow = estimateFlow(frames[0], frames[1]);
  const ms = performance.now() - start;
  const estimated = warpingError(frames, [flow]);
  const still = warpingError(frames, [zeroFlow(flow.width, flow.height)]);
  console.log(`# DAVIS blackswan ${flow.width}x${flow.height}: ${ms.toFixed(0)} ms per pair; warping error ${estimated.toExponential(3)} (zero flow ${still.toExponential(3)})`);
  assert.ok(estimated < 0.5 * still, `estimated ${estimated}, zero flow ${still}`);
});

test('estimateFlow refuses frames of different or too small sizes, and bad options', () => {
  const frame = smoothImage(64, 48);
  assert.throws(() => estimateFlow(frame, smoothImage(32, 24)), {
    name: 'RangeError', message: 'Expected frames of the same size but received 64x48 and 32x24',
  });
  assert.throws(() => estimateFlow(smoothImage(7, 20), smoothImage(7, 20)), {
    name: 'RangeError', message: 'Expected frames of at least 8x8 but received 7x20',
  });
  assert.throws(() => estimateFlow(frame, frame, { levels: 0 }), { name: 'RangeError', message: 'Expected a number between 1 and 16 for levels but received 0' });
  assert.throws(() => estimateFlow(frame, frame, { iterations: 2.5 }), { name: 'TypeError', message: 'Expected an integer for iterations but received 2.5' });
  assert.throws(() => estimateFlow(frame, frame, { smoothness: -1 }), /Expected a number between 0\.001 and 1000 for smoothness but received -1/);
  assert.throws(() => estimateFlow(frame, { width: 64, height: 48, data: new Float32Array(5) }), /Expected 9216 values for to/);
  // The smallest frame works, and more levels than it allows are dropped rather than failing.
  const tiny = estimateFlow(smoothImage(8, 8), smoothImage(8, 8), { levels: 16 });
  assert.equal(tiny.u.length, 64);
  assert.ok(tiny.u.every((u) => Math.abs(u) < 1e-3), 'identical frames have zero flow');
});
