/**
 * The op registry: every primitive the graph builder knows, by family. Adding an op means adding
 * it to its family file and one line here.
 */
export { conv2d, convTranspose2d, type Conv2dAttrs, type ConvTranspose2dAttrs, type ConvLowering, type Padding2d } from './conv.js';
export { add, sub, mul, div, neg, relu, tanh, sigmoid, sqrt, exp, square, clip, rangeMask, equalMask, type ClipAttrs, type RangeMaskAttrs } from './elementwise.js';
export { instanceNorm, type InstanceNormAttrs } from './norm.js';
export { pad2d, crop2d, type PadAttrs, type Crop2dAttrs } from './pad.js';
export { upsampleNearest, depthToSpace, spaceToDepth, type UpsampleAttrs, type DepthToSpaceAttrs } from './resize.js';
export { maxPool2d, avgPool2d, maxPool2dGrad, type Pool2dAttrs } from './pool.js';
export { reduceSum, reduceMean, type ReduceAttrs } from './reduce.js';
export { reshape, transpose, flip, broadcastTo, concat, slice, padAxis, type ReshapeAttrs, type TransposeAttrs, type FlipAttrs, type BroadcastAttrs, type ConcatAttrs, type SliceAttrs, type PadAxisAttrs } from './tensor.js';
export { matmul } from './matmul.js';
