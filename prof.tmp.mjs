import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
const s = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: '/tmp/scratch/prof', executionMode: 'sequential' });
const [w, h] = [256, 256];
const data = new Float32Array(3 * w * h).map(() => Math.random() * 255);
for (let r = 0; r < 5; r++) { const t0 = performance.now(); await s.run({ image: new ort.Tensor('float32', data, [1, 3, h, w]) }); console.log((performance.now() - t0).toFixed(1)); }
const f = s.endProfiling ? s.endProfiling() : null;
console.log(f);
