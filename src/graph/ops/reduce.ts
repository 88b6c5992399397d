/** Reductions over axes: sum and mean, with or without kept dimensions. */
import { formatShape, type Dim } from '../shape.js';
import { expectArity, shapeError, type GradRule, type OpDef } from '../op.js';
import * as F from '../functional.js';
import type { Value } from '../builder.js';

export interface ReduceAttrs {
  /** Axes to reduce (non-negative); all axes when empty. */
  readonly axes: readonly number[];
  readonly keepDims: boolean;
}

function reducedShape(type: string, x: readonly Dim[], { axes, keepDims }: ReduceAttrs): Dim[] {
  const all = axes.length === 0 ? x.map((_, i) => i) : axes;
  for (const a of all) if (!Number.isInteger(a) || a < 0 || a >= x.length) shapeError(type, `axis ${a} is out of range for ${formatShape(x)}`);
  return keepDims ? x.map((d, i) => (all.includes(i) ? 1 : d)) : x.filter((_, i) => !all.includes(i));
}

/** Count of elements reduced, for the mean's gradient; needs concrete reduced axes. */
function reducedCount(type: string, x: readonly Dim[], axes: readonly number[]): number {
  const all = axes.length === 0 ? x.map((_, i) => i) : axes;
  return all.reduce((n, a) => {
    const d = x[a];
    if (typeof d !== 'number') shapeError(type, `the gradient needs concrete sizes on reduced axes, got ${formatShape(x)}`);
    return n * d;
  }, 1);
}

/** dy with the reduced axes put back as size 1, then broadcast to x's shape. */
function spread(dy: Value, x: Value, attrs: ReduceAttrs): Value {
  const kept = attrs.keepDims ? dy : F.reshape(dy, reducedShape('reduce', x.shape, { ...attrs, keepDims: true }) as number[]);
  return F.broadcastTo(kept, x.shape);
}

/**
 * A reduction op. At opset 17 ReduceSum takes its axes as an input and ReduceMean as an
 * attribute, hence `axesAsInput`.
 */
function reduction(type: string, onnxType: string, axesAsInput: boolean, grad: GradRule<ReduceAttrs>): OpDef<ReduceAttrs> {
  return {
    type,
    inferShape(inputs, attrs) {
      expectArity(type, inputs, 1);
      return reducedShape(type, inputs[0], attrs);
    },
    emit(e, { inputs, output, attrs, inputShapes }) {
      const axes = attrs.axes.length === 0 ? inputShapes[0].map((_, i) => i) : attrs.axes;
      const keepdims = attrs.keepDims ? 1 : 0;
      if (axesAsInput) e.node(onnxType, [inputs[0], e.int64s(axes, 'axes')], [output], { keepdims });
      else e.node(onnxType, inputs, [output], { axes, keepdims });
    },
    grad,
  };
}

export const reduceSum = reduction('reduceSum', 'ReduceSum', true, ({ inputs: [x], dy, attrs }) => [spread(dy, x, attrs)]);

export const reduceMean = reduction('reduceMean', 'ReduceMean', false,
  ({ inputs: [x], dy, attrs }) => [F.scale(spread(dy, x, attrs), 1 / reducedCount('reduceMean', x.shape, attrs.axes))]);
