/**
 * Starting parameters for fine-tuning (`--init`) and distillation teachers: a model's weights from
 * wherever they are kept — its training checkpoint in the store, a checkpoint file, a
 * lengstrom/ml5 checkpoint folder, or an ONNX file exported with plain (unlowered) convolutions.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { Tensor } from '../graph/index.js';
import { FileError } from '../util/errors.js';
import { isLengstromCheckpoint, readLengstromCheckpoint } from '../weights/lengstrom.js';
import { readOnnxFile } from '../weights/model-door.js';
import { checkModelName, findModelFile, trainingDir } from '../weights/store.js';
import { loadCheckpoint } from './train-checkpoint.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface StartingParams {
  readonly params: Map<string, Tensor>;
  /** The architecture they belong to, when the source says. */
  readonly architecture?: string;
  readonly label: string;
}

const isFile = async (path: string): Promise<boolean> => (await stat(path).catch(() => null))?.isFile() ?? false;
const isDir = async (path: string): Promise<boolean> => (await stat(path).catch(() => null))?.isDirectory() ?? false;

/** Float initializers of an ONNX model file by name (raw or float_data), read through the model door. */
async function onnxInitializers(path: string): Promise<Map<string, Tensor>> {
  const { model } = await readOnnxFile(path);
  const out = new Map<string, Tensor>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== onnxProto.onnx.TensorProto.DataType.FLOAT || !t.name) continue;
    const shape = (t.dims ?? []).map(Number);
    const data = t.rawData?.length
      ? new Float32Array(t.rawData.buffer.slice(t.rawData.byteOffset, t.rawData.byteOffset + t.rawData.byteLength))
      : Float32Array.from(t.floatData ?? []);
    out.set(t.name, { data, shape });
  }
  return out;
}

/**
 * Reads starting parameters from `spec`: a store name (its training checkpoint, else its ONNX
 * file), a `.safetensors` checkpoint, a lengstrom checkpoint folder or an `.onnx` file.
 * @throws FileError naming the source when nothing usable is found there.
 */
export async function loadStartingParams(spec: string): Promise<StartingParams> {
  let nameOk = false;
  try { checkModelName(spec); nameOk = true; } catch { /* a path */ }
  if (nameOk && !(await stat(spec).catch(() => null))) {
    const checkpoint = join(trainingDir(spec), CHECKPOINT_FILE);
    if (await isFile(checkpoint)) {
      const state = await loadCheckpoint(checkpoint);
      return { params: new Map(state.params), architecture: state.record.architecture, label: spec };
    }
    const file = await findModelFile(spec);
    if (file !== undefined && (await isFile(file))) return { params: await onnxInitializers(file), label: spec };
    throw new FileError(spec, 'no such model in the store, nor a file or folder');
  }
  if (await isDir(spec)) {
    if (await isFile(join(spec, CHECKPOINT_FILE))) return loadStartingParams(join(spec, CHECKPOINT_FILE));
    if (await isLengstromCheckpoint(spec)) return { params: await readLengstromCheckpoint(spec), architecture: 'lengstrom', label: spec };
    throw new FileError(spec, `is a folder with neither ${CHECKPOINT_FILE} nor a lengstrom checkpoint (manifest.json)`);
  }
  if (!(await isFile(spec))) throw new FileError(spec, 'no such model file');
  if (spec.endsWith('.safetensors')) {
    const state = await loadCheckpoint(spec);
    return { params: new Map(state.params), architecture: state.record.architecture, label: spec };
  }
  return { params: await onnxInitializers(spec), label: spec };
}
