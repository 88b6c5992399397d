/**
 * Convolutions, NCHW. conv2d pads either explicitly ([top, left, bottom, right]) or 'same' in the
 * TensorFlow sense (output = ceil(input / stride), the odd pixel of padding at the end), which is
 * ONNX's SAME_UPPER and keeps working for symbolic sizes.
 */
import { type Dim, type Shape, addDim, ceilDivDim, floorDivDim, isMultipleOf, mulDim } from '../shape.js';
import { expectArity, shapeError, type Emitter, type Lowering, type OpDef } from '../op.js';
import { emitSpaceToDepthConv, emitSubPixelConvTranspose } from './conv-lowering.js';
import { concreteSize, convInputGrad, convWeightGrad, samePadding } from './conv-grad.js';
import * as F from '../functional.js';

export type Padding2d = readonly [top: number, left: number, bottom: number, right: number];

export type ConvLowering = Lowering;

/** Whether this application may use a lowering: neither it nor the export asks for 'direct'. */
function mayLower(e: Emitter, attrs: { readonly lowering?: Lowering }): boolean {
  return attrs.lowering !== 'direct' && e.lowering !== 'direct';
}

export interface Conv2dAttrs {
  readonly stride: number;
  readonly padding: 'same' | Padding2d;
  readonly lowering?: ConvLowering;
}

export interface ConvTranspose2dAttrs {
  readonly stride: number;
  /** Cropped from the full transposed-convolution output: [top, left, bottom, right]. */
  readonly pads: Padding2d;
  readonly lowering?: ConvLowering;
}

function checkConvInputs(op: string, inputs: readonly Shape[], weightInAxis: 0 | 1): { k: readonly [Dim, Dim]; out: Dim } {
  expectArity(op, inputs, 2, 3);
  const [x, w, b] = inputs;
  if (x.length !== 4) shapeError(op, `input must be NCHW (rank 4) but has shape [${x.join(', ')}]`);
  if (w.length !== 4) shapeError(op, `weight must be rank 4 but has shape [${w.join(', ')}]`);
  if (w[weightInAxis] !== x[1]) shapeError(op, `input has ${x[1]} channels but the weight expects ${w[weightInAxis]}`);
  const out = w[1 - weightInAxis];
  if (b && (b.length !== 1 || b[0] !== out)) shapeError(op, `bias must have shape [${out}] but has [${b.join(', ')}]`);
  return { k: [w[2], w[3]], out };
}

function checkStridePads(op: string, stride: number, pads: readonly number[] | 'same'): void {
  if (!Number.isInteger(stride) || stride < 1) shapeError(op, `stride must be a positive integer, got ${stride}`);
  if (pads !== 'same' && pads.some((p) => !Number.isInteger(p) || p < 0)) shapeError(op, `padding must be non-negative integers, got [${pads.join(', ')}]`);
}

function checkPositive(op: string, size: Dim): Dim {
  if (typeof size === 'number' && size < 1) shapeError(op, `the output would have size ${size}`);
  return size;
}

function kernelSize(op: string, k: Dim): number {
  if (typeof k !== 'number') shapeError(op, 'kernel size must be concrete');
  return k;
}

export const conv2d: OpDef<Conv2dAttrs> = {
  type: 'conv2d',
  inferShape(inputs, { stride, padding }) {
    checkStridePads('conv2d', stride, padding);
    const { k, out } = checkConvInputs('conv2d', inputs, 1);
    const x = inputs[0];
    const spatial = [x[2], x[3]].map((d, axis) => {
      if (padding === 'same') return ceilDivDim(d, stride);
      const size = kernelSize('conv2d', k[axis]);
      const padded = addDim(d, padding[axis] + padding[axis + 2] - size);
      if (typeof padded === 'number' && padded < 0) shapeError('conv2d', `kernel ${size} is larger than the padded input ${padded + size}`);
      return addDim(floorDivDim(padded, stride), 1);
    });
    return [x[0], out, ...spatial];
  },
  emit(e, { inputs, output, attrs, inputShapes }) {
    const [cout, cin, kh, kw] = inputShapes[1] as number[];
    const padding = attrs.padding === 'same' && attrs.stride === 1 && kh % 2 === 1 && kw % 2 === 1
      ? [(kh - 1) / 2, (kw - 1) / 2, (kh - 1) / 2, (kw - 1) / 2] as const
      : attrs.padding;
    // Few output channels waste most of each SIMD block: fold 2x2 pixel blocks into channels.
    const [, , h, w] = inputShapes[0];
    if (mayLower(e, attrs) && attrs.stride === 1 && cout <= 4 && kh === kw && kh >= 5 &&
        padding !== 'same' && padding.every((p) => p === (kh - 1) / 2) && isMultipleOf(h, 2) && isMultipleOf(w, 2)) {
      emitSpaceToDepthConv(e, inputs, output, cin, cout, kh, padding[0], 2);
      return;
    }
    e.node('Conv', inputs, [output], {
      kernel_shape: [kh, kw],
      strides: [attrs.stride, attrs.stride],
      ...(padding === 'same' ? { auto_pad: 'SAME_UPPER' } : { pads: padding }),
    });
  },
  grad({ inputs: [x, w, b], dy, attrs, needs }) {
    const [h, width] = [concreteSize(x, 2, 'conv2d'), concreteSize(x, 3, 'conv2d')];
    const [kh, kw] = [concreteSize(w, 2, 'conv2d'), concreteSize(w, 3, 'conv2d')];
    const pads = attrs.padding === 'same' ? samePadding(h, width, kh, kw, attrs.stride) : attrs.padding;
    return [
      needs[0] ? convInputGrad(dy, w, attrs.stride, pads, h, width) : null,
      needs[1] ? convWeightGrad(x, dy, kh, kw, attrs.stride, pads) : null,
      b && needs[2] ? F.reduceSum(dy, [0, 2, 3]) : null,
    ];
  },
};

export const convTranspose2d: OpDef<ConvTranspose2dAttrs> = {
  type: 'convTranspose2d',
  inferShape(inputs, { stride, pads }) {
    checkStridePads('convTranspose2d', stride, pads);
    const { k, out } = checkConvInputs('convTranspose2d', inputs, 0);
    const x = inputs[0];
    const spatial = [x[2], x[3]].map((d, axis) => {
      const size = kernelSize('convTranspose2d', k[axis]);
      const extra = size - pads[axis] - pads[axis + 2] - stride;
      return checkPositive('convTranspose2d', addDim(mulDim(d, stride), extra));
    });
    return [x[0], out, ...spatial];
  },
  emit(e, { inputs, output, attrs, inputShapes }) {
    const [cin, cout, kh, kw] = inputShapes[1] as number[];
    const [top, left, bottom, right] = attrs.pads;
    if (mayLower(e, attrs) && attrs.stride > 1 && kh === kw && top === left && bottom === right &&
        kh - top - bottom === attrs.stride) {
      emitSubPixelConvTranspose(e, inputs, output, cin, cout, kh, attrs.stride, top);
      return;
    }
    e.node('ConvTranspose', inputs, [output], {
      kernel_shape: [inputShapes[1][2] as number, inputShapes[1][3] as number],
      strides: [attrs.stride, attrs.stride],
      pads: attrs.pads,
    });
  },
  grad({ inputs: [x, w, b], dy, attrs, needs }) {
    // y = convT(x, w) is the input-gradient of a convolution, so its adjoint is that convolution.
    const [kh, kw] = [concreteSize(w, 2, 'convTranspose2d'), concreteSize(w, 3, 'convTranspose2d')];
    const hy = concreteSize(dy, 2, 'convTranspose2d');
    const wy = concreteSize(dy, 3, 'convTranspose2d');
    const h = concreteSize(x, 2, 'convTranspose2d');
    const width = concreteSize(x, 3, 'convTranspose2d');
    const [t, l] = attrs.pads;
    // Pad dy so that the strided windows starting at h·s cover it: before t, after what remains.
    const bottom = (h - 1) * attrs.stride + kh - t - hy;
    const right = (width - 1) * attrs.stride + kw - l - wy;
    const pads: Padding2d = [t, l, bottom, right];
    return [
      needs[0] ? F.conv2d(dy, w, undefined, { stride: attrs.stride, padding: pads }) : null,
      needs[1] ? convWeightGrad(dy, x, kh, kw, attrs.stride, pads) : null,
      b && needs[2] ? F.reduceSum(dy, [0, 2, 3]) : null,
    ];
  },
};
