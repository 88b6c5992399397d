/**
 * Flow-free temporal smoothing of stylised video, for any per-frame model: where the input frame
 * barely changed since the last one, the last output is blended into the new one; where it changed
 * (motion, a new shot) the new output is taken as it is. Per-frame networks answer camera noise and
 * compression with a different brush stroke every frame — the flicker this hides — and the blend
 * costs a few passes over the bytes, no flow and no second network run.
 */
import { expectInteger, expectNumber } from '../util/validate.js';

/** Input change (max over R, G, B, 0..255) up to which a pixel counts as unchanged: sensor and codec noise. */
export const TEMPORAL_NOISE = 6;
/** Input change from which a pixel counts as moved and takes the new output alone; in between, a smooth ramp. */
export const TEMPORAL_MOTION = 24;
/**
 * Mean input change over the frame above which it is a new shot and the history is dropped: two
 * unrelated frames differ by 50-100 on average, a moving camera within one shot by much less. Below
 * it, the pixels of a cut that happen to match would otherwise inherit the previous shot's strokes.
 */
export const TEMPORAL_SCENE_CUT = 40;

export interface TemporalBlendOptions {
  /** 0..1: weight of the previous output where the input is unchanged; 0 returns every output as it is. */
  readonly strength: number;
  readonly width: number;
  readonly height: number;
}

export interface TemporalBlend {
  /**
   * Blends the previous output into `output` (this frame's network output, RGB24 interleaved) where
   * `input` (this frame's network input, same layout) is unchanged, in place, and returns `output`.
   * The first frame, and the first of a new shot, come back unchanged. Allocates nothing.
   * @throws {RangeError} when a frame is not width x height x 3 bytes.
   */
  apply(input: Uint8Array, output: Uint8Array): Uint8Array;
  /** Forgets the history, as after a cut (for a caller that seeks). */
  reset(): void;
}

/**
 * Weight of the previous output, in 1/256ths, for each input change 0..255:
 * strength · (1 − smoothstep(NOISE, MOTION, change)).
 */
function blendWeights(strength: number): Uint16Array {
  const weights = new Uint16Array(256);
  for (let d = 0; d < 256; d++) {
    const t = Math.min(1, Math.max(0, (d - TEMPORAL_NOISE) / (TEMPORAL_MOTION - TEMPORAL_NOISE)));
    weights[d] = Math.round(256 * strength * (1 - t * t * (3 - 2 * t)));
  }
  return weights;
}

/**
 * Creates the blend for one video: it keeps the previous input and output frame (two frames of
 * bytes, plus two bytes a pixel of scratch) and must see the frames in order.
 *
 * A pixel's change is the largest of its three channel differences, widened to its 3x3
 * neighbourhood so the edges of a moving object (where sub-pixel motion barely changes the input)
 * still count as moved and leave no trail.
 *
 * @example
 * const blend = createTemporalBlend({ strength: 0.8, width: 640, height: 480 });
 * await processVideo({ input, output, transform: async (rgb) => blend.apply(rgb, await stylise(rgb)) });
 * @throws {TypeError} / {RangeError} for a strength outside 0..1 or sizes that are not integers >= 1.
 */
export function createTemporalBlend(options: TemporalBlendOptions): TemporalBlend {
  const strength = expectNumber('strength', options.strength, 0, 1);
  const width = expectInteger('width', options.width, 1);
  const height = expectInteger('height', options.height, 1);
  const pixels = width * height;
  const bytes = pixels * 3;
  const weights = blendWeights(strength);
  const previousInput = new Uint8Array(bytes);
  const previousOutput = new Uint8Array(bytes);
  const change = new Uint8Array(pixels);
  const rowMax = new Uint8Array(pixels);
  let hasHistory = false;

  function remember(input: Uint8Array, output: Uint8Array): Uint8Array {
    previousInput.set(input);
    previousOutput.set(output);
    hasHistory = true;
    return output;
  }

  return {
    reset(): void {
      hasHistory = false;
    },
    apply(input: Uint8Array, output: Uint8Array): Uint8Array {
      if (input.length !== bytes || output.length !== bytes) {
        throw new RangeError(`Expected RGB24 frames of ${width}x${height}x3 = ${bytes} bytes but received ` +
          `${input.length} (input) and ${output.length} (output)`);
      }
      if (strength === 0) return output;
      if (!hasHistory) return remember(input, output);

      let total = 0;
      for (let i = 0, j = 0; i < pixels; i++, j += 3) {
        const r = Math.abs(input[j] - previousInput[j]);
        const g = Math.abs(input[j + 1] - previousInput[j + 1]);
        const b = Math.abs(input[j + 2] - previousInput[j + 2]);
        const d = r > g ? (r > b ? r : b) : g > b ? g : b;
        change[i] = d;
        total += d;
      }
      if (total > TEMPORAL_SCENE_CUT * pixels) return remember(input, output);
      previousInput.set(input);

      // 3x3 maximum, separably: along rows into rowMax, then down columns while blending.
      for (let y = 0; y < height; y++) {
        const row = y * width;
        const last = row + width - 1;
        for (let i = row; i <= last; i++) {
          let m = change[i];
          if (i > row && change[i - 1] > m) m = change[i - 1];
          if (i < last && change[i + 1] > m) m = change[i + 1];
          rowMax[i] = m;
        }
      }
      for (let y = 0; y < height; y++) {
        const row = y * width;
        const above = y > 0 ? row - width : row;
        const below = y < height - 1 ? row + width : row;
        for (let x = 0; x < width; x++) {
          let m = rowMax[row + x];
          if (rowMax[above + x] > m) m = rowMax[above + x];
          if (rowMax[below + x] > m) m = rowMax[below + x];
          const w = weights[m];
          const j = (row + x) * 3;
          if (w !== 0) {
            const v = 256 - w;
            output[j] = (w * previousOutput[j] + v * output[j] + 128) >> 8;
            output[j + 1] = (w * previousOutput[j + 1] + v * output[j + 1] + 128) >> 8;
            output[j + 2] = (w * previousOutput[j + 2] + v * output[j + 2] + 128) >> 8;
          }
        }
      }
      previousOutput.set(output);
      return output;
    },
  };
}
