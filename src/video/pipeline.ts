/** Whole-video processing: decode → transform each frame → encode, with the audio carried over. */
import { AbortError, FileError, throwIfAborted } from '../util/errors.js';
import { refuseOverwritingInputs } from '../util/same-file.js';
import { expectInteger } from '../util/validate.js';
import { decodeFrames } from './decode.js';
import { checkVideoOutput, createEncoder, type EncoderOptions, type VideoEncoder } from './encode.js';
import { probeVideo } from './ffmpeg.js';
import { readAhead } from './read-ahead.js';

/** Progress after each frame; `total` is the probe's estimate, so `frame` may pass it slightly. */
export interface VideoProgress {
  readonly frame: number;
  readonly total: number | null;
  /** Frames processed per second of wall-clock time so far. */
  readonly fps: number;
  /** Seconds left at the current speed, or null while the total is unknown. */
  readonly etaSeconds: number | null;
}

export interface ProcessVideoOptions {
  readonly input: string;
  readonly output: string;
  /**
   * Maps one interleaved RGB24 frame (height × width × 3) to another. It returns a frame of the input
   * size, or of outWidth × outHeight when those are given. It may return the array it was given.
   */
  readonly transform: (frame: Uint8Array, index: number) => Promise<Uint8Array> | Uint8Array;
  /** Scale frames while decoding, before `transform` sees them (both or neither); default: the input's size. */
  readonly decodeWidth?: number;
  readonly decodeHeight?: number;
  /** Size of the frames `transform` returns (both or neither); default: the decoded size. */
  readonly outWidth?: number;
  readonly outHeight?: number;
  readonly crf?: EncoderOptions['crf'];
  readonly preset?: EncoderOptions['preset'];
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: VideoProgress) => void;
}

export interface ProcessVideoResult {
  readonly frames: number;
  /** The frame rate, kept from the input: a rational like '30000/1001'. */
  readonly fps: string;
  /** Size of the written video: the transform's output size, rounded up to even numbers. */
  readonly width: number;
  readonly height: number;
  /** Wall-clock seconds the whole run took. */
  readonly seconds: number;
}

/**
 * Runs `transform` over every frame of `input` and writes an H.264 video to `output` with the same
 * frame rate and the input's audio. The next frame is decoded while the current one is transformed.
 * The video is written to a temporary file that is renamed only on success: on error or abort both
 * ffmpeg processes are killed, the temporary file is removed, and `output` is not created.
 *
 * @example await processVideo({ input: 'in.mp4', output: 'out.mp4', transform: (rgb) => stylise(rgb) });
 * @throws FileError for unreadable input or unwritable output, and, before any work, for an output
 *   that is the input (same device and inode: another spelling, a symlink or a hard link);
 *   AbortError when `signal` fires; RangeError when `transform` returns a frame of the wrong size;
 *   whatever `transform` throws.
 */
export async function processVideo(options: ProcessVideoOptions): Promise<ProcessVideoResult> {
  const { input, output, transform, signal, onProgress } = options;
  if (typeof transform !== 'function') throw new TypeError('Expected a function for transform');
  if ((options.outWidth === undefined) !== (options.outHeight === undefined)) {
    throw new TypeError('Expected both outWidth and outHeight, or neither');
  }
  await refuseOverwritingInputs([{ input, output }]);
  await checkVideoOutput(output);
  throwIfAborted(signal);
  const started = performance.now();
  const info = await probeVideo(input);
  if ((options.decodeWidth === undefined) !== (options.decodeHeight === undefined)) {
    throw new TypeError('Expected both decodeWidth and decodeHeight, or neither');
  }
  const decoded = options.decodeWidth === undefined ? undefined
    : { width: expectInteger('decodeWidth', options.decodeWidth, 1, 16384), height: expectInteger('decodeHeight', options.decodeHeight, 1, 16384) };
  const outWidth = options.outWidth === undefined ? decoded?.width ?? info.width : expectInteger('outWidth', options.outWidth, 1, 16384);
  const outHeight = options.outHeight === undefined ? decoded?.height ?? info.height : expectInteger('outHeight', options.outHeight, 1, 16384);
  const outSize = outWidth * outHeight * 3;

  // One controller stops both processes, whether the caller aborts or something fails.
  const stop = new AbortController();
  const forward = (): void => stop.abort();
  signal?.addEventListener('abort', forward, { once: true });
  let encoder: VideoEncoder | undefined;
  let frames: AsyncGenerator<Uint8Array, void, undefined> | undefined;
  try {
    throwIfAborted(signal);
    encoder = await createEncoder({
      output, width: outWidth, height: outHeight, fps: info.fps,
      audioFrom: info.hasAudio ? input : undefined, crf: options.crf, preset: options.preset, signal: stop.signal,
    });
    // Not for-await: on failure ffmpeg must be killed before the iterator is closed (see catch).
    frames = readAhead(decodeFrames(input, { info, signal: stop.signal, ...decoded }));
    let index = 0;
    for (;;) {
      const current = await frames.next();
      if (current.done === true) break;
      const result = await transform(current.value, index);
      throwIfAborted(signal);
      if (!(result instanceof Uint8Array) || result.length !== outSize) {
        throw new RangeError(`Expected transform to return an RGB24 frame of ${outWidth}x${outHeight}x3 = ${outSize} bytes ` +
          `but received ${result instanceof Uint8Array ? `${result.length} bytes` : typeof result} for frame ${index}` +
          (options.outWidth === undefined ? ' (pass outWidth and outHeight to change the size)' : ''));
      }
      await encoder.write(result);
      index += 1;
      if (onProgress !== undefined) {
        const elapsed = (performance.now() - started) / 1000;
        const fps = elapsed > 0 ? index / elapsed : 0;
        const total = info.frameCount;
        const etaSeconds = total === null || fps === 0 ? null : Math.max(0, total - index) / fps;
        onProgress({ frame: index, total, fps, etaSeconds });
      }
    }
    if (index === 0) throw new FileError(input, 'no frames could be decoded');
    await encoder.finish();
    return { frames: index, fps: info.fps, width: encoder.width, height: encoder.height, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    stop.abort();
    await Promise.all([encoder?.abort(), frames?.return().catch(() => {})]);
    if (signal?.aborted) throw new AbortError();
    throw error;
  } finally {
    signal?.removeEventListener('abort', forward);
  }
}
