import * as ort from 'onnxruntime-node';
const [file, w, h] = [process.argv[2], +(process.argv[3] ?? 256), +(process.argv[4] ?? 256)];
const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: '/tmp/scratch/prof', executionMode: 'sequential' });
const data = new Float32Array(3 * w * h).map(() => Math.random() * 255);
for (let r = 0; r < 6; r++) { const t0 = performance.now(); await s.run({ image: new ort.Tensor('float32', data, [1, 3, h, w]) }); console.log((performance.now() - t0).toFixed(1)); }
