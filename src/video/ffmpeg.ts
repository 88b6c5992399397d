/**
 * The ffmpeg binary: where it is, whether it runs, and how to read what it says.
 * There is no ffprobe in @ffmpeg-installer, so probing parses `ffmpeg -i`'s stream listing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { FileError, messageOf } from '../util/errors.js';

/**
 * The ffmpeg executable: `$FFMPEG_PATH` if set, else the binary shipped by @ffmpeg-installer/ffmpeg,
 * else plain `ffmpeg` from PATH (the installer throws on platforms it has no binary for).
 */
export function ffmpegPath(): string {
  const fromEnv = process.env.FFMPEG_PATH;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  try {
    // Loaded lazily: the package throws at import time when it has no binary for this platform.
    const require = createRequire(import.meta.url);
    return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return 'ffmpeg';
  }
}

/** The error for an ffmpeg that cannot be started; `cause` is spawn's error or a reason. */
export function notRunnable(path: string, cause: unknown): Error {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === 'ENOENT' ? 'no such file (ENOENT)'
    : code === 'EACCES' ? 'not executable (EACCES)'
    : messageOf(cause);
  return new Error(`ffmpeg not runnable at ${path}: ${reason}. Install ffmpeg or set FFMPEG_PATH`, { cause });
}

/**
 * Watches a spawned ffmpeg or ffplay: its stderr goes into `stderr`, `exited` resolves with the exit
 * code (null when it was killed or could not start), and `spawnError` holds why it could not start.
 */
export function watchProcess(child: ChildProcess, stderr: StderrTail): { readonly exited: Promise<number | null>; readonly spawnError: Error | undefined } {
  let spawnError: Error | undefined;
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (error) => {
      spawnError = error;
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  return { exited, get spawnError() { return spawnError; } };
}

/** The last lines ffmpeg wrote to stderr, for error messages. */
export class StderrTail {
  private readonly lines: string[] = [];
  private partial = '';
  constructor(private readonly keep = 40) {}

  push(chunk: Buffer | string): void {
    // Progress reports end in '\r', log lines in '\n'; both end a line here.
    const parts = (this.partial + chunk.toString()).split(/\r\n|\r|\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) if (line.trim() !== '') this.lines.push(line);
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
  }

  all(): string[] {
    return this.partial.trim() === '' ? [...this.lines] : [...this.lines, this.partial];
  }

  /**
   * The last `count` distinct lines that explain something, joined by '; ', without ffmpeg's
   * `[demuxer @ 0x…]` prefixes or a leading `<path>: `.
   */
  reason(path?: string, count = 2): string {
    const noise = /^(frame=|size=|video:\d|Conversion failed!|At least one output file must be specified|Exiting normally)/;
    const cleaned = this.all()
      .map((l) => l.trim().replace(/^\[[^\]]* @ 0x[0-9a-f]+\]\s*/, ''))
      .filter((l) => l !== '' && !noise.test(l))
      .map((l) => (path !== undefined && l.startsWith(`${path}: `) ? l.slice(path.length + 2) : l));
    const picked: string[] = [];
    for (let i = cleaned.length - 1; i >= 0 && picked.length < count; i -= 1) {
      const line = cleaned[i] as string;
      if (!picked.includes(line)) picked.unshift(line);
    }
    return picked.length === 0 ? 'no message from ffmpeg' : picked.join('; ');
  }
}

/** Runs ffmpeg to completion and returns its exit code and stderr (stdout is discarded). */
export function runFfmpeg(args: readonly string[]): Promise<{ code: number; stderr: StderrTail }> {
  const bin = ffmpegPath();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr = new StderrTail(100_000); // probe needs all of it; its output is small
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => reject(notRunnable(bin, error)));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === null ? 0 : 128), stderr }));
  });
}

/**
 * Checks that ffmpeg runs and returns its version line.
 * @throws Error "ffmpeg not runnable at <path>: <reason>. Install ffmpeg or set FFMPEG_PATH".
 */
export async function checkFfmpeg(): Promise<string> {
  const bin = ffmpegPath();
  const { code, stderr } = await new Promise<{ code: number; stderr: StderrTail }>((resolve, reject) => {
    const child = spawn(bin, ['-version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = new StderrTail();
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => out.push(chunk));
    child.on('error', (error) => reject(notRunnable(bin, error)));
    child.on('close', (c) => resolve({ code: c ?? 1, stderr: out }));
  });
  const first = stderr.all()[0] ?? '';
  if (code !== 0 || !first.startsWith('ffmpeg version')) {
    throw notRunnable(bin, `'-version' exited with code ${code} (${stderr.reason()})`);
  }
  return first;
}

/** What `probeVideo` finds out about a file. */
export interface VideoInfo {
  readonly path: string;
  /** Size of the frames `decodeFrames` yields: ffmpeg applies the rotation tag while decoding. */
  readonly width: number;
  readonly height: number;
  /** Size as stored, before rotation. */
  readonly codedWidth: number;
  readonly codedHeight: number;
  /** Clockwise rotation, in degrees, that the file asks players to apply (0, 90, 180 or 270). */
  readonly rotation: number;
  /** Frame rate as an exact rational, e.g. '25/1' or '30000/1001' (from ffmpeg's `tbr`, else `fps`). */
  readonly fps: string;
  /** The same frame rate as a number. */
  readonly frameRate: number;
  /** Container duration in seconds, or null when ffmpeg reports N/A. */
  readonly duration: number | null;
  /** duration × frame rate, rounded: an estimate (use `countFrames` for the exact number). */
  readonly frameCount: number | null;
  readonly videoCodec: string;
  /** Index of the video stream used (the first one that is not an attached picture). */
  readonly videoStream: number;
  readonly hasAudio: boolean;
  /** The first audio stream, or null. */
  readonly audio: { readonly codec: string; readonly stream: number } | null;
}

/** Parses one of ffmpeg's printed rates ('25', '29.97', '1k') into an exact rational. */
export function parseRate(text: string): { fps: string; value: number } | null {
  const match = /^(\d+(?:\.\d+)?)(k?)$/.exec(text);
  if (match === null) return null;
  const value = Number(match[1]) * (match[2] === 'k' ? 1000 : 1);
  if (!(value > 0)) return null;
  const whole = Math.round(value);
  if (Math.abs(value - whole) < 0.005) return { fps: `${whole}/1`, value: whole };
  // NTSC rates print as 23.98, 29.97, 59.94...: N*1000/1001, rounded to two decimals.
  const ntsc = Math.round(value * 1.001);
  if (Math.abs((ntsc * 1000) / 1001 - value) < 0.006) return { fps: `${ntsc * 1000}/1001`, value: (ntsc * 1000) / 1001 };
  let num = Math.round(value * 100);
  let den = 100;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = gcd(num, den);
  num /= g;
  den /= g;
  return { fps: `${num}/${den}`, value: num / den };
}

const streamLine = /^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio|Subtitle|Data|Attachment): (.*)$/;

/** Parses `ffmpeg -i`'s report on input #0. Returns null when it lists no usable video stream. */
export function parseProbe(path: string, lines: readonly string[]): VideoInfo | null {
  let video: Omit<VideoInfo, 'path' | 'duration' | 'frameCount' | 'hasAudio' | 'audio'> | null = null;
  let audio: VideoInfo['audio'] = null;
  let duration: number | null = null;
  let inVideoStream = false;
  let rotateTag: number | null = null;
  let displayMatrix: number | null = null;
  for (const line of lines) {
    if (/^(Output|Stream mapping)/.test(line.trim())) break;
    const d = /^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(line);
    if (d !== null) duration = Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]);
    const s = streamLine.exec(line);
    if (s !== null) {
      inVideoStream = false;
      const [, index, kind, rest] = s as unknown as [string, string, string, string];
      if (kind === 'Audio' && audio === null) audio = { codec: rest.split(/[\s,]/)[0] ?? 'unknown', stream: Number(index) };
      if (kind === 'Video' && video === null && !rest.includes('(attached pic)')) {
        const size = /, (\d+)x(\d+)/.exec(rest);
        const rate = /([\d.]+k?) tbr/.exec(rest) ?? /([\d.]+k?) fps/.exec(rest);
        const parsed = rate === null ? null : parseRate(rate[1] as string);
        if (size !== null && parsed !== null) {
          const w = Number(size[1]);
          const h = Number(size[2]);
          video = {
            width: w, height: h, codedWidth: w, codedHeight: h, rotation: 0,
            fps: parsed.fps, frameRate: parsed.value,
            videoCodec: rest.split(/[\s,]/)[0] ?? 'unknown', videoStream: Number(index),
          };
          inVideoStream = true;
        }
      }
      continue;
    }
    if (inVideoStream) {
      const r = /^\s*rotate\s*:\s*(-?\d+(?:\.\d+)?)/.exec(line);
      if (r !== null) rotateTag = Number(r[1]);
      const m = /displaymatrix: rotation of (-?\d+(?:\.\d+)?) degrees/.exec(line);
      if (m !== null) displayMatrix = -Number(m[1]); // the matrix angle is counter-clockwise
    }
  }
  if (video === null) return null;
  const rotation = ((Math.round((rotateTag ?? displayMatrix ?? 0) / 90) * 90) % 360 + 360) % 360;
  const swap = rotation === 90 || rotation === 270;
  return {
    path,
    ...video,
    rotation,
    width: swap ? video.codedHeight : video.codedWidth,
    height: swap ? video.codedWidth : video.codedHeight,
    duration,
    frameCount: duration === null ? null : Math.round(duration * video.frameRate),
    hasAudio: audio !== null,
    audio,
  };
}

/**
 * ffmpeg's options for reading an input that may come from a stranger: only local files and pipes
 * (no network, no `concat:`/`subfile:`/… protocols). Use as `[...inputArgs(path)]` in place of `-i path`.
 */
export function inputArgs(path: string): string[] {
  return ['-protocol_whitelist', 'file,pipe', '-i', path];
}

/**
 * Demuxers that read other files named inside the input (playlists, concat lists): a crafted
 * upload could make ffmpeg read any local file. ffmpeg names them so in `Input #0, <name>, from`.
 */
const followingDemuxers = new Set(['hls', 'applehttp', 'concat', 'dash', 'webm_dash_manifest', 'ffmetadata', 'tee', 'sdp', 'rtsp']);

/** Playlists and concat lists, by their first bytes: refused before ffmpeg opens the file. */
const listHeaders: readonly [RegExp, string][] = [
  [/^#EXTM3U/, 'an HLS playlist'],
  [/^ffconcat/, 'an ffmpeg concat list'],
  [/^(<\?xml[^>]*>\s*)?<MPD[\s>]/, 'a DASH manifest'],
  [/^v=0\r?\n/, 'an SDP description'],
];

/**
 * Refuses a file that is a playlist or list of other files in disguise, whatever its extension:
 * ffmpeg would follow it and read the files it names.
 * @throws FileError "is an HLS playlist, not a video: …".
 */
async function refuseFileLists(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(512), 0, 512, 0);
    const head = buffer.subarray(0, bytesRead).toString('latin1').replace(/^\xef\xbb\xbf/, '').trimStart();
    for (const [pattern, what] of listHeaders) {
      if (pattern.test(head)) throw new FileError(path, `is ${what}, not a video: files that name other files are refused`);
    }
  } finally {
    await handle.close();
  }
}

async function expectFile(path: string): Promise<void> {
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileError(path, code === 'ENOENT' ? 'no such file' : `cannot read (${messageOf(error)})`, { cause: error });
  }
  if (!isFile) throw new FileError(path, 'not a file');
  await refuseFileLists(path);
}

/**
 * Reads a video's size, frame rate, duration, rotation and audio stream.
 * @example const { width, height, fps } = await probeVideo('clip.mp4'); // fps: '30000/1001'
 * @throws FileError when the file is missing, not a readable video, or has no video stream;
 *   Error when ffmpeg itself cannot run.
 */
export async function probeVideo(path: string): Promise<VideoInfo> {
  await expectFile(path);
  // Without an output ffmpeg lists the streams and exits 1; that is the expected outcome here.
  const { stderr } = await runFfmpeg(['-hide_banner', '-nostdin', ...inputArgs(path)]);
  const lines = stderr.all();
  const input = lines.map((l) => /^Input #0, ([^,]+(?:,[^,]+)*?), from /.exec(l)).find((m) => m !== null);
  if (input === undefined) {
    throw new FileError(path, `not a readable video (${stderr.reason(path)})`);
  }
  const demuxer = input[1] as string;
  if (demuxer.split(',').some((name) => followingDemuxers.has(name.trim()))) {
    throw new FileError(path, `is read by ffmpeg as '${demuxer}', not a video: files that name other files are refused`);
  }
  const info = parseProbe(path, lines);
  if (info === null) throw new FileError(path, 'has no video stream');
  return info;
}

/**
 * Decodes the whole video stream and returns the exact number of frames (slow: a full decode).
 * @throws FileError when the file cannot be decoded.
 */
export async function countFrames(path: string): Promise<number> {
  const info = await probeVideo(path);
  const { code, stderr } = await runFfmpeg([
    '-hide_banner', '-nostdin', '-nostats', ...inputArgs(path), '-map', `0:${info.videoStream}`, '-f', 'null', '-',
  ]);
  const frames = stderr.all().map((l) => /^frame=\s*(\d+)/.exec(l)).filter((m) => m !== null).at(-1);
  if (code !== 0 || frames === undefined) throw new FileError(path, `cannot decode (${stderr.reason(path)})`);
  return Number(frames[1]);
}
