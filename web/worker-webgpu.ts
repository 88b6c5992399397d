/** The WebGPU backend's worker: onnxruntime-web's build with the WebGPU execution provider. */
import * as ort from 'onnxruntime-web';
import { serveInference } from './worker.js';

serveInference(ort);
