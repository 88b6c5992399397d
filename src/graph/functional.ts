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
