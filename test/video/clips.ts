/** Test clips made on the fly with ffmpeg's lavfi sources, plus measuring helpers. */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath } from '../../src/video/ffmpeg.js';
import { decodeFrames } from '../../src/video/decode.js';

/** Runs ffmpeg (the real one, ignoring a FFMPEG_PATH a test may have set) and returns stdout. */
export function ffmpeg(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg ${args.join(' ')}: ${err}`))));
  });
}

export interface ClipOptions {
  size?: string;
  rate?: string;
  seconds?: number;
  /** 'aac' (default), 'pcm' (in .mov) or false. */
  audio?: 'aac' | 'pcm' | false;
  faststart?: boolean;
}

/** Writes a testsrc clip (with a 440 Hz tone unless audio is false) and returns its path. */
export async function makeClip(dir: string, name: string, options: ClipOptions = {}): Promise<string> {
  const { size = '64x48', rate = '25', seconds = 1, audio = 'aac' } = options;
  const path = join(dir, name);
  const args = ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${rate}`];
  if (audio !== false) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100');
  // yuv420p cannot hold odd sizes; 4:4:4 can.
  const [w, h] = size.split('x').map(Number) as [number, number];
  const pixFmt = w % 2 === 0 && h % 2 === 0 ? 'yuv420p' : 'yuv444p';
  args.push('-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', pixFmt);
  if (audio === 'aac') args.push('-c:a', 'aac');
  if (audio === 'pcm') args.push('-c:a', 'pcm_s16le');
  if (options.faststart === true) args.push('-movflags', '+faststart');
  await ffmpeg([...args, '-y', path]);
  return path;
}

/** Length of the first audio stream in seconds, counted in decoded samples (exact, unlike 'time='). */
export async function audioSeconds(path: string): Promise<number> {
  const pcm = await ffmpeg(['-i', path, '-map', '0:a:0', '-ac', '1', '-ar', '44100', '-f', 's16le', '-']);
  return pcm.length / 2 / 44100;
}

/** Codec name of the first audio stream, from `ffmpeg -i`. */
export async function audioCodec(path: string): Promise<string | null> {
  const text = await new Promise<string>((resolve) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-nostdin', '-i', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', () => resolve(err));
  });
  return /Stream #0:\d+.*?: Audio: (\w+)/.exec(text)?.[1] ?? null;
}

export async function firstFrame(path: string): Promise<Uint8Array> {
  for await (const frame of decodeFrames(path)) return frame;
  throw new Error(`${path}: no frames`);
}

export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += Math.abs((a[i] as number) - (b[i] as number));
  return sum / a.length;
}

export function invert(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length);
  for (let i = 0; i < frame.length; i += 1) out[i] = 255 - (frame[i] as number);
  return out;
}

/** A fresh temp dir, removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pastiche-video-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function listDir(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Live ffmpeg processes whose parent is this process (Linux /proc only; null elsewhere). */
export function childFfmpegs(): number | null {
  if (!existsSync('/proc/self/stat')) return null;
  let count = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (Number(ppid) === process.pid && name.startsWith('ffmpeg') && state !== 'Z') count += 1;
    } catch {
      // the process ended while we looked
    }
  }
  return count;
}

/** Polls until no ffmpeg child is left (or the timeout passes) and returns how many remain. */
export async function ffmpegsLeft(timeoutMs = 2000): Promise<number | null> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const n = childFfmpegs();
    if (n === null || n === 0 || Date.now() > end) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
}
