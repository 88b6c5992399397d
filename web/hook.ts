/**
 * The page's test hook, `window.pastiche`: what browser tests and `npm run bench -- --only web`
 * read. A contract — change it only together with test/web/ and bench/web*.ts.
 *
 * Open `/?model=<store name>&backend=wasm|webgpu|auto&size=320x240|640x480&autostart=1` and the
 * live view starts on the camera without a click (a test browser runs with a fake camera). Then:
 *
 * - `state`: 'loading' (model, backend or camera starting) | 'running' (frames are being drawn) |
 *   'error' (the backend or the camera failed; `error` says why, and the page shows it).
 * - `backend`: 'wasm' | 'webgpu' once chosen (with `backend=auto`, by timing a few frames on each
 *   when the browser has both), else null.
 * - `frames`: stylised frames drawn since the live view (re)started; `fps`: frames per second over
 *   roughly the last second.
 * - `runMs`: how long the last network run took, in ms (the backend alone).
 * - `error`: the message shown, or null.
 * - `capture()`: resolves after the next drawn frame with `{ width, height, input, output, margin,
 *   backend }`: `input` is that frame as the network saw it before padding (RGB 0..255, HWC, a plain
 *   array), `output` the RGB the page drew (HWC), which is the network's output cropped and rounded
 *   when strength is 1 and colours are off (the defaults); `margin` is the reflected border the
 *   frame was padded with (then reflection to a multiple of 4, as Node's stylizeImage does with
 *   the same `margin`). Rejects when the live view is not running.
 *
 * Further URL parameters: `margin=<px>` (default {@link liveMargin}), `strength=0..1`,
 * `colors=luminance`, `size=<w>x<h>` up to 1920x1920 besides the menu's two, and
 * `photoMaxPixels=<n>`: photos above n pixels are stylised by the server (default 2.5 MP).
 */
import type { Backend } from './runtime.js';

/** The reflected border the live view adds around each frame of a zero-padded network; photos use Node's 48. */
export const DEFAULT_LIVE_MARGIN = 16;
/** Node's margin for zero-padded and external networks (src/style/transfer.ts DEFAULT_MARGIN). */
export const NODE_MARGIN = 48;

/** pastiche's reflection-padded architectures (src/nets/transformer.ts isReflectionPadded): no edge frame to hide. */
export function reflectionPadded(architecture: string | undefined): boolean {
  return /^(realtime|compact|pytorch-examples)\b/.test(architecture ?? '');
}

/** The margin `pastiche stylize` gives a photo (src/style/transfer.ts defaultMargin), so the page's result matches it. */
export function photoMargin(architecture: string | undefined): number {
  return reflectionPadded(architecture) ? 0 : NODE_MARGIN;
}

/**
 * The live view's margin for a network of `architecture` (GET /api/models): none for pastiche's
 * reflection-padded networks (realtime, compact, pytorch-examples), whose borders need no help
 * and which then run ~25% fewer pixels at 320x240; {@link DEFAULT_LIVE_MARGIN} for the rest
 * (lengstrom's zero padding paints a frame along the edges; external models are unknown).
 */
export function liveMargin(architecture: string | undefined): number {
  return reflectionPadded(architecture) ? 0 : DEFAULT_LIVE_MARGIN;
}

export interface Capture {
  readonly width: number;
  readonly height: number;
  readonly input: number[];
  readonly output: number[];
  readonly margin: number;
  readonly backend: Backend;
}

export interface PasticheHook {
  state: 'loading' | 'running' | 'error';
  backend: Backend | null;
  frames: number;
  fps: number;
  /** Milliseconds the last network run took (the backend alone, without drawing). */
  runMs: number;
  error: string | null;
  capture(): Promise<Capture>;
}

/** The one hook object, also at `window.pastiche`. */
export const hook: PasticheHook = {
  state: 'loading',
  backend: null,
  frames: 0,
  fps: 0,
  runMs: 0,
  error: null,
  capture: () => Promise.reject(new Error('the live view is not running')),
};

(globalThis as { pastiche?: PasticheHook }).pastiche = hook;
