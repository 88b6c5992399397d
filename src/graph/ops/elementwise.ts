/** Elementwise ops: NumPy broadcasting for binary ops, shape-preserving unary ops. */
import { broadcastShapes, formatShape } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';

function binary(type: string, onnxType: string): OpDef {
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
  };
}

function unary(type: string, onnxType: string): OpDef {
  return {
    type,
    inferShape(inputs) {
      expectArity(type, inputs, 1);
      return inputs[0];
    },
    emit(e, { inputs, output }) {
      e.node(onnxType, inputs, [output]);
    },
  };
}

export const add = binary('add', 'Add');
export const sub = binary('sub', 'Sub');
export const mul = binary('mul', 'Mul');
export const div = binary('div', 'Div');
export const relu = unary('relu', 'Relu');
export const tanh = unary('tanh', 'Tanh');
export const sigmoid = unary('sigmoid', 'Sigmoid');

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
};
