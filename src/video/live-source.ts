/**
 * Live sources for `pastiche live`: a camera, the screen, a stream URL, an ffmpeg lavfi graph, a
 * video file or stdin, read by one ffmpeg process as raw RGB24 frames at the source's own pace.
 * The newest frame wins: frames that arrive while the previous one is still being stylised are
 * dropped (and counted), so latency stays one frame instead of growing with a queue.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { AbortError, FileError, throwIfAborted } from '../util/errors.js';
import { expectInteger, expectNumber, expectOneOf } from '../util/validate.js';
import { ffmpegPath, inputArgs, notRunnable, parseRate, probeVideo, StderrTail, watchProcess } from './ffmpeg.js';
import { latestOnly, type LatestItem } from './latest.js';

/** Input formats `--format` names: capture devices, a filter graph, raw RGB24 frames on stdin. */
export const LIVE_FORMATS = ['v4l2', 'x11grab', 'avfoundation', 'dshow', 'lavfi', 'rawvideo'] as const;
export type LiveFormat = (typeof LIVE_FORMATS)[number];

/** URL schemes read as network streams. */
export const STREAM_SCHEMES = ['rtsp', 'rtsps', 'rtmp', 'rtmps', 'http', 'https', 'udp', 'tcp', 'srt', 'rtp'] as const;

/** Frame rate asked of devices and the screen, and assumed for raw frames on stdin, unless told. */
export const DEFAULT_CAPTURE_RATE = 30;

export interface LiveSourceOptions {
  /** How ffmpeg reads the source; default: guessed from it (/dev/video* v4l2, 'screen' x11grab, URLs, files). */
  readonly format?: LiveFormat;
  /** Capture size asked of a device or the screen, or the size of raw frames on stdin ('640x480'). */
  readonly inputSize?: string;
  /** Capture rate asked of a device or the screen, or the rate of raw frames on stdin (default 30). */
  readonly inputRate?: number;
}

/** What a source is, decided from its spelling before anything runs. */
export interface LiveSourcePlan {
  /** How messages name the source. */
  readonly label: string;
  readonly kind: 'device' | 'screen' | 'stream' | 'lavfi' | 'stdin' | 'file';
  /**
   * Whether the source runs until stopped (devices, the screen, network streams): one that ends by
   * itself has failed. Files, lavfi graphs and stdin are finite by nature and may end.
   */
  readonly endless: boolean;
  /** ffmpeg's options for the input, ending with `-i <source>`. */
  readonly args: readonly string[];
  /** A device node or a file to check before starting. */
  readonly path?: string;
}

const schemeOf = (source: string): string | null => /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1]?.toLowerCase() ?? null;

function sizeArg(name: string, text: string): string {
  if (!/^[1-9]\d{0,4}x[1-9]\d{0,4}$/.test(text)) throw new TypeError(`Expected a size like 640x480 for ${name} but received '${text}'`);
  return text;
}

/**
 * Decides how ffmpeg reads `source` (pure: nothing is opened; see {@link checkLiveSource}).
 * @example planLiveSource('/dev/video0').args; // ['-f', 'v4l2', '-framerate', '30', '-i', '/dev/video0']
 * @throws {RangeError} / {TypeError} for an unknown format or scheme, a bad size or rate, or raw
 *   frames without `inputSize`; Error when the screen is asked for without $DISPLAY.
 */
export function planLiveSource(source: string, options: LiveSourceOptions = {}): LiveSourcePlan {
  if (typeof source !== 'string' || source === '') throw new TypeError(`Expected a source for live but received ${JSON.stringify(source)}`);
  const format = options.format === undefined ? undefined : expectOneOf('format', options.format, LIVE_FORMATS);
  const rate = options.inputRate === undefined ? undefined : expectNumber('inputRate', options.inputRate, 0.1, 1000);
  const size = options.inputSize === undefined ? undefined : sizeArg('inputSize', options.inputSize);
  const capture = (f: string, input: string): string[] => [
    '-f', f, '-framerate', String(rate ?? DEFAULT_CAPTURE_RATE), ...(size === undefined ? [] : ['-video_size', size]), '-i', input,
  ];
  const scheme = schemeOf(source);

  if (format === 'rawvideo' || (source === '-' && format === undefined)) {
    if (source !== '-') throw new RangeError(`Expected '-' (stdin) as the source of raw frames but received '${source}'`);
    if (format === undefined) return { label: 'stdin', kind: 'stdin', endless: false, args: ['-i', 'pipe:0'] };
    if (size === undefined) throw new TypeError('Expected an input size (--input-size WxH) for raw frames on stdin');
    return { label: 'stdin', kind: 'stdin', endless: false, args: ['-f', 'rawvideo', '-pixel_format', 'rgb24', '-video_size', size, '-framerate', String(rate ?? DEFAULT_CAPTURE_RATE), '-i', 'pipe:0'] };
  }
  if (format === 'lavfi') {
    // -re: a filter graph makes frames as fast as they are read; live means at its own rate.
    return { label: `lavfi '${source}'`, kind: 'lavfi', endless: false, args: ['-re', '-f', 'lavfi', '-i', source] };
  }
  if (format === 'x11grab' || (format === undefined && source === 'screen')) {
    const display = source === 'screen' ? process.env.DISPLAY : source;
    if (display === undefined || display === '') throw new Error('screen: no $DISPLAY to capture (set DISPLAY, or pass the display, e.g. --format x11grab :0.0)');
    return { label: `screen ${display}`, kind: 'screen', endless: true, args: capture('x11grab', display) };
  }
  if (format === 'v4l2' || (format === undefined && /^\/dev\/video\d+$/.test(source))) {
    return { label: source, kind: 'device', endless: true, args: capture('v4l2', source), path: source };
  }
  if (format === 'avfoundation' || format === 'dshow') {
    return { label: `${format} '${source}'`, kind: 'device', endless: true, args: capture(format, source) };
  }
  if (scheme !== null) {
    if (!(STREAM_SCHEMES as readonly string[]).includes(scheme)) {
      throw new RangeError(`Expected a stream URL (${STREAM_SCHEMES.join(', ')}), a device, 'screen', '-' or a video file for source but received '${source}'`);
    }
    return { label: source, kind: 'stream', endless: true, args: ['-i', source] };
  }
  // A local video: at its own frame rate (-re), through the same guarded input as stylize's videos.
  return { label: source, kind: 'file', endless: false, args: ['-re', ...inputArgs(source)], path: source };
}

/**
 * Checks, before any work, that a device node exists or that a file is a readable video (through
 * the video door, {@link probeVideo}: playlists and concat lists are refused).
 * @throws {FileError} naming the device or file.
 */
export async function checkLiveSource(plan: LiveSourcePlan): Promise<void> {
  if (plan.path === undefined) return;
  if (plan.kind === 'file') {
    await probeVideo(plan.path);
    return;
  }
  const info = await stat(plan.path).catch(() => null);
  if (info === null) throw new FileError(plan.path, 'no such device (is the camera connected? `ls /dev/video*` lists the ones there are)');
  if (!info.isCharacterDevice()) throw new FileError(plan.path, 'not a video device');
}

/** One frame read from a live source. */
export interface LiveFrame {
  /** RGB24, interleaved, height × width × 3. */
  readonly data: Uint8Array;
  /** Its number among the frames the source delivered, dropped ones included, from 0. */
  readonly index: number;
  /** performance.now() when its last byte arrived. */
  readonly arrivedAt: number;
}

/** An opened source: frame size and rate as ffmpeg reports them, and the newest frame on request. */
export interface LiveSource {
  readonly plan: LiveSourcePlan;
  readonly width: number;
  readonly height: number;
  /** Frame rate as a rational string ('30/1'). */
  readonly fps: string;
  readonly frameRate: number;
  /** The newest frame not yet taken (with how many were dropped before it); null when the source has ended. */
  next(): Promise<LatestItem<LiveFrame> | null>;
  /** Frames delivered so far, dropped ones included. */
  readonly received: number;
  readonly dropped: number;
  /** Why the source ended: null when it ended cleanly (exit 0) or was closed, else ffmpeg's reason. */
  failure(): string | null;
  /** Stops ffmpeg. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * ffmpeg's filter for the frames handed out: the longer side at most `size` (never enlarged),
 * aspect kept, then even sizes (H.264 in 4:2:0 needs them) by cropping at most one row and column.
 */
function scaleFilter(size: number): string {
  return `scale=w='if(gte(iw,ih),min(${size},iw),-2)':h='if(gte(iw,ih),-2,min(${size},ih))',crop=trunc(iw/2)*2:trunc(ih/2)*2`;
}

/** The raw output stream's size and rate from ffmpeg's banner (`Output #0, rawvideo ... 640x480 ... 30 fps`). */
function parseOutputStream(lines: readonly string[]): { width: number; height: number; fps: string; frameRate: number } | null {
  const start = lines.findIndex((l) => /^Output #0, rawvideo/.test(l));
  if (start < 0) return null;
  for (const line of lines.slice(start)) {
    const m = /Stream #0:0.*: Video: rawvideo.*?, (\d+)x(\d+).*?, ([\d.]+k?) fps/.exec(line);
    const rate = m === null ? null : parseRate(m[3] as string);
    if (m !== null && rate !== null) return { width: Number(m[1]), height: Number(m[2]), fps: rate.fps, frameRate: rate.value };
  }
  return null;
}

/**
 * Starts ffmpeg on a planned source and waits until it reports the frames' size and rate.
 * @param size longest side of the frames handed out (never enlarged); default 640.
 * @param signal gives up waiting (a camera that never answers): ffmpeg is killed, AbortError.
 * @throws Error "cannot open <source> (<ffmpeg's reason>)" when ffmpeg cannot read it; Error when
 *   ffmpeg cannot run; AbortError when `signal` fires first.
 */
export async function openLiveSource(plan: LiveSourcePlan, size = 640, signal?: AbortSignal): Promise<LiveSource> {
  throwIfAborted(signal);
  expectInteger('size', size, 8, 16384);
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    // Room for a device's frames while the reader is busy; a camera or the screen starts without
    // the analysis buffer (latency). Everything else keeps it: with nobuffer ffmpeg discards what it
    // read while probing (a short clip or stream comes out empty), and the frames the buffer holds
    // at the start are dropped here anyway, newest frame first.
    '-thread_queue_size', '512', ...(plan.kind === 'device' || plan.kind === 'screen' ? ['-fflags', 'nobuffer'] : []),
    ...plan.args, '-map', '0:v:0', '-an', '-sn', '-vf', scaleFilter(size), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  const bin = ffmpegPath();
  const child = spawn(bin, args, { stdio: [plan.kind === 'stdin' ? 'inherit' : 'ignore', 'pipe', 'pipe'] });
  const stderr = new StderrTail(400);
  const frames = latestOnly<LiveFrame>();
  let closed = false;
  const watched = watchProcess(child, stderr);
  const exited = watched.exited;

  // The banner (on stderr) says the frame size; bytes that come before it wait here.
  let header: ReturnType<typeof parseOutputStream> = null;
  const early: Buffer[] = [];
  let headerSeen: () => void = () => {};
  const headerReady = new Promise<void>((resolve) => (headerSeen = resolve));
  // watchProcess's listener came first, so `stderr` already holds this chunk.
  child.stderr.on('data', () => {
    if (header === null && (header = parseOutputStream(stderr.all())) !== null) headerSeen();
  });

  let frame: Uint8Array | null = null;
  let filled = 0;
  let spare: Uint8Array | undefined;
  const take = (chunk: Buffer): void => {
    const frameSize = (header as { width: number; height: number }).width * (header as { height: number }).height * 3;
    let offset = 0;
    while (offset < chunk.length) {
      frame ??= spare ?? new Uint8Array(frameSize);
      spare = undefined;
      const n = Math.min(frameSize - filled, chunk.length - offset);
      frame.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === frameSize) {
        // A dropped frame's memory takes the next one: no allocation while falling behind.
        spare = frames.push({ data: frame, index: frames.pushed, arrivedAt: performance.now() })?.data;
        frame = null;
        filled = 0;
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    if (header === null) early.push(chunk);
    else take(chunk);
  });
  const outcome = exited.then((code) => {
    frames.end();
    return code;
  });

  const giveUp = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  signal?.addEventListener('abort', giveUp, { once: true });
  await Promise.race([headerReady, exited]).finally(() => signal?.removeEventListener('abort', giveUp));
  if (signal?.aborted) {
    giveUp();
    await exited;
    throw new AbortError();
  }
  if (header === null) {
    await exited;
    if (watched.spawnError !== undefined) throw notRunnable(bin, watched.spawnError);
    throw new Error(`cannot open ${plan.label} (${stderr.reason(plan.path ?? plan.label.replace(/^lavfi '(.*)'$/, '$1'))})`);
  }
  for (const chunk of early.splice(0)) take(chunk);
  const { width, height, fps, frameRate } = header;

  return {
    plan, width, height, fps, frameRate,
    next: () => frames.next(),
    get received() {
      return frames.pushed;
    },
    get dropped() {
      return frames.dropped;
    },
    failure() {
      if (closed || child.exitCode === 0) return null;
      if (child.exitCode === null && child.signalCode === null) return null;
      return stderr.reason(plan.path);
    },
    async close() {
      closed = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await outcome;
    },
  };
}
