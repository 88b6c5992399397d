/**
 * Where `pastiche live` sends its frames: a video file (through the encoder and output door that
 * stylize uses: checked before work, written to a temporary file and renamed), a stream URL
 * (H.264 tuned for low latency, in the container the protocol carries), or a window (ffplay).
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { refuseOverwritingInputs } from '../util/same-file.js';
import { checkVideoOutput, createEncoder } from './encode.js';
import { ffmpegPath, notRunnable, StderrTail, watchProcess } from './ffmpeg.js';

/** `-o :window` asks for a window, as `--window` does. */
export const WINDOW_OUTPUT = ':window';

/** The container each output URL scheme carries. */
export const STREAM_OUTPUT_FORMATS: Readonly<Record<string, string>> = {
  rtmp: 'flv', rtmps: 'flv', rtsp: 'rtsp', udp: 'mpegts', tcp: 'mpegts', srt: 'mpegts', rtp: 'rtp_mpegts', http: 'mpegts', https: 'mpegts',
};

export type LiveOutput =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'stream'; readonly url: string; readonly format: string }
  | { readonly kind: 'window'; readonly title: string };

/**
 * Decides what an output spelling means: `:window` (or no output) a window, a URL a stream, anything
 * else a video file.
 * @throws {RangeError} for a URL whose scheme no stream format is known for.
 */
export function planLiveOutput(output: string | undefined, title = 'pastiche live'): LiveOutput {
  if (output === undefined || output === WINDOW_OUTPUT) return { kind: 'window', title };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(output)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'file', path: output };
  const format = STREAM_OUTPUT_FORMATS[scheme];
  if (format === undefined) {
    throw new RangeError(`Expected a video file, ${WINDOW_OUTPUT} or a stream URL (${Object.keys(STREAM_OUTPUT_FORMATS).join(', ')}) for output but received '${output}'`);
  }
  return { kind: 'stream', url: output, format };
}

/** ffplay from $PATH, or null when it is not installed. */
export async function findFfplay(): Promise<string | null> {
  const names = process.platform === 'win32' ? ['ffplay.exe'] : ['ffplay'];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of names) {
      const path = join(dir === '' ? '.' : dir, name);
      if (await access(path, constants.X_OK).then(() => true, () => false)) return path;
    }
  }
  return null;
}

const noFfplay = 'ffplay is not installed: the live window needs it (install ffmpeg with ffplay, e.g. `apt-get install ffmpeg`), or write to a file or stream with -o';

/**
 * Checks an output before any work: a file through the video output door (a container pastiche
 * writes, a writable place, never one of `inputs`); a window needs ffplay on PATH.
 * @throws {FileError} naming the file; Error when ffplay is missing.
 */
export async function checkLiveOutput(output: LiveOutput, inputs: readonly string[] = []): Promise<void> {
  if (output.kind === 'file') {
    await refuseOverwritingInputs(inputs.map((input) => ({ input, output: output.path })));
    await checkVideoOutput(output.path);
  } else if (output.kind === 'window' && (await findFfplay()) === null) {
    throw new Error(noFfplay);
  }
}

/** An opened output. */
export interface LiveSink {
  /** Sends one RGB24 frame; resolves false when the viewer went away (the window was closed). */
  write(frame: Uint8Array): Promise<boolean>;
  /** Ends the output: the file is finished and renamed into place, the stream closed. */
  finish(): Promise<void>;
  /** Stops at once; a file's temporary copy is removed. Safe to call twice. */
  abort(): Promise<void>;
}

export interface LiveSinkOptions {
  readonly width: number;
  readonly height: number;
  /** Frame rate as a rational string ('30/1'). */
  readonly fps: string;
  /** x264 quality for files and streams (default 18 for files, 23 for streams). */
  readonly crf?: number;
}

/**
 * Opens an output for frames of the given size and rate.
 * @throws {FileError} when a file cannot be written; Error when ffmpeg or ffplay cannot start.
 */
export async function openLiveSink(output: LiveOutput, options: LiveSinkOptions): Promise<LiveSink> {
  const { width, height, fps } = options;
  const raw = ['-f', 'rawvideo', '-pixel_format', 'rgb24', '-video_size', `${width}x${height}`, '-framerate', fps, '-i', 'pipe:0'];
  if (output.kind === 'file') {
    const encoder = await createEncoder({ output: output.path, width, height, fps, crf: options.crf });
    return {
      write: async (frame) => {
        await encoder.write(frame);
        return true;
      },
      finish: () => encoder.finish(),
      abort: () => encoder.abort(),
    };
  }
  if (output.kind === 'stream') {
    // zerolatency: no lookahead or B-frames; a keyframe every two seconds lets viewers join.
    const gop = String(Math.max(1, Math.round(2 * rateOf(fps))));
    return pipeSink(ffmpegPath(), ['-hide_banner', '-nostdin', '-loglevel', 'error', ...raw,
      '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-crf', String(options.crf ?? 23), '-g', gop,
      '-pix_fmt', 'yuv420p', '-f', output.format, output.url], output.url, false);
  }
  const ffplay = await findFfplay();
  if (ffplay === null) throw new Error(noFfplay);
  return pipeSink(ffplay, ['-hide_banner', '-loglevel', 'error', '-fflags', 'nobuffer', '-flags', 'low_delay', '-framedrop', '-autoexit',
    '-window_title', output.title, ...raw], 'the live window', true);
}

function rateOf(fps: string): number {
  const [num, den = '1'] = fps.split('/');
  return Number(num) / Number(den);
}

/**
 * A process that reads raw frames on stdin. `closeIsEnd`: its exiting with code 0 means the viewer
 * closed it (ffplay's window), which ends the run rather than failing it.
 */
function pipeSink(bin: string, args: readonly string[], label: string, closeIsEnd: boolean): LiveSink {
  const child = spawn(bin, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  const stderr = new StderrTail();
  const watched = watchProcess(child, stderr);
  const exited = watched.exited;
  // EPIPE when the process dies early arrives here; its exit code and stderr say why.
  child.stdin.on('error', () => {});
  const failure = (): Error => (watched.spawnError !== undefined ? notRunnable(bin, watched.spawnError)
    : new Error(`${label}: ${bin.endsWith('ffplay') ? 'ffplay' : 'ffmpeg'} failed (${stderr.reason(label)})`));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return {
    async write(frame) {
      if (child.exitCode !== null || watched.spawnError !== undefined) {
        if (closeIsEnd && child.exitCode === 0) return false;
        throw failure();
      }
      // Racing against exit: a write into a dead process may never call back.
      const written = new Promise<boolean>((resolve) => child.stdin.write(frame, (error) => resolve(error == null)));
      if (await Promise.race([written, exited.then(() => false)])) return true;
      const code = await exited;
      if (closeIsEnd && code === 0) return false;
      throw failure();
    },
    async finish() {
      child.stdin.end();
      const code = await exited;
      if (code !== 0 && !(closeIsEnd && code === null && watched.spawnError === undefined)) throw failure();
    },
    async abort() {
      kill();
      await exited;
    },
  };
}
