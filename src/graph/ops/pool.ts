/** Pooling over non-overlapping or strided windows, NCHW, no padding (VGG's 2x2 stride-2 pools). */
import { addDim, floorDivDim, formatShape, type Shape } from '../shape.js';
import { expectArity, shapeError, type GradRule, type OpDef } from '../op.js';
import * as F from '../functional.js';

export interface Pool2dAttrs {
  readonly kernel: number;
  readonly stride: number;
}

function pooledShape(type: string, x: Shape, { kernel, stride }: Pool2dAttrs): Shape {
  if (x.length !== 4) shapeError(type, `input must be NCHW but has shape ${formatShape(x)}`);
  for (const d of [x[2], x[3]]) if (typeof d === 'number' && d < kernel) shapeError(type, `window ${kernel} is larger than the input ${formatShape(x)}`);
  return [x[0], x[1], addDim(floorDivDim(addDim(x[2], -kernel), stride), 1), addDim(floorDivDim(addDim(x[3], -kernel), stride), 1)];
}

function pool(type: string, onnxType: string, grad: GradRule<Pool2dAttrs>): OpDef<Pool2dAttrs> {
  return {
    type,
    inferShape(inputs, attrs) {
      expectArity(type, inputs, 1);
      return pooledShape(type, inputs[0], attrs);
    },
    emit(e, { inputs, output, attrs }) {
      e.node(onnxType, inputs, [output], { kernel_shape: [attrs.kernel, attrs.kernel], strides: [attrs.stride, attrs.stride] });
    },
    grad,
  };
}

/**
 * Windows that tile the input (VGG's 2x2/2): each window's gradient goes to its maximum, shared
 * equally among tied maxima (a valid subgradient), through elementwise ops — 5x faster than the
 * indexed scatter of maxPool2dGrad on onnxruntime's CPU kernels at 512². Other windows scatter.
 */
export const maxPool2d = pool('maxPool2d', 'MaxPool', ({ inputs: [x], output, dy, attrs }) => {
  const [h, w, ho, wo] = [x.shape[2], x.shape[3], output.shape[2], output.shape[3]];
  if (attrs.kernel !== attrs.stride || ![h, w, ho, wo].every((d) => typeof d === 'number')) {
    return [x.graph.apply(maxPool2dGrad, [x, dy], attrs)];
  }
  const k = attrs.kernel;
  const [dh, dw] = [(h as number) - (ho as number) * k, (w as number) - (wo as number) * k];
  const covered = dh || dw ? F.crop2d(x, [0, 0, dh, dw]) : x;
  const mask = F.equalMask(covered, F.upsampleNearest(output, k));
  const ties = F.scale(F.avgPool2d(mask, k), k * k);
  const spread = F.mul(F.upsampleNearest(F.div(dy, ties), k), mask);
  return [F.padAxis(F.padAxis(spread, 2, 0, dh), 3, 0, dw)];
});

/**
 * Windows that tile the input (kernel = stride): each input pixel receives its window's gradient
 * divided by the window size; rows and columns the pooling dropped receive zero.
 */
export const avgPool2d = pool('avgPool2d', 'AveragePool', ({ inputs: [x], output, dy, attrs }) => {
  if (attrs.kernel !== attrs.stride) throw new Error('avgPool2d: no gradient rule for overlapping or gapped windows (kernel ≠ stride)');
  const k = attrs.kernel;
  const spread = F.scale(F.upsampleNearest(dy, k), 1 / (k * k));
  const [h, w] = [x.shape[2], x.shape[3]];
  const [ho, wo] = [output.shape[2], output.shape[3]];
  if (typeof h !== 'number' || typeof w !== 'number' || typeof ho !== 'number' || typeof wo !== 'number') {
    throw new Error('avgPool2d: the gradient needs concrete sizes');
  }
  return [F.padAxis(F.padAxis(spread, 2, 0, h - ho * k), 3, 0, w - wo * k)];
});

/**
 * The gradient of max pooling: each window's gradient goes to the position of its maximum (the
 * first one on ties, as PyTorch), through MaxPool's indices and an additive scatter.
 * Inputs: x (the pooled input) and dy. No gradient of its own.
 */
export const maxPool2dGrad: OpDef<Pool2dAttrs> = {
  type: 'maxPool2dGrad',
  inferShape(inputs, attrs) {
    expectArity('maxPool2dGrad', inputs, 2);
    const pooled = pooledShape('maxPool2dGrad', inputs[0], attrs);
    if (formatShape(pooled) !== formatShape(inputs[1])) shapeError('maxPool2dGrad', `dy ${formatShape(inputs[1])} does not match the pooled shape ${formatShape(pooled)}`);
    return inputs[0];
  },
  emit(e, { inputs: [x, dy], output, attrs }) {
    const pooled = e.temp('pooled');
    const indices = e.temp('argmax');
    e.node('MaxPool', [x], [pooled, indices], { kernel_shape: [attrs.kernel, attrs.kernel], strides: [attrs.stride, attrs.stride] });
    const flat = e.int64s([-1], 'flat');
    const flatIndices = e.temp('argmax_flat');
    e.node('Reshape', [indices, flat], [flatIndices]);
    const flatDy = e.temp('dy_flat');
    e.node('Reshape', [dy, flat], [flatDy]);
    const shape = e.temp('x_shape');
    e.node('Shape', [x], [shape]);
    const count = e.temp('x_count');
    e.node('ReduceProd', [shape], [count], { keepdims: 1 });
    const zeros = e.temp('zeros');
    e.node('ConstantOfShape', [count], [zeros]);
    const scattered = e.temp('scattered');
    e.node('ScatterElements', [zeros, flatIndices, flatDy], [scattered], { axis: 0, reduction: 'add' });
    e.node('Reshape', [scattered, shape], [output]);
  },
};
