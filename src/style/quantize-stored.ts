/**
 * `pastiche models quantize`: an int8 copy of a style model in the store, calibrated on photos
 * ({@link quantizeModel}) and checked against its float source on photos it was not calibrated on,
 * the PSNR recorded in the new model's metadata.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { readImage } from '../image/codec.js';
import { reflectPadTo } from '../image/pad.js';
import { syntheticPhotos } from '../image/synthetic-photos.js';
import type { RgbImage } from '../image/types.js';
import { withModel } from '../runtime/index.js';
import { expectInteger } from '../util/validate.js';
import { trialRun } from '../weights/model-door.js';
import { decodeOnnx, readMetadata } from '../weights/onnx-file.js';
import { quantizeModel, QUANTIZE_META } from '../weights/quantize.js';
import { checkModelName, hasModel, META, modelPath, resolveModel, saveModel, type StoredModel } from '../weights/store.js';
import { listPhotos } from './train-data.js';

/** Defaults of `models quantize`, shared by the CLI's help and the API. */
export const QUANTIZE_DEFAULTS = {
  /** Photos read (or made): enough for stable uint8 ranges, few enough for seconds of work. */
  photos: 8,
  /** Longer side the photos are brought down to: ranges barely depend on it, run time does. */
  size: 384,
  /** Side of the synthetic photos used when no folder is given (4:3). */
  syntheticWidth: 384,
} as const;

export interface QuantizeStoredOptions {
  /** Name of the int8 model (default: the source's name + '-int8'). */
  readonly as?: string;
  /** Folder of photos to calibrate on (default: a synthetic set, {@link syntheticPhotos}). */
  readonly calibration?: string;
  /** How many photos to use, a quarter of them held out for the PSNR (default 8). */
  readonly photos?: number;
  /** Replace a model already called `as`. */
  readonly force?: boolean;
  readonly threads?: number;
}

export interface QuantizeStoredResult {
  readonly model: StoredModel;
  /** The source as given (a store name or a path). */
  readonly source: string;
  /** Where the photos came from: the folder, or 'synthetic'. */
  readonly photoSet: string;
  readonly calibrated: number;
  /** PSNR of the int8 output against the float one, per held-out photo (the calibration photo when only one). */
  readonly psnr: readonly { photo: string; db: number }[];
  /** Whether the PSNR photos were held out of the calibration. */
  readonly heldOut: boolean;
}

/** PSNR in dB between two images of the same size (0..255 scale); Infinity when equal. */
export function psnr(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return sum === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / sum);
}

/** The name an int8 copy of `source` gets by default: its store name or file stem + '-int8'. */
export function defaultInt8Name(source: string): string {
  const stem = basename(source.replace(/[/\\]+$/, ''), extname(source) === '.onnx' ? '.onnx' : '');
  return `${stem}-int8`;
}

interface Photo { readonly name: string; readonly image: RgbImage }

/** `count` photos spread over the folder's sorted list, shrunk to `size` and padded to a multiple of 4 (the networks' strides). */
async function readPhotos(dir: string, count: number, size: number): Promise<Photo[]> {
  const files = await listPhotos(dir);
  const picked = files.length <= count ? files : Array.from({ length: count }, (_, i) => files[Math.floor((i * files.length) / count)]);
  return Promise.all(picked.map(async (file) => ({ name: basename(file), image: reflectPadTo((await readImage(file, { maxSide: size })).image, 4).image })));
}

/**
 * Quantises a style model (a store name, an .onnx file or a checkpoint folder) to int8 and stores
 * it through the model door under `as`. With n photos, n − max(1, ⌊n/4⌋) calibrate and the rest
 * measure the PSNR against the float model (a single photo does both, and the result says so).
 * @throws RangeError for a bad name or photo count, or a source that is already int8; Error when
 *   `as` is taken without `force` or the source is unknown (both before any work); FileError naming
 *   the calibration path when it is not a folder of photos.
 */
export async function quantizeStoredModel(source: string, options: QuantizeStoredOptions = {}): Promise<QuantizeStoredResult> {
  const count = expectInteger('the number of calibration photos', options.photos ?? QUANTIZE_DEFAULTS.photos, 1, 1000);
  const name = checkModelName(options.as ?? defaultInt8Name(source));
  if (!options.force && (await hasModel(name))) {
    throw new Error(`A model named '${name}' is already in the store (${modelPath(name)}); pass --force to replace it, or --as to choose another name`);
  }
  const resolved = await resolveModel(source);
  const metadata = resolved.metadata;
  if (metadata[QUANTIZE_META.quantized]) throw new RangeError(`Expected a float model to quantise but received ${source}, which is already ${metadata[QUANTIZE_META.quantized]}`);
  const photos = options.calibration === undefined
    ? syntheticPhotos(count, QUANTIZE_DEFAULTS.syntheticWidth, (QUANTIZE_DEFAULTS.syntheticWidth * 3) / 4).map((image, i) => ({ name: `synthetic-${i + 1}`, image }))
    : await readPhotos(options.calibration, count, QUANTIZE_DEFAULTS.size);

  const held = photos.length === 1 ? 0 : Math.max(1, Math.floor(photos.length / 4));
  const calibration = photos.slice(0, photos.length - held);
  const measured = held === 0 ? photos : photos.slice(photos.length - held);
  const int8 = await quantizeModel(resolved.bytes, calibration.map((p) => p.image), { label: resolved.label, threads: options.threads });
  await trialRun(int8, resolved, `${resolved.label} (int8)`);
  const runAll = (bytes: Uint8Array, label: string): Promise<Float32Array[]> => withModel(bytes, { threads: options.threads, memoryArena: false }, label, async (model) => {
    const outputs: Float32Array[] = [];
    for (const { image } of measured) outputs.push((await model.run({ [resolved.input]: { data: image.data, dims: [1, 3, image.height, image.width] } }))[resolved.output].data);
    return outputs;
  });
  const reference = await runAll(resolved.bytes, resolved.label);
  const quantized = await runAll(int8, `${resolved.label} (int8)`);
  const db = measured.map((p, i) => ({ photo: p.name, db: psnr(reference[i], quantized[i]) }));
  const photoSet = options.calibration ?? 'synthetic';

  const record = JSON.parse(readMetadata(decodeOnnx(int8, name))[QUANTIZE_META.calibration]) as Record<string, unknown>;
  const model = await saveModel(name, int8, {
    // A checkpoint folder has no metadata yet: the store builds it as the lengstrom network.
    architecture: metadata[META.architecture] || ((await stat(source).catch(() => null))?.isDirectory() ? 'lengstrom' : 'external'),
    source: resolved.label,
    description: `int8 of ${resolved.label}${metadata[META.description] ? `: ${metadata[META.description]}` : ''}`,
    force: options.force,
    metadata: {
      [QUANTIZE_META.calibration]: JSON.stringify({
        ...record,
        source: resolved.label,
        photos: photoSet,
        calibrationPhotos: calibration.map((p) => p.name),
        psnr: { against: 'the float source', heldOut: held > 0, photos: db.map((d) => ({ photo: d.photo, db: Number(d.db.toFixed(2)) })) },
      }),
    },
  });
  return { model, source, photoSet, calibrated: calibration.length, psnr: db, heldOut: held > 0 };
}
