/**
 * The model store: one ONNX file per style model in the user's cache directory
 * (`$PASTICHE_HOME`, else `$XDG_CACHE_HOME/pastiche`, else `~/.cache/pastiche`), with its name,
 * architecture, source and description in the file's own metadata_props.
 */
import { readdir, rm, stat, copyFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import type { onnx } from 'onnx-proto';
import { toOnnxModel } from '../graph/index.js';
import { buildTransformer, LENGSTROM } from '../nets/transformer.js';
import { writeAtomically, writeFileAtomically } from '../util/atomic.js';
import { FileError, messageOf } from '../util/errors.js';
import { builtinDir, builtinNames, builtinPath, builtinRecord } from './builtins.js';
import { packHalfWeights } from './half-weights.js';
import { isLengstromCheckpoint, readLengstromCheckpoint } from './lengstrom.js';
import { admitOnnx, readOnnxFile, readRegularFile, trialRun } from './model-door.js';
import { checkStyleModel, decodeOnnx, encodeOnnx, makeSpatialDimsSymbolic, readMetadata, setMetadata } from './onnx-file.js';
import { QUANTIZE_META } from './quantize.js';

/** Metadata keys pastiche writes into metadata_props. */
export const META = {
  name: 'pastiche.name',
  architecture: 'pastiche.architecture',
  source: 'pastiche.source',
  description: 'pastiche.description',
  created: 'pastiche.created',
  /** JSON: how pastiche trained it (architecture, loss, style hashes, steps, images seen, time). */
  training: 'pastiche.training',
} as const;

export interface StoredModel {
  readonly name: string;
  readonly path: string;
  readonly architecture: string;
  readonly source: string;
  readonly description: string;
  readonly created: string;
  readonly bytes: number;
  /** 'int8' for a model quantised by `pastiche models quantize` ({@link QUANTIZE_META}), else 'fp32'. */
  readonly precision: 'int8' | 'fp32';
  /** Shipped with pastiche in its `models/` folder (see builtins.ts) rather than kept in the store. */
  readonly builtin: boolean;
}

/** The store's root directory. */
export function storeDir(): string {
  if (process.env.PASTICHE_HOME) return resolve(process.env.PASTICHE_HOME);
  const cache = process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(cache, 'pastiche');
}

const modelsDir = (): string => join(storeDir(), 'models');
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** @throws RangeError for names that are not safe file names. */
export function checkModelName(name: string): string {
  if (!NAME.test(name) || name.endsWith('.onnx')) {
    throw new RangeError(`Expected a model name of letters, digits, '_', '.' or '-' (at most 64, not ending in .onnx) but received '${name}'`);
  }
  return name;
}

/** Path of a stored model's file (whether or not it exists). */
export function modelPath(name: string): string {
  return join(modelsDir(), `${checkModelName(name)}.onnx`);
}

/** A model source turned into an ONNX style model (not yet run). */
interface SourceModel {
  readonly model: onnx.ModelProto;
  readonly architecture: string;
  readonly input: string;
  readonly output: string;
}

/**
 * Turns a model source into an ONNX style model: a lengstrom/ml5 checkpoint directory is built
 * into the transformer network; an `.onnx` file passes the model door's static checks (regular
 * file, size, no external data, image in and out) and is given symbolic H and W.
 */
export async function modelFromSource(source: string): Promise<SourceModel> {
  let info;
  try {
    info = await stat(source);
  } catch (error) {
    throw new FileError(source, `no such model file or directory (${messageOf(error)})`, { cause: error });
  }
  // A folder named x.onnx is not a checkpoint someone meant: the door words the refusal.
  if (info.isDirectory() && !source.toLowerCase().endsWith('.onnx')) {
    if (!(await isLengstromCheckpoint(source))) {
      // Read it anyway so the error names the missing manifest or variable.
      await readLengstromCheckpoint(source);
    }
    const params = await readLengstromCheckpoint(source);
    const model = toOnnxModel(buildTransformer(LENGSTROM, params).graph);
    return { model, ...checkStyleModel(model, source), architecture: 'lengstrom' };
  }
  const admitted = await readOnnxFile(source);
  makeSpatialDimsSymbolic(admitted.model);
  return { ...admitted, architecture: readMetadata(admitted.model)[META.architecture] || 'external' };
}

function describe(path: string, model: onnx.IModelProto, bytes: number, builtin = false): StoredModel {
  const meta = readMetadata(model);
  return {
    name: meta[META.name] || basename(path, '.onnx'),
    path,
    architecture: meta[META.architecture] || 'external',
    source: meta[META.source] || '',
    description: meta[META.description] || '',
    created: meta[META.created] || '',
    bytes,
    precision: meta[QUANTIZE_META.quantized] === 'int8' ? 'int8' : 'fp32',
    builtin,
  };
}

export interface ImportOptions {
  /** Store name; default: the source's file or directory name. */
  readonly name?: string;
  readonly description?: string;
  /** Replace an existing model of that name. */
  readonly force?: boolean;
}

/**
 * Imports a checkpoint directory or ONNX file into the store, after the model door's checks and a
 * trial run on a small image (see {@link resolveModel}); nothing is stored when they fail.
 * @throws FileError naming the source when it cannot be read, holds external data, is not an
 *   image-to-image model or fails its trial run; Error when the name is taken.
 */
export async function importModel(source: string, options: ImportOptions = {}): Promise<StoredModel> {
  const name = checkModelName(options.name ?? basename(source, extname(source)));
  const target = modelPath(name);
  if (!options.force && (await stat(target).catch(() => null))) {
    throw new Error(`A model named '${name}' is already in the store (${target}); pass --force to replace it`);
  }
  const { model, architecture, input, output } = await modelFromSource(source);
  setMetadata(model, {
    [META.name]: name,
    [META.architecture]: architecture,
    [META.source]: resolve(source),
    [META.description]: options.description ?? `${architecture} style network imported from ${basename(source)}`,
    [META.created]: new Date().toISOString(),
  });
  const bytes = encodeOnnx(model);
  await trialRun(bytes, { input, output }, source);
  await writeFileAtomically(target, bytes);
  return describe(target, model, bytes.byteLength);
}

export interface SaveOptions {
  readonly architecture: string;
  readonly source: string;
  readonly description: string;
  /** Further metadata_props entries (e.g. META.training). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly force?: boolean;
}

/**
 * Saves an ONNX style model made by pastiche (e.g. a trained network) into the store under `name`.
 * @throws Error when the name is taken and `force` is not set.
 */
export async function saveModel(name: string, bytes: Uint8Array, options: SaveOptions): Promise<StoredModel> {
  const target = modelPath(name);
  if (!options.force && (await stat(target).catch(() => null))) {
    throw new Error(`A model named '${name}' is already in the store (${target}); pass --force to replace it`);
  }
  const { model } = admitOnnx(bytes, name);
  setMetadata(model, {
    ...options.metadata,
    [META.name]: name,
    [META.architecture]: options.architecture,
    [META.source]: options.source,
    [META.description]: options.description,
    [META.created]: new Date().toISOString(),
  });
  const encoded = encodeOnnx(model);
  await writeFileAtomically(target, encoded);
  return describe(target, model, encoded.byteLength);
}

/**
 * The file of model `name`: the store's, else the built-in of that name; undefined when neither
 * exists. A stored model hides a built-in of the same name.
 */
export async function findModelFile(name: string): Promise<string | undefined> {
  const stored = modelPath(name);
  if (await stat(stored).catch(() => null)) return stored;
  return builtinPath(name);
}

/** Whether the store holds a model called `name` (built-ins do not count: a stored model may hide one). */
export async function hasModel(name: string): Promise<boolean> {
  return Boolean(await stat(modelPath(name)).catch(() => null));
}

/** The folder where training a model called `name` keeps its checkpoint, log and previews. */
export function trainingDir(name: string): string {
  return join(storeDir(), 'training', checkModelName(name));
}

/** Every model in the store, by name, then the built-ins that no stored model hides. */
export async function listModels(): Promise<StoredModel[]> {
  const files = await readdir(modelsDir()).catch(() => [] as string[]);
  const read = async (path: string, builtin: boolean): Promise<StoredModel> => {
    try {
      const bytes = await readRegularFile(path);
      return describe(path, decodeOnnx(bytes, path), bytes.byteLength, builtin);
    } catch {
      const bytes = (await stat(path).catch(() => null))?.size ?? 0;
      return { name: basename(path, '.onnx'), path, architecture: 'unreadable', source: '', description: 'not a readable ONNX file', created: '', bytes, precision: 'fp32', builtin };
    }
  };
  const stored = files.filter((f) => f.endsWith('.onnx') && !f.startsWith('.')).sort();
  const models: StoredModel[] = [];
  for (const file of stored) models.push(await read(join(modelsDir(), file), false));
  const dir = builtinDir();
  for (const name of dir === undefined ? [] : await builtinNames()) {
    if (stored.includes(`${name}.onnx`)) continue;
    const model = await read(join(dir!, `${name}.onnx`), true);
    // A built-in is named by its file (what --model resolves) and described by its painting first.
    const credits = (await builtinRecord(name))?.credits;
    models.push({ ...model, name, description: credits ? `${credits.artist}, ${credits.title} (${credits.year}); ${model.description}` : model.description });
  }
  return models;
}

/** @throws Error when no model has that name; FileError naming the file when it cannot be deleted (no rights on the store). */
export async function removeModel(name: string): Promise<void> {
  const path = modelPath(name);
  if (!(await stat(path).catch(() => null))) {
    if (await builtinPath(name)) throw new Error(`'${name}' is a built-in style, shipped with pastiche: it cannot be removed (a stored model of the same name would hide it)`);
    throw new Error(`No model named '${name}' in the store (${modelsDir()})`);
  }
  try {
    await rm(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied: the model store folder is not writable by this user' : messageOf(error);
    throw new FileError(path, `cannot remove model '${name}' (${why})`, { cause: error });
  }
}

/**
 * Copies a stored (or built-in) model's ONNX file to `destination`; with `half`, its large weights
 * are stored as float16 (half the size, computed in float32: {@link packHalfWeights}).
 */
export async function exportModel(name: string, destination: string, options: { half?: boolean } = {}): Promise<void> {
  const path = await findModelFile(name);
  if (path === undefined) throw new Error(`No model named '${name}' in the store (${modelsDir()}) nor built in`);
  if (!options.half) {
    await writeAtomically(destination, (temp) => copyFile(path, temp));
    return;
  }
  const { model } = await readOnnxFile(path);
  packHalfWeights(model);
  await writeFileAtomically(destination, encodeOnnx(model));
}

/** A resolved style model: ONNX bytes plus what to call it. */
export interface ResolvedModel {
  readonly label: string;
  readonly bytes: Uint8Array;
  readonly input: string;
  readonly output: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Resolves `--model`: a store name (or a built-in style's), a path to an `.onnx` file, or a checkpoint directory. Every
 * model passes the model door: a regular file of at most 2 GiB, no external data, one float image
 * in and one out, and a trial run on a 64x64 image that must return an image of that size with
 * finite values. The bytes returned are the ones checked.
 * @throws Error listing the stored names when nothing matches; FileError naming the file when the
 *   door refuses it.
 */
export async function resolveModel(spec: string): Promise<ResolvedModel> {
  const looksLikePath = spec.includes('/') || spec.includes('\\') || spec.endsWith('.onnx') || spec.startsWith('.');
  if (!looksLikePath && NAME.test(spec)) {
    const path = await findModelFile(spec);
    if (path !== undefined) {
      const { model, input, output } = await readOnnxFile(path);
      const bytes = encodeOnnx(model);
      await trialRun(bytes, { input, output }, path);
      return { label: spec, bytes, input, output, metadata: readMetadata(model) };
    }
    if (!(await stat(spec).catch(() => null))) {
      const names = (await listModels()).map((m) => m.name);
      throw new Error(`No model named '${spec}' in the store (${modelsDir()}) nor built in; ${names.length ? `available: ${names.join(', ')}` : 'it is empty: add one with `pastiche models import`'}`);
    }
  }
  const { model, input, output } = await modelFromSource(spec);
  const bytes = encodeOnnx(model);
  await trialRun(bytes, { input, output }, spec);
  return { label: spec, bytes, input, output, metadata: readMetadata(model) };
}
