/**
 * Frames to network input and network output to pixels, exactly as pastiche's Node path does it
 * (src/style/transfer.ts): a reflected margin around the image, then reflection padding up to a
 * multiple of 4 split floor/ceil between the sides, planar float RGB 0..255 in; the output clamped
 * to 0..255, cropped back, blended with the input for strength < 1, then luminance-only colours
 * (src/image/color.ts, BT.601 luma) when asked. No DOM here, so Node tests check it against
 * src/image/pad.ts and color.ts.
 *
 * Every buffer is allocated once per frame size (a {@link FramePlan}) and reused frame after frame:
 * the live view must not allocate per frame.
 */

/** Where a `width` x `height` frame lies in the padded network input, and the index maps to fill it. */
export interface FramePlan {
  readonly width: number;
  readonly height: number;
  readonly margin: number;
  readonly paddedWidth: number;
  readonly paddedHeight: number;
  /** The frame's top-left corner in the padded input. */
  readonly left: number;
  readonly top: number;
  /** Source column (row) of every padded column (row). */
  readonly columns: Int32Array;
  readonly rows: Int32Array;
}

/** Index into 0..n-1 for position `i`, mirroring about the end pixels (pad.ts's reflectIndex). */
function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/**
 * The padding plan for a frame: `margin` reflected pixels on every side (the Node default is 48),
 * then reflection to a multiple of `multiple`. The two reflections compose as they do in Node:
 * the second mirrors the already padded image, not the frame.
 */
export function planFrame(width: number, height: number, margin: number, multiple = 4): FramePlan {
  const axis = (size: number) => {
    const inner = size + 2 * margin;
    const extra = (multiple - (inner % multiple)) % multiple;
    const before = Math.floor(extra / 2);
    const map = new Int32Array(inner + extra);
    for (let i = 0; i < map.length; i++) map[i] = reflectIndex(reflectIndex(i - before, inner) - margin, size);
    return { map, offset: before + margin };
  };
  const x = axis(width);
  const y = axis(height);
  return { width, height, margin, paddedWidth: x.map.length, paddedHeight: y.map.length, left: x.offset, top: y.offset, columns: x.map, rows: y.map };
}

/** The network input for `plan`: planar RGB float32, [1, 3, paddedHeight, paddedWidth]. */
export function inputBuffer(plan: FramePlan): Float32Array {
  return new Float32Array(3 * plan.paddedWidth * plan.paddedHeight);
}

/** Fills `out` (from {@link inputBuffer}) with the padded frame from RGBA bytes (canvas ImageData order). */
export function packFrame(rgba: ArrayLike<number>, plan: FramePlan, out: Float32Array): void {
  const { width, paddedWidth, paddedHeight, columns, rows } = plan;
  const plane = paddedWidth * paddedHeight;
  for (let y = 0; y < paddedHeight; y++) {
    const src = rows[y] * width;
    let dst = y * paddedWidth;
    for (let x = 0; x < paddedWidth; x++, dst++) {
      const p = (src + columns[x]) * 4;
      out[dst] = rgba[p];
      out[dst + plane] = rgba[p + 1];
      out[dst + 2 * plane] = rgba[p + 2];
    }
  }
}

/** What the page does to the network's output before drawing it. */
export interface OutputOptions {
  /** 0..1: blend of the input (0) and the stylised output (1). */
  readonly strength: number;
  /** Keep the input's colours: the output's BT.601 luma with the input's chroma (the CLI's --colors luminance). */
  readonly preserveColors: boolean;
}

// BT.601 luma weights, as src/image/color.ts.
const KR = 0.299;
const KG = 0.587;
const KB = 0.114;

const clamp255 = (v: number): number => (v > 255 ? 255 : v > 0 ? v : 0);

/**
 * Writes the frame's part of the network output (planar, padded as `plan`) into `rgba` (4 bytes
 * per pixel, alpha 255), clamped, blended and recoloured in Node's order. `input` is the frame's
 * RGBA (for strength and colours).
 */
export function unpackOutput(output: Float32Array, plan: FramePlan, input: ArrayLike<number>, options: OutputOptions, rgba: { [index: number]: number }): void {
  const { width, height, paddedWidth, paddedHeight, left, top } = plan;
  const plane = paddedWidth * paddedHeight;
  const t = options.strength;
  for (let y = 0; y < height; y++) {
    let src = (y + top) * paddedWidth + left;
    let p = y * width * 4;
    for (let x = 0; x < width; x++, src++, p += 4) {
      let r = clamp255(output[src]);
      let g = clamp255(output[src + plane]);
      let b = clamp255(output[src + 2 * plane]);
      const ir = input[p], ig = input[p + 1], ib = input[p + 2];
      if (t < 1) {
        r = ir + t * (r - ir);
        g = ig + t * (g - ig);
        b = ib + t * (b - ib);
      }
      if (options.preserveColors) {
        // Swapping the luma of YCbCr shifts R, G and B by the same amount (see color.ts).
        const shift = KR * r + KG * g + KB * b - (KR * ir + KG * ig + KB * ib);
        r = clamp255(ir + shift);
        g = clamp255(ig + shift);
        b = clamp255(ib + shift);
      }
      rgba[p] = r;
      rgba[p + 1] = g;
      rgba[p + 2] = b;
      rgba[p + 3] = 255;
    }
  }
}
