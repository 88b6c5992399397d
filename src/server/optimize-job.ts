/**
 * The 'optimize' job: Gatys et al.'s optimisation of a content image (optional: without one, a
 * texture) towards a style image, both uploaded earlier, with preview images while it runs.
 * The VGG weights come from PASTICHE_VGG or the model store (downloaded once, as `optimize` does).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readImage, writeImage } from '../image/codec.js';
import { deepestTap } from '../nets/vgg.js';
import type { RuntimeOptions } from '../runtime/index.js';
import { COLOR_MODES } from '../style/transfer.js';
import { DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, optimizeImage } from '../style/optimize.js';
import { AbortError, FileError } from '../util/errors.js';
import { expectInteger, expectNumber, expectOneOf } from '../util/validate.js';
import { resolveVggWeights } from '../weights/download.js';
import { loadVggWeights, type VggWeights } from '../weights/vgg-weights.js';
import type { JobHandler } from './jobs.js';

/** Largest output side a server job may ask for, and the default (the CLI's 512 is minutes on a CPU). */
export const OPTIMIZE_MAX_SIZE = 1024;
export const OPTIMIZE_DEFAULT_SIZE = 256;
export const OPTIMIZE_MAX_ITERATIONS = 2000;
export const OPTIMIZE_DEFAULT_ITERATIONS = 100;

export interface OptimizeJobParams {
  readonly size: number;
  readonly iterations: number;
  readonly contentWeight?: number;
  readonly styleWeight?: number;
  readonly colors?: (typeof COLOR_MODES)[number];
  readonly seed?: number;
  /** A preview image every this many iterations (default: 10). */
  readonly previewEvery: number;
}

/**
 * Checks an optimize job's parameters before it is queued.
 * @throws TypeError / RangeError worded by the validators.
 */
export function checkOptimizeParams(params: Readonly<Record<string, unknown>>): OptimizeJobParams {
  const known = new Set(['kind', 'content', 'style', 'size', 'iterations', 'contentWeight', 'styleWeight', 'colors', 'seed', 'previewEvery']);
  const unknown = Object.keys(params).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new RangeError(`Expected only ${[...known].join(', ')} in an optimize job but received ${unknown.join(', ')}`);
  return {
    size: params.size === undefined ? OPTIMIZE_DEFAULT_SIZE : expectInteger('size', params.size, 16, OPTIMIZE_MAX_SIZE),
    iterations: params.iterations === undefined ? OPTIMIZE_DEFAULT_ITERATIONS : expectInteger('iterations', params.iterations, 1, OPTIMIZE_MAX_ITERATIONS),
    contentWeight: params.contentWeight === undefined ? undefined : expectNumber('contentWeight', params.contentWeight, 0),
    styleWeight: params.styleWeight === undefined ? undefined : expectNumber('styleWeight', params.styleWeight, 0),
    colors: params.colors === undefined ? undefined : expectOneOf('colors', params.colors, COLOR_MODES),
    seed: params.seed === undefined ? undefined : expectInteger('seed', params.seed, 0, 2 ** 32 - 1),
    previewEvery: params.previewEvery === undefined ? 10 : expectInteger('previewEvery', params.previewEvery, 1),
  };
}

/** The handler; VGG weights are loaded by the first job and kept. */
export function optimizeJob(limits: { maxPixels: number; maxMemory: number }, runtime: RuntimeOptions): JobHandler {
  let vgg: Promise<VggWeights> | undefined;
  const loadVgg = (signal: AbortSignal): Promise<VggWeights> => {
    vgg ??= resolveVggWeights({ depth: 19, signal })
      .then((resolved) => loadVggWeights(resolved.path, { depth: 19, lastTap: deepestTap(19, [...DEFAULT_CONTENT_LAYERS, ...DEFAULT_STYLE_LAYERS]) }));
    vgg.catch(() => (vgg = undefined));
    return vgg;
  };
  return async (spec, { dir, signal, report, preview }) => {
    const params = checkOptimizeParams(spec.params);
    // Shrunk while decoding to the output's side; a refusal names the upload's role, not the server's path.
    const read = async (role: string) => {
      const path = spec.inputs[role];
      if (path === undefined) return undefined;
      try {
        return (await readImage(path, { maxSide: params.size, maxPixels: limits.maxPixels, maxMemory: limits.maxMemory })).image;
      } catch (error) {
        throw error instanceof FileError && error.path === path ? new Error(`${role}${error.message.slice(path.length)}`) : error;
      }
    };
    const content = await read('content');
    const style = await read('style');
    const result = await optimizeImage({
      content, styles: [{ image: style! }], vgg: await loadVgg(signal), signal, runtime,
      size: params.size, iterations: params.iterations, contentWeight: params.contentWeight, styleWeight: params.styleWeight,
      preserveColors: params.colors, seed: params.seed,
      onProgress: (p) => report({ done: p.scale * p.iterations + p.iteration, total: p.scales * p.iterations, unit: 'iterations', etaSeconds: null }),
      snapshotEvery: params.previewEvery,
      onSnapshot: async (image) => {
        const path = join(dir, 'preview.png');
        await writeImage(path, image);
        preview({ path, type: 'image/png', bytes: (await stat(path)).size });
      },
    });
    if (result.aborted) throw new AbortError();
    const output = join(dir, 'result.png');
    await writeImage(output, result.image);
    return { path: output, type: 'image/png', bytes: (await stat(output)).size };
  };
}
