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
import type H5wasm from 'h5wasm/node';
import type { Tensor } from '../graph/index.js';
import { FileError, messageOf } from '../util/errors.js';
import { selectNames, type TensorSource, type Wanted } from './tensor-source.js';

type H5 = typeof H5wasm;
type H5File = InstanceType<H5['File']>;
type H5Group = InstanceType<H5['Group']>;
type H5Dataset = InstanceType<H5['Dataset']>;

let h5wasm: Promise<H5> | undefined;

/** h5wasm's module (a 4 MB wasm build) is loaded on first use, not when pastiche is imported. */
function loadH5(): Promise<H5> {
  h5wasm ??= import('h5wasm/node').then(async ({ default: h5 }) => {
    // HDF5 errors then throw, instead of printing a page of diagnostics and returning a bad handle.
    (await h5.ready).activate_throwing_error_handler();
    return h5;
  });
  return h5wasm;
}

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Where the HDF5 superblock starts (at 0, or after a user block of 512·2^k bytes), and the file
 * length it records; null when there is no HDF5 signature.
 */
async function findSuperblock(path: string): Promise<{ offset: number; endOfFile: number | undefined; size: number } | null> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(64);
    for (let offset = 0; offset + 8 <= size && offset <= 1 << 20; offset = offset === 0 ? 512 : offset * 2) {
      await handle.read(head.fill(0), 0, 64, offset);
      if (!SIGNATURE.every((b, i) => head[i] === b)) continue;
      // The end-of-file address sits after fixed fields that differ between superblock versions.
      const version = head[8];
      const offsetSize = version < 2 ? head[13] : head[9];
      const at = version === 0 ? 24 + 2 * offsetSize : version === 1 ? 28 + 2 * offsetSize : 12 + 2 * offsetSize;
      const endOfFile = offsetSize === 8 && at + 8 <= 64 ? offset + Number(head.readBigUInt64LE(at)) : undefined;
      return { offset, endOfFile, size };
    }
    return null;
  } finally {
    await handle.close();
  }
}

/** True when the file starts with the HDF5 signature (at 0, or after a user block). */
export async function isHdf5(path: string): Promise<boolean> {
  return (await findSuperblock(path)) !== null;
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

/** Every dataset under `group`, by path relative to it. */
function datasetsUnder(h5: H5, group: H5Group, prefix = ''): [string, H5Dataset][] {
  const found: [string, H5Dataset][] = [];
  for (const key of group.keys()) {
    const entity = group.get(key);
    if (entity instanceof h5.Dataset) found.push([prefix + key, entity]);
    else if (entity instanceof h5.Group) found.push(...datasetsUnder(h5, entity, `${prefix}${key}/`));
  }
  return found;
}

/** Maps `layer/kind` → dataset for every layer group of the file. */
function indexLayers(h5: H5, file: H5File, path: string): Map<string, H5Dataset> {
  const isGroup = (entity: unknown): entity is H5Group => entity instanceof h5.Group;
  const isDataset = (entity: unknown): entity is H5Dataset => entity instanceof h5.Dataset;
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
      : datasetsUnder(h5, group);
    for (const [name, dataset] of datasets) {
      const key = `${layer}/${kerasWeightKind(name)}`;
      if (index.has(key)) throw new FileError(path, `layer '${layer}' has two weights that read as '${key}'`);
      index.set(key, dataset);
    }
  }
  return index;
}

/** HDF5's error stack as one line: its innermost, most specific message. */
function hdf5Message(error: unknown): string {
  const lines = messageOf(error).split('\n').map((l) => l.trim()).filter((l) => /^#\d+:/.test(l));
  return lines.length > 0 ? lines[lines.length - 1].replace(/^#\d+:\s*\S+ line \d+ in /, '') : messageOf(error);
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
  const superblock = await findSuperblock(path);
  if (!superblock) throw new FileError(path, 'is not an HDF5 file (no HDF5 signature)');
  // Checked here because HDF5 itself would print a page of diagnostics to stderr first.
  if (superblock.endOfFile !== undefined && superblock.endOfFile > superblock.size) {
    throw new FileError(path, `is truncated: its HDF5 header says ${superblock.endOfFile} bytes but the file has ${superblock.size}`);
  }
  const h5 = await loadH5();
  let file: H5File;
  try {
    file = new h5.File(path, 'r');
  } catch (error) {
    throw new FileError(path, `the HDF5 library cannot open it (${hdf5Message(error)})`, { cause: error });
  }
  let index: Map<string, H5Dataset>;
  try {
    index = indexLayers(h5, file, path);
  } catch (error) {
    file.close();
    if (error instanceof FileError) throw error;
    throw new FileError(path, `cannot read its layer groups (${hdf5Message(error)})`, { cause: error });
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
          throw new FileError(path, `cannot read weight '${name}' (${hdf5Message(error)})`, { cause: error });
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
