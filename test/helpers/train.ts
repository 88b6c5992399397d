/**
 * Small inputs for the training tests: a tiny network, seeded random VGG weights (in memory or as
 * a .safetensors file the CLI's --vgg reads), photos and style images generated with sharp, and a
 * byte-for-byte comparison of parameter sets. None of it needs the shared data.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Tensor } from '../../src/graph/index.js';
import { writeImage } from '../../src/image/codec.js';
import { resolveArchitecture } from '../../src/nets/transformer.js';
import { vggParamShapes } from '../../src/nets/vgg.js';
import type { VggWeights } from '../../src/style/gatys-graphs.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { imageFrom, noiseImage, smoothImage } from '../image/fixtures.js';
import { rng } from './random.js';

/** compact with widths 4, 8, 8 and one residual block: ~20 ms a step at batch 2, 32x32. */
export const TINY = resolveArchitecture('compact', { widths: [4, 8, 8], residualBlocks: 1 });
/** The CLI flags that select {@link TINY}. */
export const TINY_FLAGS = ['--arch', 'compact', '--widths', '4,8,8', '--blocks', '1'];

/** Layers within the random VGG below (and within the shared partial float32 VGG19). */
export const CONTENT_LAYERS = ['relu2_2'];
export const STYLE_LAYERS = ['relu1_1', 'relu2_1'];
export const LAST_TAP = 'relu2_2';

/**
 * VGG19 up to `lastTap` with seeded He-uniform weights: its features are as informative for a
 * test's loss as ImageNet's, without the download.
 */
export function randomVgg(lastTap = LAST_TAP, seed = 7, depth: 16 | 19 = 19): VggWeights {
  const params = new Map<string, Tensor>();
  const next = rng(seed);
  for (const [name, shape] of vggParamShapes(depth, lastTap)) {
    const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : 0;
    const bound = fanIn > 0 ? Math.sqrt(6 / fanIn) : 0.05;
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = bound * (2 * next() - 1);
    params.set(name, { data, shape });
  }
  return { params, depth, preprocessing: 'caffe' };
}

/** Writes {@link randomVgg} as a .safetensors file in pastiche's naming (what --vgg accepts). */
export async function writeRandomVgg(path: string, lastTap = LAST_TAP, depth: 16 | 19 = 19): Promise<string> {
  await writeSafetensors(path, randomVgg(lastTap, 7, depth).params);
  return path;
}

/** A striped, two-colour style image: strong, simple Gram statistics. */
export function stripedStyle(size = 64): ReturnType<typeof imageFrom> {
  return imageFrom(size, size, (x, y, c) => (Math.floor((x + y) / 6) % 2 ? [230, 120, 20][c] : [20, 60, 200][c]));
}

/** A picture of a few coloured shapes, rendered by sharp from SVG. */
async function writeShapes(path: string, width: number, height: number, seed: number): Promise<void> {
  const next = rng(seed);
  const colour = (): string => `rgb(${[0, 1, 2].map(() => Math.floor(next() * 256)).join(',')})`;
  const shapes = Array.from({ length: 4 }, () => {
    const [x, y, r] = [next() * width, next() * height, 4 + next() * width / 3];
    return next() < 0.5
      ? `<circle cx="${x}" cy="${y}" r="${r}" fill="${colour()}"/>`
      : `<rect x="${x - r}" y="${y - r}" width="${2 * r}" height="${r}" fill="${colour()}"/>`;
  }).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${colour()}"/>${shapes}</svg>`;
  await sharp(Buffer.from(svg)).toFile(path);
}

/**
 * Writes `count` different photos into `dir` (created): noise, smooth gradients and shapes in
 * turn, as PNG, JPEG and WebP, landscape and portrait, 40-60 px. Returns their paths, sorted.
 */
export async function writePhotos(dir: string, count: number, seed = 1): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const [width, height] = i % 2 === 0 ? [48 + (i % 3) * 6, 40] : [40, 52 + (i % 3) * 4];
    const path = join(dir, `photo${String(i).padStart(2, '0')}.${['png', 'jpg', 'webp'][i % 3]}`);
    if (i % 3 === 0) await writeImage(path, noiseImage(width, height, seed + i));
    else if (i % 3 === 1) await writeImage(path, smoothImage(width, height));
    else await writeShapes(path, width, height, seed + i);
    paths.push(path);
  }
  return paths.sort();
}

/** Asserts two parameter sets hold the same names, shapes and float32 bytes. */
export function assertSameParams(actual: ReadonlyMap<string, Tensor | Float32Array>, expected: ReadonlyMap<string, Tensor | Float32Array>, what: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${what}: parameter names`);
  const bytes = (t: Tensor | Float32Array): Buffer => {
    const data = t instanceof Float32Array ? t : t.data;
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  };
  for (const [name, t] of expected) {
    const a = actual.get(name)!;
    if (!(t instanceof Float32Array)) assert.deepEqual((a as Tensor).shape, t.shape, `${what}: shape of ${name}`);
    assert.ok(bytes(a).equals(bytes(t)), `${what}: ${name} differs`);
  }
}
