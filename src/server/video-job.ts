/** The 'video' job: a video uploaded earlier, stylised frame by frame with a store model (stylizeVideo). */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { COLOR_MODES, stylizeVideo } from '../style/transfer.js';
import type { StyleModel } from '../style/model.js';
import { expectInteger, expectNumber, expectOneOf } from '../util/validate.js';
import type { JobHandler } from './jobs.js';
import { checkName } from './models-route.js';

/** A video job's parameters, as the client sends them in `POST /api/jobs`. */
export interface VideoJobParams {
  readonly model: string;
  readonly size?: number;
  readonly strength?: number;
  readonly colors?: (typeof COLOR_MODES)[number];
  readonly temporal?: number;
  readonly crf?: number;
}

/**
 * Checks a video job's parameters before it is queued.
 * @throws HttpError 400 for a bad model name; TypeError / RangeError worded by the validators.
 */
export function checkVideoParams(params: Readonly<Record<string, unknown>>): VideoJobParams {
  const known = new Set(['kind', 'input', 'model', 'size', 'strength', 'colors', 'temporal', 'crf']);
  const unknown = Object.keys(params).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new RangeError(`Expected only ${[...known].join(', ')} in a video job but received ${unknown.join(', ')}`);
  if (typeof params.model !== 'string') throw new TypeError(`Expected a model name for model but received ${JSON.stringify(params.model ?? null)}`);
  return {
    model: checkName(params.model),
    size: params.size === undefined ? undefined : expectInteger('size', params.size, 8, 65536),
    strength: params.strength === undefined ? undefined : expectNumber('strength', params.strength, 0, 1),
    colors: params.colors === undefined ? undefined : expectOneOf('colors', params.colors, COLOR_MODES),
    temporal: params.temporal === undefined ? undefined : expectNumber('temporal', params.temporal, 0, 1),
    crf: params.crf === undefined ? undefined : expectInteger('crf', params.crf, 0, 51),
  };
}

/** The handler, given how to open a store model and the memory budget for one frame. */
export function videoJob(openModel: (name: string) => Promise<StyleModel>, maxMemory: number): JobHandler {
  return async (spec, { dir, signal, report }) => {
    const params = checkVideoParams(spec.params);
    const style = await openModel(params.model);
    const output = join(dir, 'result.mp4');
    await stylizeVideo(style, spec.inputs.input, output, {
      size: params.size, strength: params.strength, preserveColors: params.colors, temporal: params.temporal, crf: params.crf,
      maxMemory, signal,
      onProgress: (p) => report({ done: p.frame, total: p.total, unit: 'frames', etaSeconds: p.etaSeconds }),
    });
    return { path: output, type: 'video/mp4', bytes: (await stat(output)).size };
  };
}
