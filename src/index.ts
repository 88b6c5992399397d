/**
 * pastiche: neural style transfer in TypeScript on ONNX Runtime.
 *
 * @example
 * import { openStyleModel, stylizeFile } from 'pastiche';
 * const style = await openStyleModel('la_muse');           // a store name, .onnx file or checkpoint folder
 * await stylizeFile(style, 'photo.jpg', 'out.jpg', { size: 1024, strength: 0.8 });
 *
 * This file only re-exports; each module documents its own exports.
 */

// Feed-forward style transfer: images, folders, video.
export { openStyleModel, type StyleModel } from './style/model.js';
export {
  stylizeImage, stylizeFile, stylizeFolder, stylizeVideo, checkStylizeOptions,
  COLOR_MODES, DEFAULT_MARGIN, DEFAULT_TILE_OVERLAP, AUTO_TILE_PIXELS,
  type StylizeOptions, type ColorMode, type FolderProgress, type FolderResult,
} from './style/transfer.js';

// Networks and the graph builder they are written on.
export {
  buildTransformer, transformerParamShapes, initTransformerParams,
  LENGSTROM, PYTORCH_EXAMPLES, COMPACT, ARCHITECTURES,
  type TransformerConfig, type ArchitectureName, type BuiltTransformer,
} from './nets/transformer.js';
export { Graph, Value, F, ops, toOnnxBytes, toOnnxModel, OPSET, type Tensor, type Shape, type Dim, type OpDef, type OnnxExportOptions } from './graph/index.js';

// Weights and the model store.
export { importModel, listModels, removeModel, exportModel, resolveModel, storeDir, type StoredModel, type ImportOptions, type ResolvedModel } from './weights/store.js';
export { readCheckpointDump } from './weights/checkpoint-dump.js';
export { readLengstromCheckpoint } from './weights/lengstrom.js';

// Runtime.
export { loadModel, clearModelCache, availableExecutionProviders, EXECUTION_PROVIDERS, type RuntimeOptions, type ExecutionProvider, type Model } from './runtime/index.js';

// Images and video.
export type { RgbImage } from './image/types.js';
export { readImage, writeImage, imageSize } from './image/codec.js';
export { preserveLuminance, matchHistograms, matchColorStatistics, blendImages } from './image/color.js';
export { processVideo, probeVideo, decodeFrames, createEncoder, type VideoInfo, type VideoProgress } from './video/index.js';

// Errors.
export { FileError, AbortError } from './util/errors.js';
