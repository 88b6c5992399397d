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
  stylizeImage, stylizeFile, stylizeFolder, stylizeVideo, checkStylizeOptions, estimateStylizeMemory,
  COLOR_MODES, DEFAULT_MARGIN, DEFAULT_TILE_OVERLAP, AUTO_TILE_PIXELS, defaultMargin,
  type StylizeOptions, type ColorMode, type FolderProgress, type FolderResult,
} from './style/transfer.js';
export { realtimeModelName, isRealtimeArchitecture } from './style/realtime.js';
export { stylizeLive, LIVE_DEFAULT_SIZE, type StylizeLiveOptions } from './style/live.js';
export { quantizeStoredModel, QUANTIZE_DEFAULTS, type QuantizeStoredOptions, type QuantizeStoredResult } from './style/quantize-stored.js';

// Gatys optimisation: the image itself is optimised against VGG features and Gram matrices.
export {
  optimizeImage, DEFAULTS as OPTIMIZE_DEFAULTS, DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS,
  type OptimizeOptions, type OptimizeProgress, type OptimizeResult, type StyleInput, type LossTerms,
} from './style/optimize.js';
export { gramMatrix, meanSquaredError, totalVariation, meanTotalVariation } from './style/losses.js';

// Training a transformation network (Johnson et al.), or distilling one into a smaller student.
export {
  trainTransformer, estimateTrainingBytes, TRAIN_DEFAULTS, TRAIN_CONTENT_LAYERS, TRAIN_STYLE_LAYERS,
  type TrainOptions, type TrainProgress, type TrainResult, type TrainStyle, type TrainTeacher,
} from './style/train.js';
export { trainingModel, type TrainingGraphSpec, type TrainingLoss, type PerceptualLoss, type DistillLoss } from './style/train-graph.js';
export { STABILITY_DEFAULTS, type StabilityLoss } from './style/stability.js';
export { saveCheckpoint, loadCheckpoint, type TrainState, type TrainRecord, type LossEntry } from './style/train-checkpoint.js';
export { listPhotos, PhotoLoader, type DataOrder, type PhotoBatch } from './style/train-data.js';
export { loadStartingParams } from './style/train-init.js';
export { Lbfgs, type LbfgsOptions } from './style/optim/lbfgs.js';
export { Adam, type AdamOptions } from './style/optim/adam.js';

// Networks and the graph builder they are written on.
export {
  buildTransformer, buildTransformerInto, resolveArchitecture, transformerParamShapes, initTransformerParams, transformerMacs,
  LENGSTROM, PYTORCH_EXAMPLES, COMPACT, REALTIME, ARCHITECTURES,
  type TransformerConfig, type ArchitectureName, type BuiltTransformer,
} from './nets/transformer.js';
export { buildVgg, vggLayerNames, vggParamShapes, type VggDepth, type VggOptions, type VggPreprocessing } from './nets/vgg.js';
export { Graph, Value, F, ops, grad, toOnnxBytes, toOnnxModel, OPSET, type Tensor, type Shape, type Dim, type OpDef, type OnnxExportOptions } from './graph/index.js';

// Weights and the model store.
export { importModel, saveModel, listModels, removeModel, exportModel, resolveModel, storeDir, trainingDir, type StoredModel, type ImportOptions, type SaveOptions, type ResolvedModel } from './weights/store.js';
export { readCheckpointDump } from './weights/checkpoint-dump.js';
export { readLengstromCheckpoint } from './weights/lengstrom.js';
export { loadVggWeights, type VggWeights, type LoadVggOptions } from './weights/vgg-weights.js';
export { resolveVggWeights, download, type ResolveVggOptions, type DownloadOptions } from './weights/download.js';
export { ZOO, zooEntry, type ZooEntry } from './weights/zoo.js';
export { readSafetensors, writeSafetensors } from './weights/safetensors.js';
export { quantizeModel, QUANTIZE_META, type QuantizeOptions } from './weights/quantize.js';

// Runtime.
export { loadModel, clearModelCache, availableExecutionProviders, defaultThreads, EXECUTION_PROVIDERS, type RuntimeOptions, type ExecutionProvider, type Model } from './runtime/index.js';

// Images and video.
export type { RgbImage } from './image/types.js';
export { readImage, writeImage, imageSize, DEFAULT_MAX_MEMORY, type ReadImageOptions, type MemoryPlan } from './image/codec.js';
export { resolveImageOutput, checkImageOutput } from './image/output.js';
export { preserveLuminance, matchHistograms, matchColorStatistics, blendImages } from './image/color.js';
export { processVideo, probeVideo, decodeFrames, createEncoder, checkVideoOutput, type VideoInfo, type VideoProgress } from './video/index.js';
export { createTemporalBlend, type TemporalBlend, type TemporalBlendOptions } from './video/temporal.js';

// Flicker: optical flow and the warping error (Lai et al. 2018).
export { readFlo, warpBackward, occlusionMask, type Flow } from './video/flow.js';
export { estimateFlow, type FlowOptions } from './video/optical-flow.js';
export { warpingError, syntheticMotionClip, readSintelPair, type SyntheticMotionOptions } from './video/warping-error.js';

// The HTTP server behind `pastiche serve`.
export { startServer, type ServeOptions, type PasticheServer } from './server/app.js';

// Errors.
export { FileError, AbortError } from './util/errors.js';
