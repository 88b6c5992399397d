/**
 * TensorFlow.js layers (and graph) models: `model.json` whose `weightsManifest` lists groups of
 * shard files; each group's tensors lie back to back, in manifest order, across the concatenation
 * of its shards. Weights may be float32/int32 or quantised (uint8/uint16 affine, float16).
 *
 * Only the tensors asked for are read, and only the shards they lie in need to exist: a folder
 * holding just the first shards of a big model (its convolutions, not its classifier) works.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Tensor } from '../graph/index.js';
import { FileError, messageOf } from '../util/errors.js';
import { decodeLittleEndian, halfToFloat } from './dtypes.js';
import { selectNames, type TensorSource, type Wanted } from './tensor-source.js';

export interface TfjsQuantization {
  readonly dtype: 'uint8' | 'uint16' | 'float16';
  readonly scale?: number;
  readonly min?: number;
  readonly original_dtype?: string;
}

/** One tensor of the manifest and where its bytes lie in its group. */
export interface TfjsWeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly quantization?: TfjsQuantization;
  /** Index into the manifest's groups. */
  readonly group: number;
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface TfjsManifest {
  /** The model.json read. */
  readonly path: string;
  /** Shard file paths of each group, resolved against model.json's folder. */
  readonly groups: readonly (readonly string[])[];
  readonly specs: readonly TfjsWeightSpec[];
}

export interface TfjsReadOptions {
  /** Told about every byte range read (for progress, and to check what was touched). */
  onRead?(path: string, bytes: number): void;
}

const STORED_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** `dir` may be the model folder or its model.json. */
function modelJsonPath(source: string, isDir: boolean): string {
  return isDir ? join(source, 'model.json') : source;
}

/**
 * Reads a model.json's weights manifest and computes each tensor's byte range.
 * @throws FileError for a missing or malformed model.json.
 */
export async function readTfjsManifest(source: string): Promise<TfjsManifest> {
  let isDir = false;
  try {
    isDir = (await stat(source)).isDirectory();
  } catch (error) {
    throw new FileError(source, `no such TF.js model file or folder (${messageOf(error)})`, { cause: error });
  }
  const path = modelJsonPath(source, isDir);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new FileError(path, `cannot read a TF.js model.json (${messageOf(error)})`, { cause: error });
  }
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(manifest)) throw new FileError(path, 'has no weightsManifest array: not a TF.js model');
  const folder = dirname(path);
  const groups: string[][] = [];
  const specs: TfjsWeightSpec[] = [];
  manifest.forEach((group: { paths?: unknown; weights?: unknown }, g) => {
    if (!Array.isArray(group?.paths) || !group.paths.every((p) => typeof p === 'string') || !Array.isArray(group.weights)) {
      throw new FileError(path, `weightsManifest[${g}] needs 'paths' (strings) and 'weights'`);
    }
    groups.push((group.paths as string[]).map((p) => join(folder, p)));
    let offset = 0;
    for (const w of group.weights as Partial<TfjsWeightSpec>[]) {
      if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0) || typeof w.dtype !== 'string') {
        throw new FileError(path, `weightsManifest[${g}] has an entry without name, integer shape and dtype`);
      }
      const stored = w.quantization?.dtype ?? w.dtype;
      const bytes = STORED_BYTES[stored];
      if (bytes === undefined) {
        // Strings have per-element lengths, so nothing after one in its group can be located.
        throw new FileError(path, `tensor '${w.name}' has dtype '${stored}', which pastiche cannot read`);
      }
      const byteLength = w.shape.reduce((a, b) => a * b, 1) * bytes;
      specs.push({ name: w.name, shape: [...w.shape], dtype: w.dtype, quantization: w.quantization, group: g, byteOffset: offset, byteLength });
      offset += byteLength;
    }
  });
  return { path, groups, specs };
}

/** Where each shard of a group starts, learnt by stat-ing shards in order until `end` is covered. */
async function shardLayout(manifest: TfjsManifest, group: number, end: number, neededBy: (offset: number) => string): Promise<{ path: string; start: number; size: number }[]> {
  const shards: { path: string; start: number; size: number }[] = [];
  let start = 0;
  for (const path of manifest.groups[group]) {
    if (start >= end) break;
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (error) {
      throw new FileError(path, `missing shard of ${basename(manifest.path)}, needed for tensor '${neededBy(start)}' (${messageOf(error)})`, { cause: error });
    }
    shards.push({ path, start, size });
    start += size;
  }
  if (start < end) {
    throw new FileError(manifest.path, `weight group ${group + 1} has ${start} bytes in its shards but tensor '${neededBy(start)}' needs bytes up to ${end}`);
  }
  return shards;
}

function dequantise(bytes: Uint8Array, spec: TfjsWeightSpec, path: string): Float32Array {
  const q = spec.quantization;
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (!q) {
    if (spec.dtype === 'float32') return decodeLittleEndian(bytes, 'float32', count);
    return decodeLittleEndian(bytes, spec.dtype === 'int32' ? 'int32' : 'bool', count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  if (q.dtype === 'float16') {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
    return out;
  }
  const { scale, min } = q;
  if (typeof scale !== 'number' || typeof min !== 'number') {
    throw new FileError(path, `tensor '${spec.name}' is ${q.dtype}-quantised without a numeric scale and min`);
  }
  return affine(q.dtype === 'uint8' ? bytes : new Uint16Array(bytes.slice().buffer, 0, count), scale, min, out);
}

/** out = q·scale + min; kept monomorphic per array type so the loop stays fast. */
function affine(q: Uint8Array | Uint16Array, scale: number, min: number, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = q[i] * scale + min;
  return out;
}

/** Reads the named tensors of a manifest, touching only the shards they lie in. */
export async function readTfjsTensors(manifest: TfjsManifest, names: readonly string[], options: TfjsReadOptions = {}): Promise<Map<string, Tensor>> {
  const byName = new Map(manifest.specs.map((s) => [s.name, s]));
  const specs = names.map((name) => {
    const spec = byName.get(name);
    if (!spec) throw new FileError(manifest.path, `has no tensor '${name}'`);
    return spec;
  });
  const bytesOf = new Map<string, Uint8Array>();
  for (const group of new Set(specs.map((s) => s.group))) {
    const inGroup = specs.filter((s) => s.group === group).sort((a, b) => a.byteOffset - b.byteOffset);
    const end = Math.max(...inGroup.map((s) => s.byteOffset + s.byteLength));
    const neededBy = (offset: number): string => (inGroup.find((s) => s.byteOffset + s.byteLength > offset) ?? inGroup[inGroup.length - 1]).name;
    const shards = await shardLayout(manifest, group, end, neededBy);
    for (const shard of shards) {
      const overlapping = inGroup.filter((s) => s.byteOffset < shard.start + shard.size && s.byteOffset + s.byteLength > shard.start);
      if (overlapping.length === 0) continue;
      const handle = await open(shard.path, 'r').catch((error: unknown) => {
        throw new FileError(shard.path, `cannot open shard (${messageOf(error)})`, { cause: error });
      });
      try {
        for (const spec of overlapping) {
          let bytes = bytesOf.get(spec.name);
          if (!bytes) bytesOf.set(spec.name, (bytes = new Uint8Array(spec.byteLength)));
          const from = Math.max(spec.byteOffset, shard.start);
          const to = Math.min(spec.byteOffset + spec.byteLength, shard.start + shard.size);
          const { bytesRead } = await handle.read(bytes, from - spec.byteOffset, to - from, from - shard.start);
          if (bytesRead !== to - from) throw new FileError(shard.path, `shard ended early while reading tensor '${spec.name}'`);
          options.onRead?.(shard.path, to - from);
        }
      } finally {
        await handle.close();
      }
    }
  }
  const tensors = new Map<string, Tensor>();
  for (const spec of specs) tensors.set(spec.name, { data: dequantise(bytesOf.get(spec.name)!, spec, manifest.path), shape: spec.shape });
  return tensors;
}

/** Opens a TF.js model (folder or model.json) as a tensor source. */
export async function openTfjsLayers(source: string, options: TfjsReadOptions = {}): Promise<TensorSource> {
  const manifest = await readTfjsManifest(source);
  return {
    path: manifest.path,
    shapes: new Map(manifest.specs.map((s) => [s.name, s.shape])),
    read: (names) => readTfjsTensors(manifest, names, options),
  };
}

/**
 * Reads tensors of a TF.js layers model, e.g. `block1_conv1/kernel` [3, 3, 3, 64] (TensorFlow HWIO
 * layout), dequantised to float32.
 * @param wanted names or a predicate; all tensors when omitted.
 * @throws FileError naming model.json for malformed manifests and unknown names, or naming a
 * shard that is missing but needed.
 * @example const convs = await readTfjsLayers('vgg19-tfjs', (name) => name.startsWith('block'));
 */
export async function readTfjsLayers(source: string, wanted?: Wanted, options: TfjsReadOptions = {}): Promise<Map<string, Tensor>> {
  const manifest = await readTfjsManifest(source);
  return readTfjsTensors(manifest, selectNames(manifest.specs.map((s) => s.name), wanted), options);
}
