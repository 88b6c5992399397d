/**
 * The page's frame packing and output handling (web/pixels.ts) against the Node path it must
 * match: reflectPad + reflectPadTo (src/image/pad.ts), blendImages and preserveLuminance
 * (src/image/color.ts), on odd sizes and margins wider than the frame.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blendImages, preserveLuminance } from '../../src/image/color.js';
import { cropImage, reflectPad, reflectPadTo } from '../../src/image/pad.js';
import type { RgbImage } from '../../src/image/types.js';
import { inputBuffer, packFrame, planFrame, unpackOutput } from '../../web/pixels.js';
import { maxAbsDiff } from '../helpers/compare.js';
import { rng } from '../helpers/random.js';

/** A random 8-bit frame as RGBA bytes and as pastiche's planar float image. */
function frame(width: number, height: number, seed: number): { rgba: Uint8ClampedArray; image: RgbImage } {
  const random = rng(seed);
  const n = width * height;
  const rgba = new Uint8ClampedArray(4 * n);
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.floor(random() * 256);
      rgba[4 * i + c] = v;
      data[c * n + i] = v;
    }
    rgba[4 * i + 3] = 255;
  }
  return { rgba, image: { data, width, height } };
}

/** Node's network input: the margin, then reflection to a multiple of 4 (transfer.ts). */
function nodeInput(image: RgbImage, margin: number): { padded: RgbImage; left: number; top: number } {
  const withMargin = margin === 0 ? image : reflectPad(image, { left: margin, top: margin, right: margin, bottom: margin });
  const { image: padded, crop } = reflectPadTo(withMargin, 4);
  return { padded, left: crop.left + margin, top: crop.top + margin };
}

for (const [width, height, margin] of [[7, 5, 0], [13, 9, 3], [10, 6, 16], [5, 3, 48], [320, 240, 16]] as const) {
  test(`packFrame pads a ${width}x${height} frame with margin ${margin} exactly as Node does`, () => {
    const { rgba, image } = frame(width, height, width * 31 + margin);
    const plan = planFrame(width, height, margin);
    const input = inputBuffer(plan);
    packFrame(rgba, plan, input);
    const node = nodeInput(image, margin);
    assert.deepEqual([plan.paddedWidth, plan.paddedHeight, plan.left, plan.top], [node.padded.width, node.padded.height, node.left, node.top]);
    assert.equal(maxAbsDiff(input, node.padded.data), 0);
  });
}

test('unpackOutput crops, clamps, blends and keeps colours as stylizeImage does', () => {
  const width = 11;
  const height = 7;
  const margin = 5;
  const { rgba, image } = frame(width, height, 5);
  const plan = planFrame(width, height, margin);
  // A network output with values past both ends of 0..255, so the clamp matters.
  const random = rng(9);
  const output = inputBuffer(plan).map(() => random() * 400 - 70);
  const padded = { data: output.map((v) => Math.min(255, Math.max(0, v))), width: plan.paddedWidth, height: plan.paddedHeight };
  const stylised = cropImage(padded, { left: plan.left, top: plan.top, width, height });
  for (const options of [{ strength: 1, preserveColors: false }, { strength: 0.35, preserveColors: false }, { strength: 1, preserveColors: true }, { strength: 0.6, preserveColors: true }]) {
    let expected = options.strength < 1 ? blendImages(image, stylised, options.strength) : stylised;
    if (options.preserveColors) expected = preserveLuminance(expected, image);
    const drawn = new Uint8ClampedArray(4 * width * height);
    unpackOutput(output, plan, rgba, options, drawn);
    const planar = new Float32Array(3 * width * height);
    for (let i = 0; i < width * height; i++) {
      for (let c = 0; c < 3; c++) planar[c * width * height + i] = drawn[4 * i + c];
      assert.equal(drawn[4 * i + 3], 255);
    }
    // The canvas holds bytes: at most half a level from Node's float result.
    assert.ok(maxAbsDiff(planar, expected.data) <= 0.5 + 1e-4, JSON.stringify(options));
  }
});
