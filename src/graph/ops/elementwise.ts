/** Elementwise ops: NumPy broadcasting for binary ops, shape-preserving unary ops. */
import { broadcastShapes, formatShape } from '../shape.js';
import { expectArity, shapeError, type GradRule, type OpDef } from '../op.js';
import * as F from '../functional.js';

function binary(type: string, onnxType: string, grad: GradRule<Record<string, never>>): OpDef {
  return {
    type,
    inferShape(inputs) {
      expectArity(type, inputs, 2);
      const shape = broadcastShapes(inputs[0], inputs[1]);
      if (!shape) shapeError(type, `shapes ${formatShape(inputs[0])} and ${formatShape(inputs[1])} do not broadcast`);
      return shape;
    },
    emit(e, { inputs, output }) {
      e.node(onnxType, inputs, [output]);
    },
    grad,
  };
}

function unary(type: string, onnxType: string, grad?: GradRule<Record<string, never>>): OpDef {
  return {
    type,
    inferShape(inputs) {
      expectArity(type, inputs, 1);
      return inputs[0];
    },
    emit(e, { inputs, output }) {
      e.node(onnxType, inputs, [output]);
    },
    grad,
  };
}

// Gradients of binary ops are shaped like the output; autodiff sums them back over broadcast axes.
export const add = binary('add', 'Add', ({ dy }) => [dy, dy]);
export const sub = binary('sub', 'Sub', ({ dy, needs }) => [dy, needs[1] ? F.neg(dy) : null]);
export const mul = binary('mul', 'Mul', ({ inputs: [a, b], dy, needs }) => [needs[0] ? F.mul(dy, b) : null, needs[1] ? F.mul(dy, a) : null]);
export const div = binary('div', 'Div', ({ inputs: [a, b], output, dy, needs }) => [
  needs[0] ? F.div(dy, b) : null,
  needs[1] ? F.neg(F.div(F.mul(dy, output), b)) : null,
]);

export const neg = unary('neg', 'Neg', ({ dy }) => [F.neg(dy)]);
// The mask is taken from the output (y > 0 exactly where x > 0). Measured at 512² through VGG19,
// compare + cast + multiply beat both onnxruntime's Sign (one op, but a slow kernel) and Where.
export const relu = unary('relu', 'Relu', ({ output, dy }) => [F.mul(dy, F.rangeMask(output, 0, Infinity, true))]);
export const tanh = unary('tanh', 'Tanh', ({ output, dy }) => [F.mul(dy, F.sub(F.scalarLike(output, 1), F.mul(output, output)))]);
export const sigmoid = unary('sigmoid', 'Sigmoid', ({ output, dy }) => [F.mul(dy, F.mul(output, F.sub(F.scalarLike(output, 1), output)))]);
export const sqrt = unary('sqrt', 'Sqrt', ({ output, dy }) => [F.div(dy, F.scale(output, 2))]);
export const exp = unary('exp', 'Exp', ({ output, dy }) => [F.mul(dy, output)]);
export const square: OpDef = {
  type: 'square',
  inferShape(inputs) {
    expectArity('square', inputs, 1);
    return inputs[0];
  },
  emit(e, { inputs, output }) {
    e.node('Mul', [inputs[0], inputs[0]], [output]);
  },
  grad: ({ inputs: [x], dy }) => [F.mul(dy, F.scale(x, 2))],
};

export interface ClipAttrs {
  readonly min: number;
  readonly max: number;
}

export const clip: OpDef<ClipAttrs> = {
  type: 'clip',
  inferShape(inputs, { min, max }) {
    expectArity('clip', inputs, 1);
    if (!(min <= max)) shapeError('clip', `min ${min} is greater than max ${max}`);
    return inputs[0];
  },
  emit(e, { inputs, output, attrs }) {
    const bound = (x: number, hint: string): string => e.floats({ data: Float32Array.of(x), shape: [] }, hint);
    e.node('Clip', [inputs[0], bound(attrs.min, 'clip_min'), bound(attrs.max, 'clip_max')], [output]);
  },
  grad: ({ inputs: [x], dy, attrs }) => [F.mul(dy, F.rangeMask(x, attrs.min, attrs.max, false))],
};

export interface RangeMaskAttrs {
  readonly min: number;
  readonly max: number;
  /** x > min rather than x ≥ min (ReLU's subgradient at 0 is 0). */
  readonly exclusiveMin: boolean;
}

/** 1 where min ≤ x ≤ max (or min < x), else 0: the local slope of ReLU and clip. No gradient. */
export const rangeMask: OpDef<RangeMaskAttrs> = {
  type: 'rangeMask',
  inferShape(inputs) {
    expectArity('rangeMask', inputs, 1);
    return inputs[0];
  },
  emit(e, { inputs, output, attrs }) {
    const scalar = (v: number, hint: string): string => e.floats({ data: Float32Array.of(v), shape: [] }, hint);
    const conditions: string[] = [];
    if (attrs.min > -Infinity) {
      const c = e.temp('above');
      e.node(attrs.exclusiveMin ? 'Greater' : 'GreaterOrEqual', [inputs[0], scalar(attrs.min, 'mask_min')], [c]);
      conditions.push(c);
    }
    if (attrs.max < Infinity) {
      const c = e.temp('below');
      e.node('LessOrEqual', [inputs[0], scalar(attrs.max, 'mask_max')], [c]);
      conditions.push(c);
    }
    let condition = conditions[0];
    if (conditions.length === 2) {
      condition = e.temp('inside');
      e.node('And', conditions, [condition]);
    }
    e.node('Cast', [condition], [output], { to: 1 });
  },
  grad: () => [null],
};

/** 1 where a = b, else 0 (broadcasting): marks the maxima of a pooling window. No gradient. */
export const equalMask: OpDef = {
  type: 'equalMask',
  inferShape(inputs) {
    expectArity('equalMask', inputs, 2);
    const shape = broadcastShapes(inputs[0], inputs[1]);
    if (!shape) shapeError('equalMask', `shapes ${formatShape(inputs[0])} and ${formatShape(inputs[1])} do not broadcast`);
    return shape;
  },
  emit(e, { inputs, output }) {
    const equal = e.temp('equal');
    e.node('Equal', inputs, [equal]);
    e.node('Cast', [equal], [output], { to: 1 });
  },
  grad: () => [null, null],
};
