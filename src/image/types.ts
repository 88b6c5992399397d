/**
 * An RGB image inside pastiche: float32, planar (CHW: all R, then all G, then all B), values 0..255.
 * This is the layout of an NCHW tensor with N = 1, so it goes to and from the runtime without copies.
 */
export interface RgbImage {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

/** Allocates a black image. */
export function createImage(width: number, height: number): RgbImage {
  return { data: new Float32Array(3 * width * height), width, height };
}

/** A rectangle of pixels: `left`/`top` inclusive, `width`/`height` in pixels. */
export interface Rect {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}
