/**
 * Live style transfer: a camera, the screen or a stream stylised frame by frame as it arrives
 * ({@link runLive}), with stylize's per-frame controls (strength, colours, margin) and its
 * flow-free temporal blend against flicker.
 */
import { toInterleaved, toRgbImage } from '../image/pixels.js';
import { createTemporalBlend, type TemporalBlend } from '../video/temporal.js';
import { runLive, type LiveOptions, type LiveResult } from '../video/live.js';
import { checkStylizeOptions, stylizeImage, type StylizeOptions } from './transfer.js';
import type { StyleModel } from './model.js';

/** Longest side of live frames unless told: 640x480 for a 4:3 camera. */
export const LIVE_DEFAULT_SIZE = 640;

export type StylizeLiveOptions = Omit<LiveOptions, 'transform' | 'source' | 'output'>
  & Pick<StylizeOptions, 'strength' | 'preserveColors' | 'temporal' | 'margin'>;

/**
 * Stylises a live source with `style` into a file, a stream or a window (see {@link runLive} for
 * sources, outputs, dropping and how a run ends). Frames run whole, never tiled.
 * @example await stylizeLive(style, '/dev/video0', planLiveOutput('out.mp4'), { frames: 300, temporal: 0.5 });
 * @throws as {@link runLive}; RangeError/TypeError for invalid options; Error naming the model if inference fails.
 */
export async function stylizeLive(
  style: StyleModel, source: string, output: LiveOptions['output'], options: StylizeLiveOptions = {},
): Promise<LiveResult> {
  const frameOptions: StylizeOptions = {
    strength: options.strength, preserveColors: options.preserveColors, margin: options.margin, tile: 0, signal: options.signal,
  };
  checkStylizeOptions({ ...frameOptions, temporal: options.temporal });
  const temporal = options.temporal ?? 0;
  let blend: TemporalBlend | null = null;
  return runLive({
    ...options, source, output, size: options.size ?? LIVE_DEFAULT_SIZE,
    transform: async (frame, { width, height }) => {
      const out = toInterleaved(await stylizeImage(style, toRgbImage(frame, width, height), frameOptions));
      if (temporal === 0) return out;
      blend ??= createTemporalBlend({ strength: temporal, width, height });
      return blend.apply(frame, out);
    },
  });
}
