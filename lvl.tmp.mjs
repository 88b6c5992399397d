import * as ort from 'onnxruntime-node';
for (const level of ['extended', 'all']) {
  const s = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: level, executionMode: 'sequential' });
  const [w, h] = [256, 256];
  const data = new Float32Array(3 * w * h).map(() => Math.random() * 255);
  const t = [];
  for (let r = 0; r < 8; r++) { const t0 = performance.now(); await s.run({ image: new ort.Tensor('float32', data, [1, 3, h, w]) }); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b); console.log(level, t.slice(0, 4).map((x) => x.toFixed(1)).join(' '));
}
