/** The WASM backend's worker: onnxruntime-web's plain WASM build (no WebGPU code, half the wasm). */
import * as ort from 'onnxruntime-web/wasm';
import { serveInference } from './worker.js';

serveInference(ort);
