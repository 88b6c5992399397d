/**
 * Keras HDF5 weight files (`model.save_weights(...h5)`, `keras.applications` downloads), read with
 * h5wasm. One group per layer, holding that layer's weights as datasets; the layer's
 * `weight_names` attribute lists them. Two namings occur:
 *   Keras 1 / early 2: `block1_conv1/block1_conv1_W_1:0`, `block1_conv1/block1_conv1_b_1:0`
 *   Keras 2:           `block1_conv1/block1_conv1/kernel:0`, `block1_conv1/block1_conv1/bias:0`
 * Both are reported as `block1_conv1/kernel` and `block1_conv1/bias`, the names TF.js uses.
 * Whole-model saves keep the same layout under a `model_weights` group.
 */
import { open, stat } from 'node:fs/promises';
import h5wasm from 'h5wasm/node';
import type { Tensor } from '../graph/index.js';
import { FileError, messageOf } from '../util/errors.js';
import { selectNames, type TensorSource, type Wanted } from './tensor-source.js';

type H5File = InstanceType<typeof h5wasm.File>;
type H5Group = InstanceType<typeof h5wasm.Group>;
type H5Dataset = InstanceType<typeof h5wasm.Dataset>;

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when the file starts with the HDF5 signature (at 0, or after a user block of 512·2^k bytes). */
export async function isHdf5(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const buffer = Buffer.alloc(8);
    for (let offset = 0; offset + 8 <= size; offset = offset === 0 ? 512 : offset * 2) {
      await handle.read(buffer, 0, 8, offset);
      if (SIGNATURE.every((b, i) => buffer[i] === b)) return true;
      if (offset >= 1 << 20) break;
    }
    return false;
  } finally {
    await handle.close();
  }
}

/** `block1_conv1_W_1:0` / `kernel:0` → `kernel`; `…_b_1:0` / `bias:0` → `bias`; else the bare name. */
export function kerasWeightKind(datasetName: string): string {
  const last = datasetName.split('/').pop()!.replace(/:\d+$/, '');
  if (/(^|_)(W|kernel)(_\d+)?$/.test(last)) return 'kernel';
  if (/(^|_)(b|bias)(_\d+)?$/.test(last)) return 'bias';
  return last;
}

function asStrings(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : String(v)).replace(/\0+$/, ''));
}

function isGroup(entity: unknown): entity is H5Group {
  return entity instanceof h5wasm.Group;
}

function isDataset(entity: unknown): entity is H5Dataset {
  return entity instanceof h5wasm.Dataset;
}

/** Every dataset under `group`, by path relative to it. */
function datasetsUnder(group: H5Group, prefix = ''): [string, H5Dataset][] {
  const found: [string, H5Dataset][] = [];
  for (const key of group.keys()) {
    const entity = group.get(key);
    if (isDataset(entity)) found.push([prefix + key, entity]);
    else if (isGroup(entity)) found.push(...datasetsUnder(entity, `${prefix}${key}/`));
  }
  return found;
}

/** Maps `layer/kind` → dataset for every layer group of the file. */
function indexLayers(file: H5File, path: string): Map<string, H5Dataset> {
  const model = file.get('model_weights');
  const root: H5Group = isGroup(model) ? model : file;
  const index = new Map<string, H5Dataset>();
  for (const layer of root.keys()) {
    const group = root.get(layer);
    if (!isGroup(group)) continue;
    const listed = 'weight_names' in group.attrs ? asStrings(group.get_attribute('weight_names', true)) : [];
    const datasets: [string, H5Dataset][] = listed.length > 0
      ? listed.map((name) => {
        const dataset = group.get(name);
        if (!isDataset(dataset)) throw new FileError(path, `layer '${layer}' lists weight '${name}' but has no such dataset`);
        return [name, dataset];
      })
      : datasetsUnder(group);
    for (const [name, dataset] of datasets) {
      const key = `${layer}/${kerasWeightKind(name)}`;
      if (index.has(key)) throw new FileError(path, `layer '${layer}' has two weights that read as '${key}'`);
      index.set(key, dataset);
    }
  }
  return index;
}

function toFloat32(value: unknown, name: string, path: string): Float32Array {
  if (value instanceof Float32Array) return new Float32Array(value);
  if (value instanceof Float64Array || value instanceof Int32Array || value instanceof Int16Array || value instanceof Uint8Array || value instanceof Int8Array || value instanceof Uint16Array) {
    return Float32Array.from(value);
  }
  throw new FileError(path, `weight '${name}' is not numeric`);
}

/** Opens a Keras HDF5 file; call `close` when done. */
export async function openKerasH5(path: string): Promise<TensorSource & { close(): void }> {
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a file');
  } catch (error) {
    throw new FileError(path, `cannot read Keras weights (${messageOf(error)})`, { cause: error });
  }
  if (!(await isHdf5(path))) throw new FileError(path, 'is not an HDF5 file (no HDF5 signature)');
  await h5wasm.ready;
  // h5wasm reports open failures on stderr and returns an unusable handle rather than throwing.
  const file = new h5wasm.File(path, 'r');
  if (file.file_id < 0n) throw new FileError(path, 'HDF5 library could not open it (damaged or truncated?)');
  let index: Map<string, H5Dataset>;
  try {
    index = indexLayers(file, path);
  } catch (error) {
    file.close();
    if (error instanceof FileError) throw error;
    throw new FileError(path, `cannot read its layer groups (${messageOf(error)})`, { cause: error });
  }
  const shapes = new Map<string, readonly number[]>();
  for (const [name, dataset] of index) shapes.set(name, dataset.shape ?? []);
  let closed = false;
  return {
    path,
    shapes,
    async read(names) {
      if (closed) throw new Error(`${path} was closed`);
      const tensors = new Map<string, Tensor>();
      for (const name of names) {
        const dataset = index.get(name);
        if (!dataset) throw new FileError(path, `has no weight '${name}'`);
        let value: unknown;
        try {
          value = dataset.value;
        } catch (error) {
          throw new FileError(path, `cannot read weight '${name}' (${messageOf(error)})`, { cause: error });
        }
        tensors.set(name, { data: toFloat32(value, name, path), shape: shapes.get(name)! });
      }
      return tensors;
    },
    close() {
      if (!closed) file.close();
      closed = true;
    },
  };
}

/**
 * Reads weights of a Keras HDF5 file as `layer/kernel` (TensorFlow HWIO for convolutions) and
 * `layer/bias`.
 * @param wanted names or a predicate; all weights when omitted.
 * @throws FileError naming the file when it is not HDF5, lacks a weight or cannot be read.
 */
export async function readKerasH5(path: string, wanted?: Wanted): Promise<Map<string, Tensor>> {
  const source = await openKerasH5(path);
  try {
    return await source.read(selectNames(source.shapes.keys(), wanted));
  } finally {
    source.close();
  }
}
