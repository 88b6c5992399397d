/**
 * The warping error of Lai et al. 2018, the usual measure of video flicker, and clips whose flow
 * is known exactly (a still photo panned or zoomed; Sintel's ground truth) to measure it on.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../image/types.js';
import { createImage } from '../image/types.js';
import { expectImage, expectSameSize, toInterleaved, toRgbImage } from '../image/pixels.js';
import { readImage } from '../image/codec.js';
import { FileError } from '../util/errors.js';
import { expectInteger, expectNumber, expectOneOf } from '../util/validate.js';
import { expectFlow, flowValidMask, readFlo, readMaskImage, warpBackward, type Flow } from './flow.js';
import { seededStream } from '../util/random.js';

/**
 * Mean over valid pixel-channels of (frame_t − frame_{t+1} warped back by F_{t→t+1})², RGB scaled
 * to [0, 1], averaged over consecutive pairs. A pixel is valid when its mask (if given) is 1 and
 * its flow is known and lands inside the frame. Values are only comparable with others measured
 * by this same code (see FIELD-NOTES: published numbers differ tenfold between scripts).
 *
 * @param flows `flows[t]` maps frame t to frame t+1.
 * @param masks `masks[t]`, on frame t's grid, 1 = valid (see occlusionMask); undefined = all valid.
 * @example
 * const clip = await syntheticMotionClip(photo, { frames: 8, width: 256, height: 256, motion: 'pan' });
 * warpingError(stylised, clip.flows); // per-frame stylisation flickers: compare against it
 * @throws {TypeError} / {RangeError} for fewer than 2 frames, a flow or mask count that does not
 * match, frames, flows or masks of different sizes, or a pair with no valid pixel.
 */
export function warpingError(frames: readonly RgbImage[], flows: readonly Flow[], masks?: readonly (Uint8Array | undefined)[]): number {
  if (!Array.isArray(frames) || !Array.isArray(flows)) throw new TypeError('Expected arrays of frames and flows for a warping error');
  if (frames.length < 2) throw new RangeError(`Expected at least 2 frames for a warping error but received ${frames.length}`);
  const pairs = frames.length - 1;
  if (flows.length !== pairs) throw new RangeError(`Expected ${pairs} flows for ${frames.length} frames but received ${flows.length}`);
  if (masks !== undefined && masks.length !== pairs) throw new RangeError(`Expected ${pairs} masks for ${frames.length} frames but received ${masks.length}`);
  frames.forEach((frame, t) => {
    expectImage(`frames[${t}]`, frame);
    expectSameSize(`frames[0] and frames[${t}]`, frames[0], frame);
  });
  const { width, height } = frames[0];
  const n = width * height;
  let total = 0;
  for (let t = 0; t < pairs; t++) {
    const flow = expectFlow(`flows[${t}]`, flows[t], width, height);
    const mask = masks?.[t];
    if (mask !== undefined && (!(mask instanceof Uint8Array) || mask.length !== n)) {
      throw new RangeError(`Expected a Uint8Array of ${n} values for masks[${t}] (${width}x${height}) but received ${mask instanceof Uint8Array ? mask.length : typeof mask}`);
    }
    const warped = warpBackward(frames[t + 1], flow).data;
    const inside = flowValidMask(flow);
    const a = frames[t].data;
    let sum = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (inside[i] === 0 || (mask !== undefined && mask[i] === 0)) continue;
      for (let c = 0, j = i; c < 3; c++, j += n) sum += ((a[j] - warped[j]) / 255) ** 2;
      count += 3;
    }
    if (count === 0) throw new RangeError(`Expected at least one valid pixel for frames ${t} and ${t + 1} but the mask and flow exclude all ${n}`);
    total += sum / count;
  }
  return total / pairs;
}

/** Options for {@link syntheticMotionClip}. */
export interface SyntheticMotionOptions {
  /** Number of frames, at least 2. */
  readonly frames: number;
  readonly width: number;
  readonly height: number;
  /** 'pan': the view moves 0.7 px right and 0.3 px down per frame; 'zoom': 1.004x per frame about the centre. */
  readonly motion: 'pan' | 'zoom';
  /** Seed of the noise (default 1). */
  readonly seed?: number;
  /** Standard deviation of the per-frame Gaussian noise, in 0..255 units (default 2; 0 for none). */
  readonly noise?: number;
  /** Re-compress each frame as JPEG at this quality (1..100), like a decoded video (default: not). */
  readonly jpegQuality?: number;
}

const PAN = { x: 0.7, y: 0.3 };
const ZOOM = 1.004;

/**
 * A clip cut from a still photo by a camera that moves a known sub-pixel amount per frame, with
 * its exact flow: each frame samples the photo bilinearly at analytically known points, so
 * F_{t→t+1} follows from the motion (pan: (−0.7, −0.3) everywhere; zoom: 0.004 · (x − centre)).
 * Warping is a second bilinear resampling, so even a noise-free clip has a small, non-zero warping
 * error (about 1e-6 for a smooth photo); the noise and JPEG options add the flicker a real decoded
 * video has, which the input frames of any real clip carry too.
 *
 * @example
 * const { frames, flows } = await syntheticMotionClip(photo, { frames: 10, width: 256, height: 192, motion: 'zoom' });
 * @throws {TypeError} / {RangeError} for invalid options, or a photo too small for the motion.
 */
export async function syntheticMotionClip(photo: RgbImage, options: SyntheticMotionOptions): Promise<{ frames: RgbImage[]; flows: Flow[] }> {
  expectImage('photo', photo);
  const count = expectInteger('frames', options.frames, 2);
  const width = expectInteger('width', options.width, 1);
  const height = expectInteger('height', options.height, 1);
  const motion = expectOneOf('motion', options.motion, ['pan', 'zoom'] as const);
  const noise = options.noise === undefined ? 2 : expectNumber('noise', options.noise, 0, 255);
  const seed = options.seed === undefined ? 1 : expectInteger('seed', options.seed);
  const quality = options.jpegQuality === undefined ? undefined : expectInteger('jpegQuality', options.jpegQuality, 1, 100);
  // The footprint of the whole trajectory must lie inside the photo so that no sample is clamped,
  // else the flow would not be exact at the border.
  // (At least 2x2: a bilinear sample needs two neighbours each way.)
  const spanX = Math.max(2, motion === 'pan' ? width + Math.ceil((count - 1) * PAN.x) : width);
  const spanY = Math.max(2, motion === 'pan' ? height + Math.ceil((count - 1) * PAN.y) : height);
  if (photo.width < spanX || photo.height < spanY) {
    throw new RangeError(`Expected a photo of at least ${spanX}x${spanY} for a ${count}-frame ${motion} of ${width}x${height} but received ${photo.width}x${photo.height}`);
  }
  const centre = { x: (width - 1) / 2, y: (height - 1) / 2 };
  const photoCentre = { x: (photo.width - 1) / 2, y: (photo.height - 1) / 2 };
  const origin = { x: (photo.width - spanX) / 2, y: (photo.height - spanY) / 2 };
  const gaussian = seededStream(seed).gaussian;
  const frames: RgbImage[] = [];
  for (let k = 0; k < count; k++) {
    const scale = ZOOM ** -k;
    const frame = resample(photo, width, height, (x, y) => motion === 'pan'
      ? [origin.x + x + k * PAN.x, origin.y + y + k * PAN.y]
      : [photoCentre.x + (x - centre.x) * scale, photoCentre.y + (y - centre.y) * scale]);
    if (noise > 0) {
      for (let i = 0; i < frame.data.length; i++) frame.data[i] = Math.min(255, Math.max(0, frame.data[i] + noise * gaussian()));
    }
    frames.push(quality === undefined ? frame : await jpegRoundTrip(frame, quality));
  }
  const n = width * height;
  const u = new Float32Array(n);
  const v = new Float32Array(n);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      // Content seen at x in frame t is seen at x + F(x) in frame t+1 (derivation in the TSDoc).
      u[i] = motion === 'pan' ? -PAN.x : (ZOOM - 1) * (x - centre.x);
      v[i] = motion === 'pan' ? -PAN.y : (ZOOM - 1) * (y - centre.y);
    }
  }
  const flows = Array.from({ length: count - 1 }, () => ({ width, height, u, v }));
  return { frames, flows };
}

/** A `width` x `height` image whose pixel (x, y) is `photo` sampled bilinearly at `at(x, y)`. */
function resample(photo: RgbImage, width: number, height: number, at: (x: number, y: number) => [number, number]): RgbImage {
  const out = createImage(width, height);
  const n = width * height;
  const m = photo.width * photo.height;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const [sx, sy] = at(x, y);
      // Clamping only absorbs rounding at the footprint's edge; the size check keeps samples inside.
      const x0 = Math.min(Math.max(Math.floor(sx), 0), photo.width - 2);
      const y0 = Math.min(Math.max(Math.floor(sy), 0), photo.height - 2);
      const fx = Math.min(Math.max(sx - x0, 0), 1);
      const fy = Math.min(Math.max(sy - y0, 0), 1);
      for (let c = 0; c < 3; c++) {
        const p = c * m + y0 * photo.width + x0;
        const d = photo.data;
        const top = d[p] + (d[p + 1] - d[p]) * fx;
        const bottom = d[p + photo.width] + (d[p + photo.width + 1] - d[p + photo.width]) * fx;
        out.data[c * n + i] = top + (bottom - top) * fy;
      }
    }
  }
  return out;
}

/** Encodes and decodes `image` as JPEG in memory (sharp's default 4:2:0, as video codecs subsample). */
async function jpegRoundTrip(image: RgbImage, quality: number): Promise<RgbImage> {
  const raw = { width: image.width, height: image.height, channels: 3 } as const;
  const jpeg = await sharp(toInterleaved(image), { raw }).jpeg({ quality }).toBuffer();
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return toRgbImage(data, info.width, info.height, info.channels);
}

/**
 * The known-flow pair of a Sintel folder (`sintel-flow/clean/<level>/` in the shared data):
 * frames 0002 and 0003, the ground-truth flow `gt/frame_0002.flo`, and a mask that excludes
 * Sintel's occluded (`gt/occlusions/frame_0002.png`) and invalid (`gt/invalid/…`) pixels. Shaped
 * to pass straight to {@link warpingError}, with the frames replaced by their stylised versions.
 *
 * @throws {FileError} naming the file that is missing, malformed or of another size than frame 0002.
 */
export async function readSintelPair(dir: string): Promise<{ frames: RgbImage[]; flows: Flow[]; masks: Uint8Array[] }> {
  const first = (await readImage(join(dir, 'frame_0002.png'))).image;
  const { width, height } = first;
  const sameSize = (path: string, w: number, h: number): void => {
    if (w !== width || h !== height) throw new FileError(path, `is ${w}x${h} but frame_0002.png is ${width}x${height}`);
  };
  const secondPath = join(dir, 'frame_0003.png');
  const second = (await readImage(secondPath)).image;
  sameSize(secondPath, second.width, second.height);
  const flowPath = join(dir, 'gt', 'frame_0002.flo');
  const flow = await readFlo(flowPath);
  sameSize(flowPath, flow.width, flow.height);
  const mask = new Uint8Array(width * height).fill(1);
  for (const kind of ['occlusions', 'invalid']) {
    const path = join(dir, 'gt', kind, 'frame_0002.png');
    const part = await readMaskImage(path);
    sameSize(path, part.width, part.height);
    for (let i = 0; i < mask.length; i++) mask[i] &= part.mask[i];
  }
  return { frames: [first, second], flows: [flow], masks: [mask] };
}
