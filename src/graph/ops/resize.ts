/** Changes of resolution: nearest-neighbour upsampling and depth-to-space (pixel shuffle). */
import { floorDivDim, formatShape, mulDim, type Shape } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';
import type { Value } from '../builder.js';
import * as F from '../functional.js';
import { emitDepthToSpace } from './conv-lowering.js';

function concreteNchw(x: Value, op: string): [number, number, number, number] {
  if (!x.shape.every((d) => typeof d === 'number')) throw new Error(`${op}: the gradient needs concrete sizes, got [${x.shape.join(', ')}]`);
  return x.shape as unknown as [number, number, number, number];
}

export interface UpsampleAttrs {
  readonly scale: number;
}

/** Integer-factor nearest upsampling, as PyTorch's `interpolate(mode='nearest')`. */
export const upsampleNearest: OpDef<UpsampleAttrs> = {
  type: 'upsampleNearest',
  inferShape(inputs, { scale }) {
    expectArity('upsampleNearest', inputs, 1);
    const [x] = inputs;
    if (x.length !== 4) shapeError('upsampleNearest', `input must be NCHW but has shape ${formatShape(x)}`);
    if (!Number.isInteger(scale) || scale < 1) shapeError('upsampleNearest', `scale must be a positive integer, got ${scale}`);
    return [x[0], x[1], mulDim(x[2], scale), mulDim(x[3], scale)];
  },
  emit(e, { inputs, output, attrs }) {
    const scales = e.floats({ data: Float32Array.of(1, 1, attrs.scale, attrs.scale), shape: [4] }, 'scales');
    e.node('Resize', [inputs[0], '', scales], [output], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  },
  // Each input pixel was copied to a scale × scale block: its gradient is the block's sum.
  grad: ({ dy, attrs }) => [F.scale(F.avgPool2d(dy, attrs.scale), attrs.scale * attrs.scale)],
};

/** The one input of a block rearrangement, once its arity and block size are checked. */
function blockInput(op: string, inputs: readonly Shape[], blockSize: number): Shape {
  expectArity(op, inputs, 1);
  if (!Number.isInteger(blockSize) || blockSize < 1) shapeError(op, `block size must be a positive integer, got ${blockSize}`);
  return inputs[0];
}

export interface DepthToSpaceAttrs {
  readonly blockSize: number;
}

/** Rearranges channel blocks into space: [N, C·b², H, W] → [N, C, H·b, W·b] (ONNX 'CRD' order). */
export const depthToSpace: OpDef<DepthToSpaceAttrs> = {
  type: 'depthToSpace',
  inferShape(inputs, { blockSize }) {
    const x = blockInput('depthToSpace', inputs, blockSize);
    const c = x[1];
    if (x.length !== 4 || typeof c !== 'number' || c % (blockSize * blockSize) !== 0) {
      shapeError('depthToSpace', `input ${formatShape(x)} must be NCHW with channels divisible by ${blockSize * blockSize}`);
    }
    return [x[0], c / (blockSize * blockSize), mulDim(x[2], blockSize), mulDim(x[3], blockSize)];
  },
  emit(e, { inputs, output, attrs, inputShapes }) {
    if (e.lowering === 'direct') e.node('DepthToSpace', inputs, [output], { blocksize: attrs.blockSize, mode: 'CRD' });
    else emitDepthToSpace(e, inputs[0], output, (inputShapes[0][1] as number) / attrs.blockSize ** 2, attrs.blockSize);
  },
  grad: ({ inputs: [x], dy, attrs }) => {
    const [n, cb, h, w] = concreteNchw(x, 'depthToSpace');
    const b = attrs.blockSize;
    const c = cb / (b * b);
    const blocks = F.reshape(dy, [n, c, h, b, w, b]);
    return [F.reshape(F.transpose(blocks, [0, 1, 3, 5, 2, 4]), [n, cb, h, w])];
  },
};

/**
 * [N, C, H·b, W·b] → [N, C·b², H, W] in ONNX's block-major channel order ((bh·b + bw)·C + c),
 * which is not the inverse of depthToSpace's CRD order when C > 1.
 */
export const spaceToDepth: OpDef<DepthToSpaceAttrs> = {
  type: 'spaceToDepth',
  inferShape(inputs, { blockSize }) {
    const x = blockInput('spaceToDepth', inputs, blockSize);
    const c = x[1];
    if (x.length !== 4 || typeof c !== 'number') shapeError('spaceToDepth', `input ${formatShape(x)} must be NCHW`);
    for (const d of [x[2], x[3]]) {
      if (typeof d === 'number' && d % blockSize !== 0) shapeError('spaceToDepth', `spatial size ${d} is not a multiple of ${blockSize}`);
    }
    return [x[0], c * blockSize * blockSize, floorDivDim(x[2], blockSize), floorDivDim(x[3], blockSize)];
  },
  emit(e, { inputs, output, attrs }) {
    e.node('SpaceToDepth', inputs, [output], { blocksize: attrs.blockSize });
  },
  // SpaceToDepth output channel (bh·b + bw)·C + c holds x[c, h·b + bh, w·b + bw].
  grad: ({ inputs: [x], dy, attrs }) => {
    const [n, c, hb, wb] = concreteNchw(x, 'spaceToDepth');
    const b = attrs.blockSize;
    const blocks = F.reshape(dy, [n, b, b, c, hb / b, wb / b]);
    return [F.reshape(F.transpose(blocks, [0, 3, 4, 1, 5, 2]), [n, c, hb, wb])];
  },
};
