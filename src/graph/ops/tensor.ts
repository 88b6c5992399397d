/** Shape and layout ops: reshape, transpose, flip, broadcast, concat. */
import { broadcastShapes, formatShape, isConcrete, sizeOf, type Dim } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';
import * as F from '../functional.js';

export interface ReshapeAttrs {
  readonly shape: readonly number[];
}

export const reshape: OpDef<ReshapeAttrs> = {
  type: 'reshape',
  inferShape(inputs, { shape }) {
    expectArity('reshape', inputs, 1);
    const [x] = inputs;
    if (!isConcrete(x)) shapeError('reshape', `needs a concrete input shape, got ${formatShape(x)}`);
    if (sizeOf(x) !== sizeOf(shape)) shapeError('reshape', `cannot reshape ${formatShape(x)} (${sizeOf(x)} values) to ${formatShape(shape)}`);
    return shape;
  },
  emit(e, { inputs, output, attrs }) {
    e.node('Reshape', [inputs[0], e.int64s(attrs.shape, 'shape')], [output]);
  },
  grad: ({ inputs: [x], dy }) => [F.reshape(dy, x.shape as number[])],
};

export interface TransposeAttrs {
  readonly perm: readonly number[];
}

export const transpose: OpDef<TransposeAttrs> = {
  type: 'transpose',
  inferShape(inputs, { perm }) {
    expectArity('transpose', inputs, 1);
    const [x] = inputs;
    if (perm.length !== x.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
      shapeError('transpose', `[${perm.join(', ')}] is not a permutation of the axes of ${formatShape(x)}`);
    }
    return perm.map((p) => x[p]);
  },
  emit(e, { inputs, output, attrs }) {
    e.node('Transpose', inputs, [output], { perm: attrs.perm });
  },
  grad: ({ dy, attrs }) => {
    const inverse = new Array<number>(attrs.perm.length);
    attrs.perm.forEach((p, i) => { inverse[p] = i; });
    return [F.transpose(dy, inverse)];
  },
};

export interface FlipAttrs {
  readonly axes: readonly number[];
}

/** Reverses the order along `axes` (e.g. a kernel's spatial axes). */
export const flip: OpDef<FlipAttrs> = {
  type: 'flip',
  inferShape(inputs, { axes }) {
    expectArity('flip', inputs, 1);
    for (const a of axes) if (a < 0 || a >= inputs[0].length) shapeError('flip', `axis ${a} is out of range for ${formatShape(inputs[0])}`);
    return inputs[0];
  },
  emit(e, { inputs, output, attrs }) {
    const n = attrs.axes.length;
    e.node('Slice', [inputs[0], e.int64s(new Array(n).fill(-1), 'starts'), e.int64s(new Array(n).fill(-(2 ** 62)), 'ends'),
      e.int64s(attrs.axes, 'axes'), e.int64s(new Array(n).fill(-1), 'steps')], [output]);
  },
  grad: ({ dy, attrs }) => [F.flip(dy, attrs.axes)],
};

export interface BroadcastAttrs {
  readonly shape: readonly Dim[];
}

/** Broadcasts to `shape` (ONNX Expand). */
export const broadcastTo: OpDef<BroadcastAttrs> = {
  type: 'broadcastTo',
  inferShape(inputs, { shape }) {
    expectArity('broadcastTo', inputs, 1);
    const out = broadcastShapes(inputs[0], shape);
    if (!out || out.length !== shape.length || out.some((d, i) => d !== shape[i])) {
      shapeError('broadcastTo', `${formatShape(inputs[0])} does not broadcast to ${formatShape(shape)}`);
    }
    return shape;
  },
  emit(e, { inputs, output, attrs }) {
    if (!isConcrete(attrs.shape)) {
      // Symbolic target: broadcast against a zero tensor of the runtime shape is not available
      // here, so require concrete shapes (gradient graphs are built at concrete sizes).
      throw new RangeError(`broadcastTo: needs a concrete target shape, got ${formatShape(attrs.shape)}`);
    }
    e.node('Expand', [inputs[0], e.int64s(attrs.shape, 'shape')], [output]);
  },
  grad: ({ dy }) => [dy], // autodiff reduces the broadcast gradient back to the input's shape
};

export interface ConcatAttrs {
  readonly axis: number;
}

export const concat: OpDef<ConcatAttrs> = {
  type: 'concat',
  inferShape(inputs, { axis }) {
    if (inputs.length < 1) shapeError('concat', 'needs at least one input');
    const [first] = inputs;
    let total: Dim = 0;
    for (const s of inputs) {
      if (s.length !== first.length || s.some((d, i) => i !== axis && d !== first[i])) {
        shapeError('concat', `shapes ${inputs.map(formatShape).join(', ')} differ off axis ${axis}`);
      }
      const d = s[axis];
      if (typeof d !== 'number' || typeof total !== 'number') shapeError('concat', 'needs concrete sizes along the axis');
      total += d;
    }
    return first.map((d, i) => (i === axis ? total : d));
  },
  emit(e, { inputs, output, attrs }) {
    e.node('Concat', inputs, [output], { axis: attrs.axis });
  },
  grad: ({ inputs, dy, attrs }) => {
    let start = 0;
    return inputs.map((x) => {
      const size = x.shape[attrs.axis] as number;
      const part = F.slice(dy, attrs.axis, start, start + size);
      start += size;
      return part;
    });
  },
};

export interface SliceAttrs {
  readonly axis: number;
  readonly start: number;
  readonly end: number;
  readonly step: number;
}

/** x[..., start:end:step, ...] along one axis (concrete sizes; step ≥ 1). */
export const slice: OpDef<SliceAttrs> = {
  type: 'slice',
  inferShape(inputs, { axis, start, end, step }) {
    expectArity('slice', inputs, 1);
    const d = inputs[0][axis];
    if (typeof d !== 'number') shapeError('slice', `needs a concrete size on axis ${axis}, got ${formatShape(inputs[0])}`);
    if (!(start >= 0 && end <= d && start < end && step >= 1)) shapeError('slice', `[${start}:${end}:${step}] does not fit size ${d}`);
    return inputs[0].map((s, i) => (i === axis ? Math.ceil((end - start) / step) : s));
  },
  emit(e, { inputs, output, attrs }) {
    e.node('Slice', [inputs[0], e.int64s([attrs.start], 'starts'), e.int64s([attrs.end], 'ends'), e.int64s([attrs.axis], 'axes'), e.int64s([attrs.step], 'steps')], [output]);
  },
  grad: ({ inputs: [x], dy, attrs }) => {
    const size = x.shape[attrs.axis] as number;
    if (attrs.step !== 1) {
      // Strided: scatter by upsampling with zeros is not needed by any network yet.
      throw new Error('slice: no gradient rule for step > 1');
    }
    return [F.padAxis(dy, attrs.axis, attrs.start, size - attrs.end)];
  },
};

export interface PadAxisAttrs {
  readonly axis: number;
  readonly before: number;
  readonly after: number;
}

/** Zero padding along one axis (the gradient of slice). */
export const padAxis: OpDef<PadAxisAttrs> = {
  type: 'padAxis',
  inferShape(inputs, { axis, before, after }) {
    expectArity('padAxis', inputs, 1);
    const d = inputs[0][axis];
    if (typeof d !== 'number') shapeError('padAxis', 'needs a concrete size on the padded axis');
    return inputs[0].map((s, i) => (i === axis ? d + before + after : s));
  },
  emit(e, { inputs, output, attrs, inputShapes }) {
    const rank = inputShapes[0].length;
    const pads = new Array<number>(2 * rank).fill(0);
    pads[attrs.axis] = attrs.before;
    pads[rank + attrs.axis] = attrs.after;
    e.node('Pad', [inputs[0], e.int64s(pads, 'pads')], [output], { mode: 'constant' });
  },
  grad: ({ inputs: [x], dy, attrs }) => [F.slice(dy, attrs.axis, attrs.before, attrs.before + (x.shape[attrs.axis] as number))],
};
