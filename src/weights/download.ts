/**
 * Downloads into the model store: streamed to `<dest>.part`, resumed with an HTTP Range request
 * when a `.part` is there, checksummed, then renamed into place, so `dest` only ever holds a
 * verified file. `PASTICHE_OFFLINE=1` refuses before touching the network.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { VggDepth } from '../nets/vgg.js';
import { AbortError, FileError, messageOf } from '../util/errors.js';
import { storeDir } from './store.js';
import { formatChecksum, zooEntry, zooUrl, type Checksum, type ZooEntry } from './zoo.js';

export interface DownloadOptions {
  readonly checksum: Checksum;
  /** Called after every chunk with the bytes in hand (resumed ones included) and the total when known. */
  onProgress?(received: number, total: number | undefined): void;
  readonly signal?: AbortSignal;
  /** Stands in for the global fetch (tests, proxies). */
  readonly fetchImpl?: typeof fetch;
  /** Expected size, for progress when the server does not say. */
  readonly size?: number;
}

export interface DownloadResult {
  readonly path: string;
  readonly bytes: number;
  /** Bytes kept from an earlier, interrupted download (0 when it started afresh). */
  readonly resumedFrom: number;
}

/** True when PASTICHE_OFFLINE forbids downloads. */
export function isOffline(): boolean {
  const value = process.env.PASTICHE_OFFLINE?.trim().toLowerCase();
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function matches(checksum: Checksum, digest: string): boolean {
  return 'hex' in checksum ? digest === checksum.hex.toLowerCase() : digest.startsWith(checksum.prefix.toLowerCase());
}

/**
 * Downloads `url` to `dest`, resuming a `dest.part` left by an interrupted run.
 * @throws Error when offline, on HTTP errors, or when the checksum does not match (the partial
 * file is then deleted); AbortError when `signal` fires (the `.part` is kept for resuming).
 */
export async function download(url: string, dest: string, options: DownloadOptions): Promise<DownloadResult> {
  if (isOffline()) throw new Error(`Not downloading ${url}: PASTICHE_OFFLINE is set. Put that file at ${dest} yourself.`);
  const fetchImpl = options.fetchImpl ?? fetch;
  const part = `${dest}.part`;
  try {
    await mkdir(dirname(dest), { recursive: true });
  } catch (error) {
    throw new FileError(dirname(dest), `cannot create the download folder (${messageOf(error)})`, { cause: error });
  }
  const request = async (from: number): Promise<Response> => {
    try {
      return await fetchImpl(url, { headers: from > 0 ? { Range: `bytes=${from}-` } : {}, signal: options.signal });
    } catch (error) {
      if (options.signal?.aborted) throw new AbortError();
      throw new Error(`Download of ${url} failed: ${messageOf(error)}`, { cause: error });
    }
  };

  let start = await sizeOf(part);
  let response = await request(start);
  if (response.status === 416 && start > 0) {
    // The .part is as long as the file or longer: it cannot be resumed, so start over.
    await response.body?.cancel();
    start = 0;
    response = await request(0);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`Download of ${url} failed: HTTP ${response.status} ${response.statusText}`);
  }
  const hash = createHash(options.checksum.algorithm);
  let total: number | undefined;
  if (response.status === 206) {
    const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== start) {
      await response.body?.cancel();
      throw new Error(`Download of ${url} failed: asked for bytes from ${start} but the server sent '${response.headers.get('content-range')}'`);
    }
    total = range[2] === '*' ? options.size : Number(range[2]);
    await hashFile(part, hash);
  } else {
    start = 0; // a 200 carries the whole file: the server ignored the Range header
    const length = Number(response.headers.get('content-length'));
    total = Number.isFinite(length) && length > 0 ? length : options.size;
  }

  let received = start;
  const file = await open(part, start > 0 ? 'a' : 'w');
  try {
    if (!response.body) throw new Error(`Download of ${url} failed: the response has no body`);
    for await (const chunk of response.body) {
      await file.write(chunk);
      hash.update(chunk);
      received += chunk.byteLength;
      options.onProgress?.(received, total);
    }
  } catch (error) {
    if (options.signal?.aborted) throw new AbortError();
    throw new Error(`Download of ${url} was interrupted after ${received} bytes (${messageOf(error)}); run again to resume it`, { cause: error });
  } finally {
    await file.close();
  }
  if (total !== undefined && received < total) {
    throw new Error(`Download of ${url} ended after ${received} of ${total} bytes; run again to resume it`);
  }
  const digest = hash.digest('hex');
  if (!matches(options.checksum, digest)) {
    await rm(part, { force: true });
    throw new Error(`Checksum mismatch for ${url}: expected ${formatChecksum(options.checksum)} but got ${options.checksum.algorithm} ${digest}. The download was deleted; run again to fetch it anew.`);
  }
  await rename(part, dest);
  return { path: dest, bytes: received, resumedFrom: start };
}

/** The store folder that downloaded weights live in. */
export const weightsDir = (): string => join(storeDir(), 'weights');

export interface ResolveVggOptions {
  /** A local weights file or TF.js folder (the CLI's --vgg); else $PASTICHE_VGG; else the zoo. */
  readonly vgg?: string;
  readonly depth?: VggDepth;
  /** A zoo entry id (e.g. 'vgg19-torchvision'); the depth's default when omitted. */
  readonly zooId?: string;
  onProgress?(received: number, total: number | undefined): void;
  readonly signal?: AbortSignal;
  readonly fetchImpl?: typeof fetch;
}

export interface ResolvedVgg {
  readonly path: string;
  readonly origin: 'explicit' | 'cache' | 'download';
  /** The zoo entry, unless a local path was given. */
  readonly entry?: ZooEntry;
}

/**
 * Finds the VGG weights to use: an explicit path (`vgg`, else `$PASTICHE_VGG`), else the zoo
 * file cached in `<store>/weights/`, else downloads it there.
 * @throws FileError for an explicit path that does not exist; Error when offline with nothing
 * cached (saying where to put the file) or when the download fails.
 */
export async function resolveVggWeights(options: ResolveVggOptions = {}): Promise<ResolvedVgg> {
  const explicit = options.vgg ?? (process.env.PASTICHE_VGG || undefined);
  if (explicit !== undefined) {
    try {
      await stat(explicit);
    } catch (error) {
      throw new FileError(explicit, `no such VGG weights file or folder (given by ${options.vgg !== undefined ? '--vgg' : 'PASTICHE_VGG'})`, { cause: error });
    }
    return { path: explicit, origin: 'explicit' };
  }
  const entry = zooEntry(options.zooId ?? options.depth ?? 19);
  const path = join(weightsDir(), entry.fileName);
  if ((await sizeOf(path)) > 0) return { path, origin: 'cache', entry };
  const url = zooUrl(entry);
  if (isOffline()) {
    throw new Error(`No ${entry.description} and PASTICHE_OFFLINE is set, so pastiche will not download them. `
      + `Put ${entry.fileName} (from ${url}, ${formatChecksum(entry.checksum)}) at ${path}, `
      + 'or point --vgg PATH or PASTICHE_VGG at a local copy (Keras .h5, PyTorch .pth, TF.js model folder or .safetensors).');
  }
  await download(url, path, { checksum: entry.checksum, size: entry.size, onProgress: options.onProgress, signal: options.signal, fetchImpl: options.fetchImpl });
  return { path, origin: 'download', entry };
}
