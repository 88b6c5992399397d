/** Function-call spelling of the ops, so network code reads like the papers' pseudocode. */
import type { Value } from './builder.js';
import type { OpDef } from './op.js';
import * as ops from './ops/index.js';

const apply = <A>(op: OpDef<A>, inputs: readonly (Value | undefined)[], attrs: A, name?: string): Value => {
  const present = inputs.filter((v): v is Value => v !== undefined);
  return present[0].graph.apply(op, present, attrs, name);
};
const none = {} as Record<string, never>;

export const conv2d = (x: Value, weight: Value, bias: Value | undefined, attrs: ops.Conv2dAttrs, name?: string): Value =>
  apply(ops.conv2d, [x, weight, bias], attrs, name);
export const convTranspose2d = (x: Value, weight: Value, bias: Value | undefined, attrs: ops.ConvTranspose2dAttrs, name?: string): Value =>
  apply(ops.convTranspose2d, [x, weight, bias], attrs, name);
export const instanceNorm = (x: Value, scale: Value, bias: Value, epsilon: number, name?: string): Value =>
  apply(ops.instanceNorm, [x, scale, bias], { epsilon }, name);
export const add = (a: Value, b: Value): Value => apply(ops.add, [a, b], none);
export const sub = (a: Value, b: Value): Value => apply(ops.sub, [a, b], none);
export const mul = (a: Value, b: Value): Value => apply(ops.mul, [a, b], none);
export const div = (a: Value, b: Value): Value => apply(ops.div, [a, b], none);
export const relu = (x: Value): Value => apply(ops.relu, [x], none);
export const tanh = (x: Value): Value => apply(ops.tanh, [x], none);
export const sigmoid = (x: Value): Value => apply(ops.sigmoid, [x], none);
export const clip = (x: Value, min: number, max: number): Value => apply(ops.clip, [x], { min, max });
export const pad2d = (x: Value, pads: ops.Padding2d, mode: ops.PadAttrs['mode'], value = 0): Value =>
  apply(ops.pad2d, [x], { pads, mode, value });
export const crop2d = (x: Value, crop: ops.Padding2d): Value => apply(ops.crop2d, [x], { crop });
export const upsampleNearest = (x: Value, scale: number): Value => apply(ops.upsampleNearest, [x], { scale });
export const depthToSpace = (x: Value, blockSize: number): Value => apply(ops.depthToSpace, [x], { blockSize });

/** x·a + b with scalar constants. */
export const affine = (x: Value, a: number, b: number): Value => add(mul(x, x.graph.scalar(a, 'scale')), x.graph.scalar(b, 'shift'));
export const maxPool2d = (x: Value, kernel = 2, stride = kernel): Value => apply(ops.maxPool2d, [x], { kernel, stride });
export const avgPool2d = (x: Value, kernel = 2, stride = kernel): Value => apply(ops.avgPool2d, [x], { kernel, stride });
export const neg = (x: Value): Value => apply(ops.neg, [x], none);
export const sqrt = (x: Value): Value => apply(ops.sqrt, [x], none);
export const exp = (x: Value): Value => apply(ops.exp, [x], none);
export const square = (x: Value): Value => apply(ops.square, [x], none);
export const rangeMask = (x: Value, min: number, max: number, exclusiveMin = false): Value => apply(ops.rangeMask, [x], { min, max, exclusiveMin });
/** x · a for a constant a. */
export const scale = (x: Value, a: number): Value => (a === 1 ? x : mul(x, x.graph.scalar(a, 'k')));
/** A scalar constant in x's graph (broadcasts against x). */
export const scalarLike = (x: Value, v: number): Value => x.graph.scalar(v, 'k');
export const reshape = (x: Value, shape: readonly number[]): Value => apply(ops.reshape, [x], { shape });
/**
 * Transposes `x`; a transpose of a transpose becomes one (or none when they cancel), as the
 * gradients of matmul(A, Bᵀ) would otherwise copy large matrices back and forth.
 */
export const transpose = (x: Value, perm: readonly number[]): Value => {
  if (perm.every((p, i) => p === i)) return x;
  const inner = x.node?.op === ops.transpose ? x.node : undefined;
  if (inner) {
    const innerPerm = (inner.attrs as ops.TransposeAttrs).perm;
    return transpose(inner.inputs[0], perm.map((p) => innerPerm[p]));
  }
  return apply(ops.transpose, [x], { perm });
};
export const flip = (x: Value, axes: readonly number[]): Value => apply(ops.flip, [x], { axes });
export const broadcastTo = (x: Value, shape: readonly (number | string)[]): Value =>
  (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i]) ? x : apply(ops.broadcastTo, [x], { shape }));
export const concat = (xs: readonly Value[], axis: number): Value => xs[0].graph.apply(ops.concat, xs, { axis });
export const slice = (x: Value, axis: number, start: number, end: number, step = 1): Value => apply(ops.slice, [x], { axis, start, end, step });
export const padAxis = (x: Value, axis: number, before: number, after: number): Value =>
  (before === 0 && after === 0 ? x : apply(ops.padAxis, [x], { axis, before, after }));
export const matmul = (a: Value, b: Value): Value => apply(ops.matmul, [a, b], none);
export const reduceSum = (x: Value, axes: readonly number[] = [], keepDims = false): Value => apply(ops.reduceSum, [x], { axes, keepDims });
export const reduceMean = (x: Value, axes: readonly number[] = [], keepDims = false): Value => apply(ops.reduceMean, [x], { axes, keepDims });
export const spaceToDepth = (x: Value, blockSize: number): Value => apply(ops.spaceToDepth, [x], { blockSize });
export const equalMask = (a: Value, b: Value): Value => apply(ops.equalMask, [a, b], none);
