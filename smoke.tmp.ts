import sharp from 'sharp';
import { readLengstromCheckpoint } from '/work/main/src/weights/lengstrom.ts';
import { buildTransformer, LENGSTROM } from '/work/main/src/nets/transformer.ts';
import { toOnnxBytes } from '/work/main/src/graph/onnx.ts';
import { loadModel } from '/work/main/src/runtime/session.ts';
import { writeFileSync } from 'node:fs';
const params = await readLengstromCheckpoint('/work/shared/data/models/fast-style/la_muse');
const { graph } = buildTransformer(LENGSTROM, params);
const bytes = toOnnxBytes(graph, { metadata: { name: 'la_muse' } });
writeFileSync('/tmp/scratch/la_muse.onnx', bytes);
console.log('onnx bytes', bytes.length);
const model = await loadModel(bytes, { threads: 2 });
for (const [w, h] of [[256, 256], [640, 480]]) {
  const { data, info } = await sharp('/work/shared/data/images/content/tubingen.jpg').resize(w, h, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const planar = new Float32Array(3 * w * h);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) planar[c * w * h + i] = data[i * 3 + c];
  let out;
  const times = [];
  for (let r = 0; r < 6; r++) { const t0 = performance.now(); out = await model.run({ image: { data: planar, dims: [1, 3, h, w] } }); times.push(performance.now() - t0); }
  console.log(w, h, out!.stylized.dims, times.map((t) => t.toFixed(0)).join(' '));
  const o = out!.stylized.data; const hwc = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) hwc[i * 3 + c] = Math.round(o[c * w * h + i]);
  await sharp(hwc, { raw: { width: w, height: h, channels: 3 } }).png().toFile(`/tmp/scratch/out_${w}.png`);
}
