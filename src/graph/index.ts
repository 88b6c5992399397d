/** The graph builder: values, ops, and export to ONNX. */
export { Graph, Value, type Node } from './builder.js';
export type { Dim, Shape, Tensor } from './shape.js';
export { sizeOf, formatShape } from './shape.js';
export type { OpDef, Emitter, EmitArgs } from './op.js';
export * as ops from './ops/index.js';
export * as F from './functional.js';
export { toOnnxModel, toOnnxBytes, OPSET, type OnnxExportOptions } from './onnx.js';
export { grad, reduceToShape } from './autodiff.js';
