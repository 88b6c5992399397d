/** Spatial padding and cropping of NCHW tensors. */
import { addDim, formatShape, type Dim } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';
import type { Padding2d } from './conv.js';
import type { Value } from '../builder.js';
import * as F from '../functional.js';

/**
 * Gradient of padding one axis by `before`/`after` (input length n): the centre, plus the padded
 * bands folded back onto the pixels they copied (mirrored for 'reflect', summed onto the edge for
 * 'edge').
 */
function padAxisGrad(dy: Value, axis: number, before: number, after: number, n: number, mode: PadAttrs['mode']): Value {
  if (mode === 'reflect' && n >= before + after + 2 && before + after > 0) return reflectAxisGrad(dy, axis, before, after, n);
  let dx = F.slice(dy, axis, before, before + n);
  if (mode === 'constant') return dx;
  if (before > 0) {
    const band = F.slice(dy, axis, 0, before);
    dx = F.add(dx, mode === 'reflect'
      ? F.padAxis(F.flip(band, [axis]), axis, 1, n - 1 - before)
      : F.padAxis(F.reduceSum(band, [axis], true), axis, 0, n - 1));
  }
  if (after > 0) {
    const band = F.slice(dy, axis, before + n, before + n + after);
    dx = F.add(dx, mode === 'reflect'
      ? F.padAxis(F.flip(band, [axis]), axis, n - 1 - after, 1)
      : F.padAxis(F.reduceSum(band, [axis], true), axis, n - 1, 0));
  }
  return dx;
}

/**
 * The reflect case in pieces: the mirrored bands (padded row before−1−k copied row k+1, padded
 * row before+n+k copied row n−2−k) are added only onto the rows they copied, and the pieces are
 * concatenated — two passes over the tensor instead of a full-size padded band and sum per side.
 */
function reflectAxisGrad(dy: Value, axis: number, before: number, after: number, n: number): Value {
  const rows = (from: number, to: number): Value => F.slice(dy, axis, before + from, before + to);
  const pieces: Value[] = [rows(0, 1)];
  if (before > 0) pieces.push(F.add(rows(1, 1 + before), F.flip(F.slice(dy, axis, 0, before), [axis])));
  if (n - 1 - after > 1 + before) pieces.push(rows(1 + before, n - 1 - after));
  if (after > 0) pieces.push(F.add(rows(n - 1 - after, n - 1), F.flip(F.slice(dy, axis, before + n, before + n + after), [axis])));
  pieces.push(rows(n - 1, n));
  return F.concat(pieces, axis);
}

export interface PadAttrs {
  /** [top, left, bottom, right] */
  readonly pads: Padding2d;
  readonly mode: 'constant' | 'reflect' | 'edge';
  readonly value?: number;
}

export const pad2d: OpDef<PadAttrs> = {
  type: 'pad2d',
  inferShape(inputs, { pads, mode }) {
    expectArity('pad2d', inputs, 1);
    const [x] = inputs;
    if (x.length !== 4) shapeError('pad2d', `input must be NCHW but has shape ${formatShape(x)}`);
    if (pads.some((p) => !Number.isInteger(p) || p < 0)) shapeError('pad2d', `pads must be non-negative integers, got [${pads.join(', ')}]`);
    const spatial = [x[2], x[3]].map((d, axis) => {
      const before = pads[axis];
      const after = pads[axis + 2];
      if (mode === 'reflect' && typeof d === 'number' && Math.max(before, after) >= d) {
        shapeError('pad2d', `reflection padding of ${Math.max(before, after)} needs a size above ${Math.max(before, after)} but the input has ${d}`);
      }
      return addDim(d, before + after);
    });
    return [x[0], x[1], ...spatial];
  },
  emit(e, { inputs, output, attrs }) {
    const [t, l, b, r] = attrs.pads;
    const pads = e.int64s([0, 0, t, l, 0, 0, b, r], 'pads');
    const extra = attrs.mode === 'constant' ? [e.floats({ data: Float32Array.of(attrs.value ?? 0), shape: [] }, 'pad_value')] : [];
    e.node('Pad', [inputs[0], pads, ...extra], [output], { mode: attrs.mode });
  },
  grad({ inputs: [x], dy, attrs }) {
    const [t, l, b, r] = attrs.pads;
    const [h, w] = [x.shape[2], x.shape[3]];
    if (typeof h !== 'number' || typeof w !== 'number') throw new Error('pad2d: the gradient needs concrete sizes');
    // The forward pass pads H, then W (ONNX pads all at once, but the result is the same).
    const dW = padAxisGrad(dy, 3, l, r, w, attrs.mode);
    return [padAxisGrad(dW, 2, t, b, h, attrs.mode)];
  },
};

export interface Crop2dAttrs {
  /** Pixels removed at each side: [top, left, bottom, right]. */
  readonly crop: Padding2d;
}

/** Removes a border; works on symbolic sizes (ONNX Slice with negative ends). */
export const crop2d: OpDef<Crop2dAttrs> = {
  type: 'crop2d',
  inferShape(inputs, { crop }) {
    expectArity('crop2d', inputs, 1);
    const [x] = inputs;
    if (x.length !== 4) shapeError('crop2d', `input must be NCHW but has shape ${formatShape(x)}`);
    if (crop.some((p) => !Number.isInteger(p) || p < 0)) shapeError('crop2d', `crop must be non-negative integers, got [${crop.join(', ')}]`);
    const spatial = [x[2], x[3]].map((d, axis): Dim => {
      const size = addDim(d, -crop[axis] - crop[axis + 2]);
      if (typeof size === 'number' && size <= 0) shapeError('crop2d', `cropping [${crop.join(', ')}] leaves nothing of ${formatShape(x)}`);
      return size;
    });
    return [x[0], x[1], ...spatial];
  },
  emit(e, { inputs, output, attrs }) {
    const [t, l, b, r] = attrs.crop;
    const big = 2 ** 62;
    const starts = e.int64s([t, l], 'starts');
    const ends = e.int64s([b > 0 ? -b : big, r > 0 ? -r : big], 'ends');
    const axes = e.int64s([2, 3], 'axes');
    e.node('Slice', [inputs[0], starts, ends, axes], [output]);
  },
  grad: ({ dy, attrs }) => [F.pad2d(dy, attrs.crop, 'constant')],
};
