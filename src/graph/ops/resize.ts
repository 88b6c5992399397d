/** Changes of resolution: nearest-neighbour upsampling and depth-to-space (pixel shuffle). */
import { floorDivDim, formatShape, mulDim } from '../shape.js';
import { expectArity, shapeError, type OpDef } from '../op.js';

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
};

export interface DepthToSpaceAttrs {
  readonly blockSize: number;
}

/** Rearranges channel blocks into space: [N, C·b², H, W] → [N, C, H·b, W·b] (ONNX 'CRD' order). */
export const depthToSpace: OpDef<DepthToSpaceAttrs> = {
  type: 'depthToSpace',
  inferShape(inputs, { blockSize }) {
    expectArity('depthToSpace', inputs, 1);
    const [x] = inputs;
    const c = x[1];
    if (x.length !== 4 || typeof c !== 'number' || c % (blockSize * blockSize) !== 0) {
      shapeError('depthToSpace', `input ${formatShape(x)} must be NCHW with channels divisible by ${blockSize * blockSize}`);
    }
    return [x[0], c / (blockSize * blockSize), mulDim(x[2], blockSize), mulDim(x[3], blockSize)];
  },
  emit(e, { inputs, output, attrs }) {
    e.node('DepthToSpace', inputs, [output], { blocksize: attrs.blockSize, mode: 'CRD' });
  },
};

/** Inverse of depthToSpace: [N, C, H·b, W·b] → [N, C·b², H, W], ONNX's block-major channel order. */
export const spaceToDepth: OpDef<DepthToSpaceAttrs> = {
  type: 'spaceToDepth',
  inferShape(inputs, { blockSize }) {
    expectArity('spaceToDepth', inputs, 1);
    const [x] = inputs;
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
};
