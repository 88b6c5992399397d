/**
 * Real headless Chromium for the page's tests (and the web benchmark): Debian's `chromium` driven
 * by playwright-core, which never downloads a browser, with a fake camera playing a .y4m made by
 * ffmpeg and, when asked, the software WebGPU adapter (SwiftShader).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { buildTransformer, initTransformerParams, REALTIME } from '../../src/nets/transformer.js';
import { toOnnxBytes } from '../../src/graph/index.js';
import { ffmpeg } from '../video/clips.js';

/** The Chromium to drive: `$CHROMIUM_PATH`, else the first of chromium / chromium-browser / google-chrome on PATH; null when none. */
export function findChromium(): string | null {
  const candidates = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : (process.env.PATH ?? '').split(delimiter).flatMap((dir) => ['chromium', 'chromium-browser', 'google-chrome'].map((name) => join(dir, name)));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  return null;
}

/** Why the browser tests skip, or false when a Chromium is there. */
export function browserSkip(): string | false {
  return findChromium() === null ? 'no Chromium found (apt-get install chromium, or set CHROMIUM_PATH); .ci/run installs it' : false;
}

/**
 * A fake-camera clip: ffmpeg's moving test pattern, `frames` frames of `size`, as a .y4m file
 * (what Chromium's --use-file-for-fake-video-capture plays, looping).
 */
export async function fakeCameraClip(dir: string, size = '640x480', frames = 12): Promise<string> {
  const path = join(dir, `camera-${size}.y4m`);
  await ffmpeg(['-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=15`, '-frames:v', String(frames), '-pix_fmt', 'yuv420p', path]);
  return path;
}

export interface LaunchOptions {
  /** The fake camera's clip (see {@link fakeCameraClip}). */
  readonly camera?: string;
  /** Offer the SwiftShader (software) WebGPU adapter. */
  readonly webgpu?: boolean;
}

/** Flags that give this Chromium a software WebGPU adapter in headless mode. */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--use-angle=swiftshader'];

/** Launches headless Chromium. @throws Error when none is found. */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  const executablePath = findChromium();
  if (executablePath === null) throw new Error('no Chromium found');
  const args = ['--autoplay-policy=no-user-gesture-required'];
  if (options.camera !== undefined) {
    args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${options.camera}`);
  }
  if (options.webgpu) args.push(...WEBGPU_FLAGS);
  return chromium.launch({ executablePath, headless: true, args });
}

/** A realtime-architecture style network (REALTIME) with seeded random weights, as ONNX bytes. */
export function realtimeTestModel(seed = 3): Uint8Array {
  const { graph } = buildTransformer(REALTIME, initTransformerParams(REALTIME, seed));
  return toOnnxBytes(graph);
}
