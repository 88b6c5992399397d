/**
 * Gradient formulas shared by conv2d and convTranspose2d (each is the other's adjoint), in the
 * formulations measured fastest on onnxruntime's CPU kernels (../shared/DESIGN.md):
 * d(input) of a stride-1 convolution as a Conv with the flipped, in/out-swapped kernel; d(weights)
 * as one MatMul per kernel tap of dY against the shifted input.
 */
import type { Value } from '../builder.js';
import * as F from '../functional.js';
import type { Padding2d } from './conv.js';

export function concreteSize(value: Value, axis: number, what: string): number {
  const d = value.shape[axis];
  if (typeof d !== 'number') throw new Error(`${what}: the gradient needs concrete sizes, got [${value.shape.join(', ')}]`);
  return d;
}

/** TensorFlow SAME padding [top, left, bottom, right] for a concrete input. */
export function samePadding(h: number, w: number, kh: number, kw: number, stride: number): Padding2d {
  const total = (n: number, k: number): number => Math.max((Math.ceil(n / stride) - 1) * stride + k - n, 0);
  const th = total(h, kh);
  const tw = total(w, kw);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

/**
 * d(input) of y = conv2d(x, w) with stride s and pads [t, l, b, r], for x of size h × w.
 * Stride 1: conv2d(dy, flip(wᵀ)) with pads k−1−p. Otherwise the transposed convolution, whose
 * sub-pixel lowering applies for the usual stride-2 cases; rows no window touched get zero.
 */
export function convInputGrad(dy: Value, weight: Value, stride: number, pads: Padding2d, h: number, w: number): Value {
  const kh = concreteSize(weight, 2, 'conv2d');
  const kw = concreteSize(weight, 3, 'conv2d');
  const [t, l, b, r] = pads;
  if (stride === 1 && [t, b].every((p) => p <= kh - 1) && [l, r].every((p) => p <= kw - 1)) {
    const flipped = F.flip(F.transpose(weight, [1, 0, 2, 3]), [2, 3]);
    return F.conv2d(dy, flipped, undefined, { stride: 1, padding: [kh - 1 - t, kw - 1 - l, kh - 1 - b, kw - 1 - r] });
  }
  const hy = concreteSize(dy, 2, 'conv2d');
  const wy = concreteSize(dy, 3, 'conv2d');
  // Crop at the end so the transposed convolution lands on exactly h × w; negative means rows the
  // forward windows never reached, which get zero gradient.
  const bottom = stride * (hy - 1) + kh - t - h;
  const right = stride * (wy - 1) + kw - l - w;
  const dx = F.convTranspose2d(dy, weight, undefined, { stride, pads: [t, l, Math.max(bottom, 0), Math.max(right, 0)] });
  return F.padAxis(F.padAxis(dx, 2, 0, Math.max(-bottom, 0)), 3, 0, Math.max(-right, 0));
}

/**
 * d(weights) [K, C, kh, kw] of a convolution whose input is `x` [N, C, H, W] (padded by `pads`)
 * and whose output gradient is `dy` [N, K, Hy, Wy]: for each tap (i, j), one batched MatMul of
 * dY against the input shifted by (i, j), summed over the batch. The shift is a slice of whichever
 * side has fewer channels: the input's window, or (stride 1) dY placed at offset (i, j) in a zero
 * frame the size of the padded input — so a 9x9 convolution into 3 channels copies 3-channel
 * planes 81 times, not 32-channel ones.
 */
export function convWeightGrad(x: Value, dy: Value, kh: number, kw: number, stride: number, pads: Padding2d): Value {
  const [n, c] = [concreteSize(x, 0, 'conv2d'), concreteSize(x, 1, 'conv2d')];
  const [k, hy, wy] = [concreteSize(dy, 1, 'conv2d'), concreteSize(dy, 2, 'conv2d'), concreteSize(dy, 3, 'conv2d')];
  const [t, l, b, r] = pads;
  const padded = t || l || b || r ? F.pad2d(x, pads, 'constant') : x;
  const [hp, wp] = [concreteSize(padded, 2, 'conv2d'), concreteSize(padded, 3, 'conv2d')];
  // x·yᵀ per image as one batched MatMul ([N, K, M] × [N, M, C]), then Σ over the batch.
  const product = (dyRows: Value, xRows: Value): Value => {
    const perImage = F.matmul(dyRows, F.transpose(xRows, [0, 2, 1]));
    return F.reshape(n === 1 ? perImage : F.reduceSum(perImage, [0], true), [k, c, 1]);
  };
  const taps: Value[] = [];
  const shiftDy = stride === 1 && k < c && hp === hy + kh - 1 && wp === wy + kw - 1;
  // With a few channels on the shifted side and a large kernel (9x9 into or out of RGB), per-tap
  // MatMuls of 3 rows are inefficient: the shifted planes are stacked (im2col) for one MatMul per
  // image instead — 650 → 300 ms for 3→32 channels, 9x9, batch 4 at 256² (measured here).
  const stack = Math.min(c, k) <= 4 && kh * kw > 9;
  if (shiftDy) {
    const frame = F.pad2d(dy, [kh - 1, kw - 1, kh - 1, kw - 1], 'constant');
    const xRows = F.reshape(padded, [n, c, hp * wp]);
    const shifted = (i: number, j: number): Value => F.slice(F.slice(frame, 2, kh - 1 - i, kh - 1 - i + hp), 3, kw - 1 - j, kw - 1 - j + wp);
    if (stack) {
      const planes: Value[] = [];
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) planes.push(F.reshape(shifted(i, j), [n, k, 1, hp * wp]));
      const rows = F.reshape(F.concat(planes, 2), [n, k * kh * kw, hp * wp]);
      const perImage = F.matmul(rows, F.transpose(xRows, [0, 2, 1]));
      const summed = n === 1 ? perImage : F.reduceSum(perImage, [0], true);
      return F.reshape(F.transpose(F.reshape(summed, [k, kh * kw, c]), [0, 2, 1]), [k, c, kh, kw]);
    }
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) taps.push(product(F.reshape(shifted(i, j), [n, k, hp * wp]), xRows));
    }
  } else {
    const dyRows = F.reshape(dy, [n, k, hy * wy]);
    const window = (i: number, j: number): Value => {
      const rows = F.slice(padded, 2, i, i + stride * (hy - 1) + 1, stride);
      return F.slice(rows, 3, j, j + stride * (wy - 1) + 1, stride);
    };
    if (stack) {
      const planes: Value[] = [];
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) planes.push(F.reshape(window(i, j), [n, c, 1, hy * wy]));
      const columns = F.reshape(F.concat(planes, 2), [n, c * kh * kw, hy * wy]);
      const perImage = F.matmul(dyRows, F.transpose(columns, [0, 2, 1]));
      return F.reshape(n === 1 ? perImage : F.reduceSum(perImage, [0], true), [k, c, kh, kw]);
    }
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) taps.push(product(dyRows, F.reshape(window(i, j), [n, c, hy * wy])));
    }
  }
  return F.reshape(taps.length === 1 ? taps[0] : F.concat(taps, 2), [k, c, kh, kw]);
}
