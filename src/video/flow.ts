/**
 * Optical flow for measuring temporal consistency: Middlebury .flo files, backward warping and
 * the occlusion test of Lai et al. 2018. A flow holds, for each pixel of frame t, where that
 * pixel's content is in frame t+1 (in pixels, x right and y down).
 */
import { open } from 'node:fs/promises';
import type { RgbImage } from '../image/types.js';
import { createImage } from '../image/types.js';
import { expectImage } from '../image/pixels.js';
import { readImage } from '../image/codec.js';
import { FileError, messageOf } from '../util/errors.js';

/** Per-pixel displacement from frame t to frame t+1, row-major, `width * height` values each. */
export interface Flow {
  readonly width: number;
  readonly height: number;
  readonly u: Float32Array;
  readonly v: Float32Array;
}

const FLO_MAGIC = 202021.25; // the bytes "PIEH" read as a little-endian float32
const FLO_MAX_SIDE = 16384;
const FLO_HEADER = 12;
// Middlebury marks unknown flow with values above 1e9; such pixels never count as valid.
const UNKNOWN_FLOW = 1e9;

/**
 * Reads a Middlebury .flo file ("PIEH", int32 width, int32 height, then float32 (u, v) pairs).
 * The header is checked against the file's length before anything is allocated, so a file that
 * declares a huge size is refused without reading it.
 *
 * @example
 * const flow = await readFlo('sintel/gt/frame_0002.flo');
 * @throws {FileError} naming the file when it is missing, has a bad magic number, a size outside
 * 1..16384, or a length that does not match its header (truncated or with trailing bytes).
 */
export async function readFlo(path: string): Promise<Flow> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    throw new FileError(path, `cannot read flow file (${messageOf(error)})`, { cause: error });
  }
  try {
    const { size } = await file.stat();
    if (size < FLO_HEADER) throw new FileError(path, `not a Middlebury .flo file (only ${size} bytes)`);
    const header = Buffer.alloc(FLO_HEADER);
    await file.read(header, 0, FLO_HEADER, 0);
    if (header.readFloatLE(0) !== FLO_MAGIC) throw new FileError(path, 'not a Middlebury .flo file (bad magic)');
    const width = header.readInt32LE(4);
    const height = header.readInt32LE(8);
    if (!(width >= 1 && width <= FLO_MAX_SIDE && height >= 1 && height <= FLO_MAX_SIDE)) {
      throw new FileError(path, `flow size ${width}x${height} is outside 1..${FLO_MAX_SIDE}`);
    }
    const expected = FLO_HEADER + 8 * width * height;
    if (size < expected) throw new FileError(path, `truncated: expected ${expected} bytes, found ${size}`);
    if (size > expected) throw new FileError(path, `${size - expected} bytes after the flow (expected ${expected} bytes, found ${size})`);
    const body = Buffer.alloc(expected - FLO_HEADER);
    const { bytesRead } = await file.read(body, 0, body.length, FLO_HEADER);
    if (bytesRead !== body.length) throw new FileError(path, `truncated: expected ${expected} bytes, found ${FLO_HEADER + bytesRead}`);
    const n = width * height;
    const u = new Float32Array(n);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      u[i] = body.readFloatLE(8 * i);
      v[i] = body.readFloatLE(8 * i + 4);
    }
    return { width, height, u, v };
  } catch (error) {
    // A folder opens fine on Linux and fails only on read; say so with the path, like every other case.
    if (error instanceof FileError) throw error;
    throw new FileError(path, `cannot read flow file (${messageOf(error)})`, { cause: error });
  } finally {
    await file.close();
  }
}

/** Whether a flow vector is a real displacement (not NaN, infinite or Middlebury's "unknown"). */
function known(u: number, v: number): boolean {
  return Math.abs(u) < UNKNOWN_FLOW && Math.abs(v) < UNKNOWN_FLOW;
}

/** Bilinear sample of one plane (starting at `offset`) at (x, y), the coordinates clamped to the plane. */
export function sample(plane: Float32Array, offset: number, width: number, height: number, x: number, y: number): number {
  const cx = x < 0 ? 0 : x > width - 1 ? width - 1 : x;
  const cy = y < 0 ? 0 : y > height - 1 ? height - 1 : y;
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  // On the last row or column the second tap has weight 0; clamping its index keeps it in the plane.
  const x1 = x0 + 1 < width ? x0 + 1 : x0;
  const y1 = y0 + 1 < height ? y0 + 1 : y0;
  const fx = cx - x0;
  const fy = cy - y0;
  const top = plane[offset + y0 * width + x0] * (1 - fx) + plane[offset + y0 * width + x1] * fx;
  const bottom = plane[offset + y1 * width + x0] * (1 - fx) + plane[offset + y1 * width + x1] * fx;
  return top * (1 - fy) + bottom * fy;
}

/**
 * Samples `image` (frame t+1) at each pixel's destination, x + flow(x), bilinearly: frame t+1's
 * content pulled back onto frame t's grid. Destinations outside the image clamp to its edge, and
 * unknown flow samples in place; {@link flowValidMask} says which pixels those are.
 *
 * @throws {TypeError} / {RangeError} for a malformed image or a flow of another size.
 */
export function warpBackward(image: RgbImage, flow: Flow): RgbImage {
  expectImage('image', image);
  expectFlow('flow', flow, image.width, image.height);
  const { width, height } = image;
  const n = width * height;
  const out = createImage(width, height);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const ok = known(flow.u[i], flow.v[i]);
      const sx = ok ? x + flow.u[i] : x;
      const sy = ok ? y + flow.v[i] : y;
      for (let c = 0; c < 3; c++) out.data[c * n + i] = sample(image.data, c * n, width, height, sx, sy);
    }
  }
  return out;
}

/**
 * 1 where the flow is known and lands inside the image (so the warped value is a real sample),
 * 0 elsewhere. Out-of-frame content has no counterpart to compare with.
 *
 * @throws {TypeError} / {RangeError} for a malformed flow.
 */
export function flowValidMask(flow: Flow): Uint8Array {
  expectFlow('flow', flow, flow.width, flow.height);
  const { width, height, u, v } = flow;
  const mask = new Uint8Array(width * height);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const sx = x + u[i];
      const sy = y + v[i];
      mask[i] = known(u[i], v[i]) && sx >= 0 && sx <= width - 1 && sy >= 0 && sy <= height - 1 ? 1 : 0;
    }
  }
  return mask;
}

/**
 * The occlusion test of Lai et al. 2018 (after Ruder et al. 2016), on frame t's grid: 1 = valid,
 * 0 = occluded or on a motion boundary. With B̂ the backward flow sampled at x + F(x), a pixel is
 * occluded when |F + B̂|² > 0.01(|F|² + |B̂|²) + 0.5, and on a motion boundary when
 * |∇F|² > 0.01|F|² + 0.002 (forward differences). This is their `detect_occlusion(bw, fw)`, the
 * argument order their evaluation uses, which puts the mask where the forward flow starts.
 *
 * @param forward flow from frame t to frame t+1.
 * @param backward flow from frame t+1 to frame t.
 * @throws {TypeError} / {RangeError} for malformed flows or flows of different sizes.
 */
export function occlusionMask(forward: Flow, backward: Flow): Uint8Array {
  expectFlow('forward', forward, forward.width, forward.height);
  expectFlow('backward', backward, forward.width, forward.height);
  const { width, height, u, v } = forward;
  const n = width * height;
  const mask = new Uint8Array(n);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const bu = sample(backward.u, 0, width, height, x + u[i], y + v[i]);
      const bv = sample(backward.v, 0, width, height, x + u[i], y + v[i]);
      const sum = (u[i] + bu) ** 2 + (v[i] + bv) ** 2;
      const occluded = sum > 0.01 * (u[i] ** 2 + v[i] ** 2 + bu ** 2 + bv ** 2) + 0.5;
      // Lai et al. leave the gradient 0 on the last column and row.
      const du = x + 1 < width ? (u[i] - u[i + 1]) ** 2 + (v[i] - v[i + 1]) ** 2 : 0;
      const dv = y + 1 < height ? (u[i] - u[i + width]) ** 2 + (v[i] - v[i + width]) ** 2 : 0;
      const boundary = du + dv > 0.01 * (u[i] ** 2 + v[i] ** 2) + 0.002;
      mask[i] = occluded || boundary || !known(u[i], v[i]) ? 0 : 1;
    }
  }
  return mask;
}

/**
 * Reads a mask image in Sintel's convention (white = excluded: occluded or invalid) as a
 * valid-pixel mask, 1 where the image is dark (red below 128).
 *
 * @throws {FileError} naming the file when it cannot be decoded (see readImage).
 */
export async function readMaskImage(path: string): Promise<{ mask: Uint8Array; width: number; height: number }> {
  const { image } = await readImage(path);
  const n = image.width * image.height;
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = image.data[i] < 128 ? 1 : 0;
  return { mask, width: image.width, height: image.height };
}

/**
 * Throws unless `flow` is a well-formed `width` x `height` flow.
 * @throws {TypeError} when it is not a flow; {RangeError} for the wrong size or lengths.
 */
export function expectFlow(name: string, flow: Flow, width: number, height: number): Flow {
  if (typeof flow !== 'object' || flow === null || !(flow.u instanceof Float32Array) || !(flow.v instanceof Float32Array)) {
    throw new TypeError(`Expected a flow (Float32Array u and v) for ${name}`);
  }
  if (flow.width !== width || flow.height !== height) {
    throw new RangeError(`Expected a ${width}x${height} flow for ${name} but received ${flow.width}x${flow.height}`);
  }
  const n = width * height;
  if (!(Number.isInteger(n) && n >= 1) || flow.u.length !== n || flow.v.length !== n) {
    throw new RangeError(`Expected ${n} values in u and v for ${name} (${width}x${height}) but received ${flow.u.length} and ${flow.v.length}`);
  }
  return flow;
}
