/** Raw RGB24 frames → H.264 video file (with the source's audio), through an ffmpeg child process. */
import { spawn } from 'node:child_process';
import { rename, rm } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { AbortError, FileError, messageOf, throwIfAborted } from '../util/errors.js';
import { checkWritableDir, makeParents, sweepStaleTemps, tempPathFor, trackTemp, untrackTemp } from '../util/atomic.js';
import { expectInteger, expectOneOf } from '../util/validate.js';
import { ffmpegPath, inputArgs, notRunnable, probeVideo, StderrTail, watchProcess } from './ffmpeg.js';

export const x264Presets = [
  'ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow',
] as const;

export interface EncoderOptions {
  /** Output file; its extension picks the container: .mp4, .m4v, .mov or .mkv. */
  readonly output: string;
  /** Size of the frames passed to `write`. Odd sizes are padded to even ones (see `evenSize`). */
  readonly width: number;
  readonly height: number;
  /** Frame rate as a rational string ('25/1', '30000/1001') or an integer string. */
  readonly fps: string;
  /** A media file whose first audio stream is copied (re-encoded to AAC where the container needs it). */
  readonly audioFrom?: string;
  /** x264 constant rate factor, 0..51; default 18 (visually lossless). */
  readonly crf?: number;
  /** x264 preset; default 'veryfast'. */
  readonly preset?: (typeof x264Presets)[number];
  /** Aborting kills ffmpeg and removes the temporary file; pending calls reject with AbortError. */
  readonly signal?: AbortSignal;
}

export interface VideoEncoder {
  /** Size of the encoded video (the input size rounded up to even numbers). */
  readonly width: number;
  readonly height: number;
  /** Sends one RGB24 frame; resolves once ffmpeg has taken it, so the array may then be reused. */
  write(frame: Uint8Array): Promise<void>;
  /** Ends the stream, waits for ffmpeg, and renames the temporary file to `output`. */
  finish(): Promise<void>;
  /** Kills ffmpeg and removes the temporary file; `output` is left untouched. Safe to call twice. */
  abort(): Promise<void>;
}

const containers = ['.mp4', '.m4v', '.mov', '.mkv'];

/**
 * Checks, before any work and creating nothing, that a video can be written to `output`: a
 * container pastiche writes, in a writable place.
 * @throws {FileError} naming `output` with the reason.
 */
export async function checkVideoOutput(output: string): Promise<void> {
  const ext = extname(output).toLowerCase();
  if (!containers.includes(ext)) {
    throw new FileError(output, `unsupported video container '${ext}' (use ${containers.join(', ')})`);
  }
  await checkWritableDir(output);
}
/** Audio codecs each container takes as they are; anything else is re-encoded to AAC. */
const copyable: Record<string, readonly string[]> = {
  '.mp4': ['aac', 'mp3', 'ac3', 'eac3', 'alac'],
  '.m4v': ['aac', 'mp3', 'ac3', 'eac3', 'alac'],
  '.mov': ['aac', 'mp3', 'ac3', 'eac3', 'alac', 'pcm_s16le', 'pcm_s16be', 'pcm_s24le', 'pcm_s24be', 'pcm_f32le'],
  '.mkv': ['aac', 'mp3', 'ac3', 'eac3', 'alac', 'opus', 'vorbis', 'flac', 'mp2', 'dts', 'truehd',
    'pcm_s16le', 'pcm_s16be', 'pcm_s24le', 'pcm_s32le', 'pcm_f32le'],
};

/**
 * H.264 in yuv420p needs even sizes. Odd sizes grow by one pixel, and the new row/column repeats
 * its neighbour (ffmpeg `pad` + `fillborders=mode=smear`) instead of showing a black line.
 */
export function evenSize(width: number, height: number): { width: number; height: number } {
  return { width: width + (width % 2), height: height + (height % 2) };
}

/**
 * Starts ffmpeg writing an H.264 video to a temporary file beside `output`.
 * @example const enc = await createEncoder({ output: 'out.mp4', width: 640, height: 360, fps: '30000/1001' });
 *   for (const frame of frames) await enc.write(frame); await enc.finish();
 * @throws FileError when `output` cannot be written or has an unsupported extension; FileError naming
 *   `output` with ffmpeg's last message when ffmpeg fails; TypeError/RangeError for bad options.
 */
export async function createEncoder(options: EncoderOptions): Promise<VideoEncoder> {
  const { output, signal } = options;
  const width = expectInteger('width', options.width, 1, 16384);
  const height = expectInteger('height', options.height, 1, 16384);
  if (typeof options.fps !== 'string' || !/^[1-9]\d*(\/[1-9]\d*)?$/.test(options.fps)) {
    throw new TypeError(`Expected a frame rate like '25' or '30000/1001' for fps but received ${JSON.stringify(options.fps)}`);
  }
  const crf = expectInteger('crf', options.crf ?? 18, 0, 51);
  const preset = expectOneOf('preset', options.preset ?? 'veryfast', x264Presets);
  await checkVideoOutput(output);
  const ext = extname(output).toLowerCase();
  throwIfAborted(signal);
  const audio = options.audioFrom === undefined ? null : (await probeVideo(options.audioFrom)).audio;
  throwIfAborted(signal);
  // Folders made for the output go again if encoding fails: a failed run leaves nothing behind.
  const removeMadeFolders = await makeParents(output);

  const even = evenSize(width, height);
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', options.fps, '-i', '-'];
  if (audio !== null) args.push(...inputArgs(options.audioFrom as string));
  args.push('-map', '0:v:0');
  if (audio !== null) {
    args.push('-map', `1:${audio.stream}`, '-c:a', copyable[ext]?.includes(audio.codec) ? 'copy' : 'aac');
  }
  if (even.width !== width || even.height !== height) {
    const right = even.width - width;
    const bottom = even.height - height;
    args.push('-vf', `pad=${even.width}:${even.height}:0:0,fillborders=right=${right}:bottom=${bottom}:mode=smear`);
  }
  args.push('-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', preset, '-crf', String(crf));
  if (ext !== '.mkv') args.push('-movflags', '+faststart');

  await sweepStaleTemps(dirname(output));
  const temp = tempPathFor(output);
  args.push(temp);
  const bin = ffmpegPath();
  const child = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  trackTemp(temp, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stderr = new StderrTail();
  const watched = watchProcess(child, stderr);
  const exited = watched.exited;
  // EPIPE when ffmpeg dies early arrives here; the exit code and stderr say why.
  child.stdin.on('error', () => {});

  // 'failed' keeps the first error, so later calls repeat it instead of a confusing AbortError.
  let state: 'open' | 'finishing' | 'done' | 'aborted' | 'failed' = 'open';
  let failedWith: Error | undefined;
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const abort = async (): Promise<void> => {
    if (state === 'done') return;
    if (state !== 'failed') state = 'aborted';
    signal?.removeEventListener('abort', onAbort);
    kill();
    await exited;
    await rm(temp, { force: true });
    untrackTemp(temp);
    await removeMadeFolders();
  };
  const onAbort = (): void => void abort();
  signal?.addEventListener('abort', onAbort, { once: true });

  /** Ends in failure: the temporary file goes, and this error is what every later call gets. */
  const fail = async (reason?: Error): Promise<Error> => {
    const error = reason !== undefined ? reason : signal?.aborted || state === 'aborted' ? new AbortError()
      : watched.spawnError !== undefined ? notRunnable(bin, watched.spawnError)
      : new FileError(output, `encoding failed (${stderr.reason(temp)})`);
    if (state !== 'aborted') {
      state = 'failed';
      failedWith = error;
    }
    await abort();
    return error;
  };
  const checkOpen = (call: string): void => {
    if (state === 'open') return;
    if (state === 'failed') throw failedWith as Error;
    throw state === 'aborted' ? new AbortError() : new Error(`${call} after finish()`);
  };
  const frameSize = width * height * 3;

  return {
    width: even.width,
    height: even.height,
    async write(frame) {
      checkOpen('write()');
      if (!(frame instanceof Uint8Array) || frame.length !== frameSize) {
        const got = frame instanceof Uint8Array ? `${frame.length} bytes` : `${typeof frame}`;
        throw new RangeError(`Expected an RGB24 frame of ${width}x${height}x3 = ${frameSize} bytes but received ${got}`);
      }
      throwIfAborted(signal);
      // Racing against exit: a write into a dead ffmpeg may never call back.
      const written = new Promise<boolean>((resolve) => child.stdin.write(frame, (error) => resolve(error == null)));
      const ok = await Promise.race([written, exited.then(() => false)]);
      if (!ok || child.exitCode !== null || watched.spawnError !== undefined) {
        await exited;
        throw await fail();
      }
    },
    async finish() {
      checkOpen('finish()');
      state = 'finishing';
      child.stdin.end();
      const code = await exited;
      if (code !== 0 || signal?.aborted) throw await fail();
      signal?.removeEventListener('abort', onAbort);
      try {
        await rename(temp, output);
        untrackTemp(temp);
        state = 'done';
      } catch (error) {
        throw await fail(new FileError(output, `cannot move the finished video into place (${messageOf(error)})`, { cause: error }));
      }
    },
    abort,
  };
}
