/**
 * Training checkpoints: one safetensors file holding the network's parameters and Adam's moments
 * as tensors, and everything else needed to continue bit for bit (step, data order, RNG-free
 * schedule state, the run's configuration, loss history) as JSON in its metadata. Written to a
 * temporary name and renamed, so a crash or a full disk leaves the previous checkpoint intact.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Tensor } from '../graph/index.js';
import { FileError, messageOf } from '../util/errors.js';
import { readSafetensors, writeSafetensors } from '../weights/safetensors.js';
import type { DataOrder } from './train-data.js';

/** What a run was asked to do, as recorded in its checkpoints and the trained model. */
export interface TrainRecord {
  /** The model's name (not part of what a resume must match). */
  readonly name?: string;
  readonly architecture: string;
  /** The full transformer configuration (widths, blocks, padding ...). */
  readonly config: unknown;
  readonly batch: number;
  readonly size: number;
  readonly steps: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly data: string;
  /** The loss: kind, layers, weights, style images (name + sha256) or teacher. */
  readonly loss: Record<string, unknown>;
  /** Where the first parameters came from (`--init`), if not a fresh initialisation. */
  readonly init?: string;
}

/** One step's losses: `loss` and the weighted terms. */
export interface LossEntry {
  readonly step: number;
  readonly loss: number;
  readonly terms: Readonly<Record<string, number>>;
}

export interface TrainState {
  readonly record: TrainRecord;
  /** Steps completed. */
  readonly step: number;
  readonly imagesSeen: number;
  /** Where the photo loader continues. */
  readonly order: DataOrder;
  /** Training seconds so far, summed over every resumed session. */
  readonly seconds: number;
  readonly history: readonly LossEntry[];
  readonly params: ReadonlyMap<string, Tensor>;
  /** Adam's first and second moments per parameter, and its step count. */
  readonly adam: { readonly m: ReadonlyMap<string, Float32Array>; readonly v: ReadonlyMap<string, Float32Array>; readonly step: number };
}

const META_KEY = 'pastiche.train';
const FORMAT = 1;

/**
 * The parts of a record that must match for a checkpoint to continue a run: everything but the
 * step count (which a resume may extend).
 */
export function recordFingerprint(record: TrainRecord): string {
  const { steps: _steps, name: _name, ...fixed } = record;
  return createHash('sha256').update(JSON.stringify(fixed)).digest('hex').slice(0, 16);
}

/** Writes `state` to `path` atomically. */
export async function saveCheckpoint(path: string, state: TrainState): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of state.params) {
    tensors.set(`param.${name}`, t);
    tensors.set(`adam.m.${name}`, { data: state.adam.m.get(name)!, shape: t.shape });
    tensors.set(`adam.v.${name}`, { data: state.adam.v.get(name)!, shape: t.shape });
  }
  const meta = {
    format: FORMAT, fingerprint: recordFingerprint(state.record), record: state.record, step: state.step,
    imagesSeen: state.imagesSeen, order: state.order, seconds: state.seconds, adamStep: state.adam.step, history: state.history,
  };
  await writeSafetensors(path, tensors, { [META_KEY]: JSON.stringify(meta) });
}

/**
 * Reads a checkpoint written by `saveCheckpoint`.
 * @throws FileError naming the file when it is missing, not a pastiche checkpoint, or damaged.
 */
export async function loadCheckpoint(path: string): Promise<TrainState> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FileError(path, 'no such checkpoint');
  if (!info.isFile()) throw new FileError(path, 'is not a checkpoint file');
  let read;
  try {
    read = await readSafetensors(path);
  } catch (error) {
    throw new FileError(path, `not a readable checkpoint (${messageOf(error)})`, { cause: error });
  }
  const text = read.metadata[META_KEY];
  if (!text) throw new FileError(path, 'is a safetensors file but not a pastiche training checkpoint');
  let meta;
  try {
    meta = JSON.parse(text);
  } catch {
    throw new FileError(path, 'has damaged checkpoint metadata');
  }
  if (meta.format !== FORMAT) throw new FileError(path, `is a checkpoint of format ${meta.format}; this pastiche reads format ${FORMAT}`);
  const params = new Map<string, Tensor>();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [name, t] of read.tensors) {
    if (name.startsWith('param.')) params.set(name.slice(6), t);
    else if (name.startsWith('adam.m.')) m.set(name.slice(7), t.data);
    else if (name.startsWith('adam.v.')) v.set(name.slice(7), t.data);
  }
  for (const name of params.keys()) {
    if (!m.has(name) || !v.has(name)) throw new FileError(path, `lacks Adam's moments for '${name}'`);
  }
  return {
    record: meta.record, step: meta.step, imagesSeen: meta.imagesSeen, order: meta.order, seconds: meta.seconds,
    history: meta.history, params, adam: { m, v, step: meta.adamStep },
  };
}
