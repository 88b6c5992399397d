/** Matrix products: batched MatMul with NumPy broadcasting over leading axes. */
import { broadcastShapes, formatShape } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';
import * as F from '../functional.js';

/** Swaps the last two axes. */
const transposeLast = (x: import('../builder.js').Value) => {
  const perm = x.shape.map((_, i) => i);
  [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
  return F.transpose(x, perm);
};

export const matmul: OpDef = {
  type: 'matmul',
  inferShape(inputs) {
    expectArity('matmul', inputs, 2);
    const [a, b] = inputs;
    if (a.length < 2 || b.length < 2) shapeError('matmul', `needs rank ≥ 2 operands, got ${formatShape(a)} and ${formatShape(b)}`);
    if (a[a.length - 1] !== b[b.length - 2]) shapeError('matmul', `inner sizes differ: ${formatShape(a)} × ${formatShape(b)}`);
    const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
    if (!batch) shapeError('matmul', `batch axes of ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    return [...batch, a[a.length - 2], b[b.length - 1]];
  },
  emit(e, { inputs, output }) {
    e.node('MatMul', inputs, [output]);
  },
  grad: ({ inputs: [a, b], dy, needs }) => [
    needs[0] ? F.matmul(dy, transposeLast(b)) : null,
    needs[1] ? F.matmul(transposeLast(a), dy) : null,
  ],
};
