/** Video file → raw RGB24 frames, through an ffmpeg child process. */
import { spawn } from 'node:child_process';
import { AbortError, FileError, throwIfAborted } from '../util/errors.js';
import { expectInteger } from '../util/validate.js';
import { ffmpegPath, inputArgs, notRunnable, probeVideo, StderrTail, type VideoInfo } from './ffmpeg.js';

export interface DecodeOptions {
  /** Scale frames to this size (both or neither); default: the video's own (rotated) size. */
  readonly width?: number;
  readonly height?: number;
  /** The file's probe, when the caller already has it (saves running ffmpeg once more). */
  readonly info?: VideoInfo;
  /** Aborting kills ffmpeg; the iterator then rejects with AbortError. */
  readonly signal?: AbortSignal;
}

/**
 * Decodes a video into interleaved RGB24 frames (`Uint8Array` of height × width × 3, row-major),
 * one freshly allocated array per frame. ffmpeg applies the file's rotation tag and converts
 * variable frame rates to the probed constant rate, so frames match `probeVideo`'s size and fps.
 *
 * Decoding is strict (`-xerror`): a truncated or corrupt file throws rather than yielding a
 * silently shortened video. Breaking out of the loop kills ffmpeg.
 *
 * @example for await (const rgb of decodeFrames('clip.mp4')) { ... }
 * @throws FileError naming the file (missing, unreadable, truncated: with ffmpeg's last message);
 *   AbortError when `signal` fires; RangeError/TypeError for bad sizes.
 */
export async function* decodeFrames(path: string, options: DecodeOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const { signal } = options;
  if ((options.width === undefined) !== (options.height === undefined)) {
    throw new TypeError('Expected both width and height for decodeFrames scaling, or neither');
  }
  if (options.width !== undefined) expectInteger('width', options.width, 1, 16384);
  if (options.height !== undefined) expectInteger('height', options.height, 1, 16384);
  throwIfAborted(signal);
  const info = options.info ?? (await probeVideo(path));
  throwIfAborted(signal);
  const width = options.width ?? info.width;
  const height = options.height ?? info.height;
  const frameSize = width * height * 3;

  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-xerror', ...inputArgs(path), '-map', `0:${info.videoStream}`];
  if (width !== info.width || height !== info.height) args.push('-vf', `scale=${width}:${height}`);
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', '-');

  const bin = ffmpegPath();
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = new StderrTail();
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, error }));
    child.on('close', (code) => resolve({ code }));
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  signal?.addEventListener('abort', kill, { once: true });

  let index = 0;
  try {
    // Each byte is copied once, from the pipe's chunk into its frame: no re-concatenation.
    let frame: Uint8Array | null = null;
    let filled = 0;
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      throwIfAborted(signal); // chunks read before the kill must not come out as frames
      let offset = 0;
      while (offset < chunk.length) {
        frame ??= new Uint8Array(frameSize);
        const n = Math.min(frameSize - filled, chunk.length - offset);
        frame.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === frameSize) {
          const done = frame;
          frame = null;
          filled = 0;
          index += 1;
          throwIfAborted(signal);
          yield done;
        }
      }
    }
    const { code, error } = await exited;
    throwIfAborted(signal);
    if (error !== undefined) {
      throw notRunnable(bin, error);
    }
    if (code !== 0) {
      throw new FileError(path, `decoding failed after ${index} frames (${stderr.reason(path)})`);
    }
    if (filled !== 0) throw new FileError(path, `ffmpeg ended inside frame ${index + 1} (${filled} of ${frameSize} bytes)`);
  } catch (error) {
    if (signal?.aborted && !(error instanceof AbortError)) throw new AbortError();
    throw error;
  } finally {
    signal?.removeEventListener('abort', kill);
    kill();
  }
}
