/**
 * The photo stream for training a transformation network: a folder listing, a seeded order per
 * epoch, square crops decoded ahead of the training step, and a position that a checkpoint can
 * store and a later run can resume from exactly.
 *
 * The stream is the infinite sequence of epochs, each one {@link epochPermutation} of the files.
 * A batch takes the next `batch` readable files from it, so batches may run across an epoch
 * boundary. Whether a file is readable depends only on the file, never on timing, which keeps
 * batches identical between a run and its resumption even when some photos are broken.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, relative, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RgbImage } from '../image/types.js';
import { decodeSquareCrop, MAX_CROP_SIZE } from '../image/crop.js';
import { FileError, messageOf } from '../util/errors.js';
import { expectInteger } from '../util/validate.js';
import { mix32, splitmix32 } from '../util/random.js';

/** Extensions (lower case, with the dot) that {@link listPhotos} picks up, in any letter case. */
export const PHOTO_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

/**
 * Every photo under `dir`, recursively, sorted by relative path ('/'-separated, compared by code
 * unit) so the order is the same on every platform. Symbolic links, to files or folders, are not
 * followed and so not listed.
 *
 * @example
 * const files = await listPhotos('photos/train');
 * @throws {FileError} naming `dir` when it does not exist, is not a folder, cannot be read, or
 * holds no photo.
 */
export async function listPhotos(dir: string): Promise<string[]> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new FileError(dir, 'is not a folder');
  } catch (error) {
    if (error instanceof FileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FileError(dir, 'no such folder', { cause: error });
    throw new FileError(dir, `cannot read folder (${messageOf(error)})`, { cause: error });
  }
  const found: string[] = [];
  await walk(dir, '', found);
  if (found.length === 0) throw new FileError(dir, 'holds no JPEG, PNG or WebP photos');
  found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return found.map((rel) => join(dir, ...rel.split('/')));
}

async function walk(root: string, rel: string, found: string[]): Promise<void> {
  const folder = rel === '' ? root : join(root, ...rel.split('/'));
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    throw new FileError(folder, `cannot read folder (${messageOf(error)})`, { cause: error });
  }
  for (const entry of entries) {
    // Dirent types come from lstat: a symlink is neither a file nor a directory here.
    const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) await walk(root, path, found);
    else if (entry.isFile() && PHOTO_EXTENSIONS.includes(extname(entry.name).toLowerCase())) found.push(path);
  }
}

/** Where a photo stream stands: enough for a checkpoint to resume it exactly. */
export interface DataOrder {
  readonly seed: number;
  readonly epoch: number;
  /** Index into this epoch's permutation of the next file to read, 0..files-1. */
  readonly position: number;
}

/** One batch of square crops. */
export interface PhotoBatch {
  /** [batch, 3, size, size], NCHW, RGB 0..255. */
  readonly data: Float32Array;
  /** The file of each image in the batch, in order. */
  readonly files: readonly string[];
  /** The epoch of the batch's first image (a batch may end in the next epoch). */
  readonly epoch: number;
  /** Milliseconds the caller waited inside next() for this batch (0 when it was prefetched). */
  readonly waitMs: number;
}

/** Options for {@link PhotoLoader}. */
export interface PhotoLoaderOptions {
  /** Images per batch, at least 1. */
  readonly batch: number;
  /** Side of the square crops, in pixels. */
  readonly size: number;
  /** Seed of the per-epoch orders, 0..2^32-1. */
  readonly seed: number;
  /** Resume from here (default epoch 0, position 0); its seed must equal `seed`. */
  readonly order?: DataOrder;
  /** Batches decoded ahead of the caller (default 2; 0 decodes only inside next()). */
  readonly prefetch?: number;
  /** Called once for each file that cannot be read, with the reason; the file is then left out. */
  readonly onSkip?: (file: string, reason: string) => void;
}

const MAX_SEED = 0xffff_ffff;

/**
 * A permutation of 0..n-1 for one epoch, a function of (seed, epoch) only: Fisher-Yates driven by
 * a splitmix32 stream whose start mixes both, so a checkpoint needs only {seed, epoch, position}.
 *
 * @example
 * const order = epochPermutation(files.length, 42, 0);
 * @throws {TypeError} / {RangeError} unless n, seed and epoch are integers in 0..2^32-1.
 */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  expectInteger('n', n, 0, MAX_SEED);
  expectInteger('seed', seed, 0, MAX_SEED);
  expectInteger('epoch', epoch, 0, MAX_SEED);
  const next = splitmix32(mix32(seed ^ mix32((epoch + 0x9e3779b9) >>> 0)));
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = below(next, i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

/** A uniform integer in 0..bound-1, by rejection (no modulo bias). */
function below(next: () => number, bound: number): number {
  const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
  let r = next();
  while (r >= limit) r = next();
  return r % bound;
}

type Outcome = { readonly image: RgbImage } | { readonly error: string };
type Settled = { readonly batch: Assembled } | { readonly error: unknown };
interface Assembled {
  readonly data: Float32Array;
  readonly files: readonly string[];
  readonly epoch: number;
  /** Stream position (epoch * files + index) just after the batch's last file. */
  readonly end: number;
}

/**
 * Batches of square photo crops in a seeded, resumable order, decoded ahead of the caller.
 * Decoding runs in sharp's worker threads, so it proceeds while the caller's training step runs.
 * Files that cannot be read are skipped, reported once through `onSkip`, and never tried again.
 *
 * @example
 * const loader = new PhotoLoader(await listPhotos('photos/train'), { batch: 4, size: 256, seed: 1 });
 * const { data } = await loader.next(); // [4, 3, 256, 256]
 * saveCheckpoint({ ..., data: loader.order() });
 * loader.close();
 * @throws {TypeError} / {RangeError} from the constructor for bad options, an empty file list or
 * an `order` that does not fit it.
 */
export class PhotoLoader {
  /** Files found unreadable so far, with the reason (the problem, without the path). */
  readonly skipped: ReadonlyMap<string, string>;
  private readonly files: readonly string[];
  private readonly batch: number;
  private readonly size: number;
  private readonly seed: number;
  private readonly prefetch: number;
  private readonly onSkip?: (file: string, reason: string) => void;
  private readonly bad = new Map<string, string>();
  /** How many different files there are (a list may name one twice). */
  private readonly distinct: number;
  /** Decodes started ahead, by stream position; each settles, never rejects. */
  private readonly decodes = new Map<number, Promise<Outcome>>();
  private readonly perms = new Map<number, Uint32Array>();
  private readonly ready: Settled[] = [];
  private readonly waiters: Array<(settled: Settled) => void> = [];
  /** Stream position after the last batch next() returned. */
  private consumed: number;
  /** Stream position where the next batch to assemble starts. */
  private cursor: number;
  private failure: { error: unknown } | undefined;
  private pumping = false;
  private closed = false;

  constructor(files: readonly string[], options: PhotoLoaderOptions) {
    if (!Array.isArray(files) || files.some((f) => typeof f !== 'string')) {
      throw new TypeError('Expected an array of file paths for files');
    }
    if (files.length === 0) throw new RangeError('Expected at least one photo for files but received none');
    this.files = [...files];
    this.distinct = new Set(files).size;
    this.batch = expectInteger('batch', options.batch, 1);
    this.size = expectInteger('size', options.size, 1, MAX_CROP_SIZE);
    this.seed = expectInteger('seed', options.seed, 0, MAX_SEED);
    this.prefetch = options.prefetch === undefined ? 2 : expectInteger('prefetch', options.prefetch, 0);
    this.onSkip = options.onSkip;
    const order = options.order ?? { seed: this.seed, epoch: 0, position: 0 };
    if (order.seed !== this.seed) {
      throw new RangeError(`Expected order.seed to equal seed (${this.seed}) but received ${String(order.seed)}`);
    }
    const epoch = expectInteger('order.epoch', order.epoch, 0, MAX_SEED);
    const position = expectInteger('order.position', order.position, 0, files.length - 1);
    this.consumed = this.cursor = epoch * files.length + position;
    this.skipped = this.bad;
    this.kick();
  }

  /**
   * The next batch. Waits only if prefetching has not got it ready.
   * @throws {FileError} naming the files' common folder when no file can be read at all.
   * @throws {Error} after {@link close}.
   */
  async next(): Promise<PhotoBatch> {
    if (this.closed) throw new Error('PhotoLoader.next() called after close()');
    let settled = this.ready.shift() ?? this.failure;
    let waitMs = 0;
    if (settled === undefined) {
      const start = performance.now();
      settled = await new Promise<Settled>((resolve) => {
        this.waiters.push(resolve);
        this.kick();
      });
      waitMs = performance.now() - start;
    }
    this.kick();
    if ('error' in settled) throw settled.error;
    const { data, files, epoch, end } = settled.batch;
    this.consumed = end;
    return { data, files, epoch, waitMs };
  }

  /** Where the stream stands after the last batch next() returned (prefetched batches do not count). */
  order(): DataOrder {
    const n = this.files.length;
    return { seed: this.seed, epoch: Math.floor(this.consumed / n), position: this.consumed % n };
  }

  /** Stops decoding ahead and drops what was prefetched; decodes already in sharp finish unseen. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ready.length = 0;
    this.decodes.clear();
    const closedError = { error: new Error('PhotoLoader was closed while next() was waiting') };
    for (const resolve of this.waiters.splice(0)) resolve(closedError);
  }

  /** Starts assembling batches if fewer are ready than prefetch and the waiting callers want. */
  private kick(): void {
    if (this.pumping || this.closed || this.failure !== undefined) return;
    if (this.ready.length >= this.prefetch + this.waiters.length) return;
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      this.kick();
    });
  }

  private async pump(): Promise<void> {
    while (!this.closed && this.failure === undefined && this.ready.length < this.prefetch + this.waiters.length) {
      let settled: Settled;
      try {
        settled = { batch: await this.assemble() };
      } catch (error) {
        settled = { error };
      }
      if (this.closed) return;
      if ('error' in settled) {
        // Final: every caller waiting now or later gets the same error.
        this.failure = settled;
        for (const resolve of this.waiters.splice(0)) resolve(settled);
        return;
      }
      const waiter = this.waiters.shift();
      if (waiter !== undefined) waiter(settled);
      else this.ready.push(settled);
    }
  }

  /** The next `batch` readable files from the cursor, decoded and packed NCHW. */
  private async assemble(): Promise<Assembled> {
    const plane = 3 * this.size * this.size;
    const data = new Float32Array(this.batch * plane);
    const files: string[] = [];
    let epoch = 0;
    let pos = this.cursor;
    while (files.length < this.batch) {
      if (this.bad.size === this.distinct) throw this.noneReadable();
      const file = this.fileAt(pos);
      if (!this.bad.has(file)) {
        this.decodeAhead(pos, this.batch - files.length);
        const outcome = await this.decodes.get(pos)!;
        if (this.closed) throw new Error('PhotoLoader was closed');
        if ('image' in outcome) {
          if (files.length === 0) epoch = Math.floor(pos / this.files.length);
          data.set(outcome.image.data, files.length * plane);
          files.push(file);
        } else if (!this.bad.has(file)) {
          this.bad.set(file, outcome.error);
          this.onSkip?.(file, outcome.error);
        }
      }
      this.decodes.delete(pos);
      pos++;
    }
    this.cursor = pos;
    return { data, files, epoch, end: pos };
  }

  /**
   * Makes sure decodes run for the rest of this batch and for the batches the pump will assemble
   * after it, so images of one batch, and of the next ones, decode concurrently. The window is
   * counted in stream positions, which bounds memory to about (prefetch + 1) batches of crops.
   */
  private decodeAhead(pos: number, needed: number): void {
    const after = Math.max(0, this.prefetch + this.waiters.length - this.ready.length - 1);
    const end = pos + needed + after * this.batch;
    for (let p = pos; p < end; p++) {
      if (this.decodes.has(p)) continue;
      const file = this.fileAt(p);
      if (this.bad.has(file)) continue;
      this.decodes.set(p, decodeSquareCrop(file, this.size).then(
        (image) => ({ image }),
        (error: unknown) => ({ error: reasonOf(error) }),
      ));
    }
  }

  private fileAt(pos: number): string {
    const n = this.files.length;
    const epoch = Math.floor(pos / n);
    let perm = this.perms.get(epoch);
    if (perm === undefined) {
      for (const old of this.perms.keys()) if (old < Math.floor(this.cursor / n)) this.perms.delete(old);
      perm = epochPermutation(n, this.seed, epoch);
      this.perms.set(epoch, perm);
    }
    return this.files[perm[pos % n]];
  }

  private noneReadable(): FileError {
    const [file, reason] = this.bad.entries().next().value as [string, string];
    const folder = commonFolder(this.files);
    const count = this.files.length === 1 ? 'the only photo' : `any of the ${this.files.length} photos`;
    return new FileError(folder, `cannot read ${count} (first failure: ${relative(folder, file) || file}: ${reason})`);
  }
}

/** The problem in a decoding error, without the path that FileError messages start with. */
function reasonOf(error: unknown): string {
  const message = messageOf(error);
  return error instanceof FileError && message.startsWith(`${error.path}: `) ? message.slice(error.path.length + 2) : message;
}

/** The deepest folder holding every file (the folder listPhotos was given, for its output). */
function commonFolder(files: readonly string[]): string {
  let common = normalize(dirname(files[0])).split(sep);
  for (const file of files) {
    const parts = normalize(dirname(file)).split(sep);
    let k = 0;
    while (k < common.length && k < parts.length && common[k] === parts[k]) k++;
    common = common.slice(0, k);
  }
  const joined = common.join(sep);
  return joined === '' ? (files[0].startsWith(sep) ? sep : '.') : joined;
}
