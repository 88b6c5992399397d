/**
 * Live processing: the newest frame of a live source → transform → a file, a stream or a window.
 * When the transform falls behind, frames are dropped at the source (never queued) and the output
 * repeats the last transformed frame in their place, so a file or stream keeps the source's clock:
 * N source frames make N output frames, whatever the machine's speed.
 */
import { AbortError, throwIfAborted } from '../util/errors.js';
import { expectInteger, expectNumber } from '../util/validate.js';
import { checkLiveOutput, openLiveSink, type LiveOutput, type LiveSink } from './live-sink.js';
import { checkLiveSource, openLiveSource, planLiveSource, type LiveSource, type LiveSourceOptions } from './live-source.js';
import type { VideoProgress } from './pipeline.js';

/** {@link VideoProgress} (frames written) with what a live run adds. */
export interface LiveProgress extends VideoProgress {
  /** Frames the source delivered, dropped ones included. */
  readonly received: number;
  /** Frames transformed (the others were dropped and repeated). */
  readonly stylized: number;
  readonly dropped: number;
  /** Frames per second arriving from the source. */
  readonly inputFps: number;
  /** Frames per second transformed. */
  readonly outputFps: number;
  /** Milliseconds from a frame's arrival to its output being written (moving average). */
  readonly latencyMs: number;
}

export interface LiveOptions extends LiveSourceOptions {
  /** What {@link planLiveSource} reads: '/dev/video0', 'screen', a URL, a lavfi graph with format 'lavfi', '-', a file. */
  readonly source: string;
  readonly output: LiveOutput;
  /** Longest side of the frames transformed; larger sources are scaled down by ffmpeg (default 640). */
  readonly size?: number;
  /** Maps one RGB24 frame (height × width × 3) to another of the same size. */
  readonly transform: (frame: Uint8Array, size: { width: number; height: number }) => Promise<Uint8Array> | Uint8Array;
  /** Stop after this many output frames. */
  readonly frames?: number;
  /** Stop after this many seconds of the source (its frame rate × seconds frames). */
  readonly duration?: number;
  /** x264 quality of a file or stream. */
  readonly crf?: number;
  /** Ends the run cleanly, as reaching `frames` does: the output is finished (the CLI's Ctrl-C). */
  readonly stop?: AbortSignal;
  /** Cancels: both processes killed, a file's temporary copy removed; rejects with AbortError. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: LiveProgress) => void;
}

export interface LiveResult {
  readonly source: string;
  /** The file, the stream URL, or 'window'. */
  readonly output: string;
  /** Frames written, repeats for dropped frames included. */
  readonly frames: number;
  readonly received: number;
  readonly stylized: number;
  readonly dropped: number;
  readonly width: number;
  readonly height: number;
  /** The source's frame rate, which the output keeps ('30/1'). */
  readonly fps: string;
  readonly seconds: number;
  readonly inputFps: number;
  readonly outputFps: number;
  /** Mean milliseconds from a frame's arrival to its output being written. */
  readonly latencyMs: number;
  readonly stoppedBy: 'frames' | 'duration' | 'stop' | 'end' | 'window';
}

const outputName = (output: LiveOutput): string => (output.kind === 'file' ? output.path : output.kind === 'stream' ? output.url : 'window');

/**
 * Runs `transform` on a live source until `frames` or `duration` is reached, `stop` fires, the
 * window is closed, or the source ends. Source and output are checked before anything starts.
 *
 * A source that is finite by nature (a file, a lavfi graph, stdin) may end: the output is finished
 * and the run resolves. A device, the screen or a network stream that ends by itself has failed:
 * the output is still finished (what was recorded stays playable) and the run rejects with
 * "<source>: the stream ended after N frames …".
 *
 * @example await runLive({ source: '/dev/video0', output: planLiveOutput('out.mp4'), frames: 300, transform: (rgb) => invert(rgb) });
 * @throws {FileError} for a missing device or file, an unwritable output or one that is the input;
 *   Error for a source ffmpeg cannot open, a stream that ends, a missing ffplay or ffmpeg;
 *   AbortError when `signal` fires; RangeError when `transform` returns a frame of the wrong size.
 */
export async function runLive(options: LiveOptions): Promise<LiveResult> {
  const { output, transform, signal, stop, onProgress } = options;
  if (typeof transform !== 'function') throw new TypeError('Expected a function for transform');
  const size = expectInteger('size', options.size ?? 640, 8, 16384);
  const maxFrames = options.frames === undefined ? undefined : expectInteger('frames', options.frames, 1);
  const duration = options.duration === undefined ? undefined : expectNumber('duration', options.duration, 0.001);
  const plan = planLiveSource(options.source, options);
  await checkLiveSource(plan);
  await checkLiveOutput(output, plan.kind === 'file' ? [options.source] : []);
  throwIfAborted(signal);

  const started = performance.now();
  let source: LiveSource | undefined;
  let sink: LiveSink | undefined;
  const onAbort = (): void => void source?.close();
  let onStop: (() => void) | undefined;
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // A camera that never answers must not hold up Ctrl-C: either signal gives up the opening.
    const opening = new AbortController();
    const giveUp = (): void => opening.abort();
    for (const s of [stop, signal]) s?.addEventListener('abort', giveUp, { once: true });
    if (stop?.aborted || signal?.aborted) giveUp();
    source = await openLiveSource(plan, size, opening.signal).finally(() => {
      for (const s of [stop, signal]) s?.removeEventListener('abort', giveUp);
    });
    throwIfAborted(signal);
    const { width, height, fps, frameRate } = source;
    const limit = Math.min(maxFrames ?? Infinity, duration === undefined ? Infinity : Math.max(1, Math.round(duration * frameRate)));
    sink = await openLiveSink(output, { width, height, fps, crf: options.crf });
    const frameSize = width * height * 3;
    const stopped = new Promise<null>((resolve) => {
      onStop = () => resolve(null);
      if (stop?.aborted) resolve(null);
      stop?.addEventListener('abort', onStop, { once: true });
    });

    let written = 0;
    let stylized = 0;
    let last: Uint8Array | undefined;
    let latency = 0;
    let latencySum = 0;
    let firstArrival: number | undefined;
    let stoppedBy: LiveResult['stoppedBy'] = 'end';
    const rates = (): { inputFps: number; outputFps: number } => {
      const seconds = firstArrival === undefined ? 0 : (performance.now() - firstArrival) / 1000;
      return seconds > 0 ? { inputFps: (source as LiveSource).received / seconds, outputFps: stylized / seconds } : { inputFps: 0, outputFps: 0 };
    };
    /** Writes one frame; false when the window was closed. */
    const put = async (frame: Uint8Array): Promise<boolean> => {
      if (!(await (sink as LiveSink).write(frame))) return false;
      written += 1;
      return true;
    };

    while (written < limit) {
      if (stop?.aborted) {
        stoppedBy = 'stop';
        break;
      }
      const item = await Promise.race([source.next(), stopped]);
      throwIfAborted(signal);
      if (item === null) {
        stoppedBy = stop?.aborted ? 'stop' : 'end';
        break;
      }
      firstArrival ??= item.value.arrivedAt;
      // Dropped frames keep their place in time: the last output stands in for each (the first
      // output for those dropped before it), so the output has as many frames as the source.
      const repeat = async (frame: Uint8Array, times: number): Promise<boolean> => {
        for (let k = 0; k < times && written < limit; k++) if (!(await put(frame))) return false;
        return true;
      };
      if (last !== undefined && !(await repeat(last, item.dropped))) {
        stoppedBy = 'window';
        break;
      }
      if (written >= limit) break;
      const result = await transform(item.value.data, { width, height });
      throwIfAborted(signal);
      if (!(result instanceof Uint8Array) || result.length !== frameSize) {
        throw new RangeError(`Expected transform to return an RGB24 frame of ${width}x${height}x3 = ${frameSize} bytes ` +
          `but received ${result instanceof Uint8Array ? `${result.length} bytes` : typeof result} for frame ${item.value.index}`);
      }
      if (!(await repeat(result, last === undefined ? item.dropped + 1 : 1))) {
        stoppedBy = 'window';
        break;
      }
      stylized += 1;
      last = result;
      const ms = performance.now() - item.value.arrivedAt;
      latencySum += ms;
      latency = stylized === 1 ? ms : 0.9 * latency + 0.1 * ms;
      if (onProgress !== undefined) {
        const { inputFps, outputFps } = rates();
        const total = Number.isFinite(limit) ? limit : null;
        const fpsWritten = (written * 1000) / Math.max(1, performance.now() - started);
        onProgress({
          frame: written, total, fps: fpsWritten, etaSeconds: total === null || fpsWritten === 0 ? null : Math.max(0, total - written) / fpsWritten,
          received: source.received, stylized, dropped: source.dropped, inputFps, outputFps, latencyMs: latency,
        });
      }
    }
    if (written >= limit) stoppedBy = maxFrames !== undefined && written >= maxFrames ? 'frames' : 'duration';
    const { inputFps, outputFps } = rates();
    const failure = source.failure();
    const received = source.received;
    const dropped = source.dropped;
    await source.close();
    const name = outputName(output);
    if (written === 0) {
      await sink.abort();
      if (stoppedBy === 'stop') throw new AbortError();
      throw new Error(`${plan.label}: no frames${failure === null ? '' : ` (${failure})`}; nothing was written`);
    }
    await sink.finish();
    if (stoppedBy === 'end' && (plan.endless || failure !== null)) {
      const kept = output.kind === 'file' ? `; the ${written} frames written are in ${name}` : '';
      const what = plan.endless ? 'the stream ended' : 'reading failed';
      throw new Error(`${plan.label}: ${what} after ${received} frames${failure === null ? '' : ` (${failure})`}${kept}`);
    }
    return {
      source: options.source, output: name, frames: written, received, stylized, dropped, width, height, fps,
      seconds: (performance.now() - started) / 1000, inputFps, outputFps, latencyMs: latencySum / stylized, stoppedBy,
    };
  } catch (error) {
    await Promise.all([source?.close(), sink?.abort()]);
    if (signal?.aborted) throw new AbortError();
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (onStop !== undefined) stop?.removeEventListener('abort', onStop);
  }
}
