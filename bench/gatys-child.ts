// Child process of bench/gatys.ts, so each measurement's peak RSS is its own.
//   evaluate <vgg> <size> <threads>: build the loss model and evaluate it once
//   run <vgg> <data> <scales> <iterations> <threads>: optimise tubingen + starry_night
import { join } from 'node:path';
import { loadModel } from '../src/runtime/index.js';
import { lossModel } from '../src/style/gatys-graphs.js';
import { DEFAULT_STYLE_LAYERS, DEFAULTS, LARGE_IMAGE_PIXELS, optimizeImage } from '../src/style/optimize.js';
import { loadVggWeights } from '../src/weights/vgg-weights.js';
import { readImage } from '../src/image/codec.js';
import { peakRssMiB, syntheticImage } from './util.js';

const [mode, vggPath, ...rest] = process.argv.slice(2);
const vgg = await loadVggWeights(vggPath, { depth: 19 });
const t0 = performance.now();
if (mode === 'evaluate') {
  const [size, threads, runs = 1] = rest.map(Number);
  const layers = { content: ['relu4_2'], style: DEFAULT_STYLE_LAYERS, styleLayerWeights: DEFAULT_STYLE_LAYERS.map(() => 1), pooling: 'max' as const };
  const model = await loadModel(lossModel({ vgg, layers, weights: { content: DEFAULTS.contentWeight, style: DEFAULTS.styleWeight, tv: DEFAULTS.tvWeight }, width: size, height: size, hasContent: true, styles: [{ weight: 1 }] }), { threads, memoryPattern: size * size < LARGE_IMAGE_PIXELS });
  const c = { relu1_1: 64, relu2_1: 128, relu3_1: 256, relu4_1: 512, relu5_1: 512 } as Record<string, number>;
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = { image: { data: syntheticImage(size, size), dims: [1, 3, size, size] } };
  feeds['content.relu4_2'] = { data: new Float32Array(512 * (size / 8) ** 2), dims: [1, 512, size / 8, size / 8] };
  for (const l of DEFAULT_STYLE_LAYERS) feeds[`style0.${l}`] = { data: new Float32Array(c[l] * c[l]), dims: [c[l], c[l]] };
  for (let i = 0; i < runs; i++) await model.run(feeds);
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, maxRssMiB: peakRssMiB() }));
} else {
  const [dataDir, scales, iterations, threads] = rest;
  const content = (await readImage(join(dataDir, 'images/content/tubingen.jpg'))).image;
  const style = (await readImage(join(dataDir, 'images/style/starry_night.jpg'))).image;
  const r = await optimizeImage({
    content, styles: [{ image: style }], vgg, scales: scales.split(',').map(Number), iterations: Number(iterations), runtime: { threads: Number(threads) },
  });
  console.log(JSON.stringify({
    seconds: (performance.now() - t0) / 1000, evaluations: r.evaluations, maxRssMiB: peakRssMiB(),
    styleFirst: r.history[0].first.style, styleLast: r.history.at(-1)!.last.style,
  }));
}
