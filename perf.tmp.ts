import { readFileSync } from 'node:fs';
import { loadModel } from './src/runtime/session.js';
const bytes = readFileSync(process.argv[2] ?? '/tmp/scratch/la_muse.onnx');
const model = await loadModel(new Uint8Array(bytes), { threads: 2 });
for (const [w, h] of [[256, 256], [640, 480]]) {
  const data = new Float32Array(3 * w * h).map(() => Math.random() * 255);
  const times = [];
  for (let r = 0; r < 8; r++) { const t0 = performance.now(); await model.run({ image: { data, dims: [1, 3, h, w] } }); times.push(performance.now() - t0); }
  times.sort((a, b) => a - b);
  console.log(`${w}x${h} best ${times[0].toFixed(1)} median ${times[4].toFixed(1)} ms`);
}
