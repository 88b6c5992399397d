/**
 * The op registry: every primitive the graph builder knows, by family. Adding an op means adding
 * it to its family file and one line here.
 */
export { conv2d, convTranspose2d, type Conv2dAttrs, type ConvTranspose2dAttrs, type Padding2d } from './conv.js';
export { add, sub, mul, div, relu, tanh, sigmoid, clip, type ClipAttrs } from './elementwise.js';
export { instanceNorm, type InstanceNormAttrs } from './norm.js';
export { pad2d, crop2d, type PadAttrs, type Crop2dAttrs } from './pad.js';
export { upsampleNearest, depthToSpace, spaceToDepth, type UpsampleAttrs, type DepthToSpaceAttrs } from './resize.js';
