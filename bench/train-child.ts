// Child process of bench/train.ts, so each measurement's peak RSS is its own. Prints one JSON line.
//   step <architecture> <vgg> <photos> <style image> <threads> <warmup> <steps>:
//     trainTransformer's own loop for warmup + steps steps; per-step times, data waits, first loss terms
//   transformer <architecture> <threads> <runs>: the network's forward pass, forward + backward
//     (every parameter's gradient), and Adam's update of that many parameters
//   vgg <vgg> <threads> <runs>: VGG19 forward to relu5_1 (on the output), to relu4_2 (on the
//     content), and forward + input gradient from relu5_1
// The pieces are separate graphs from the same builders as the training graph.
import { F, Graph, grad, toOnnxBytes, type Value } from '../src/graph/index.js';
import { buildTransformerInto, initTransformerParams, resolveArchitecture, transformerParamShapes } from '../src/nets/transformer.js';
import { buildVgg } from '../src/nets/vgg.js';
import { readImage } from '../src/image/codec.js';
import { withModel, type RunTensor } from '../src/runtime/index.js';
import { Adam } from '../src/style/optim/adam.js';
import { listPhotos } from '../src/style/train-data.js';
import { TRAIN_CONTENT_LAYERS, TRAIN_DEFAULTS, TRAIN_STYLE_LAYERS, trainTransformer, type TrainProgress } from '../src/style/train.js';
import { loadVggWeights } from '../src/weights/vgg-weights.js';
import { peakRssMiB, time } from './util.js';

const BATCH = TRAIN_DEFAULTS.batch;
const SIZE = TRAIN_DEFAULTS.size;
const [mode, ...args] = process.argv.slice(2);
const deterministic = (n: number, seed: number): Float32Array => {
  const data = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return data;
};

const input = (shape: number[], seed: number): RunTensor => ({ data: deterministic(shape.reduce((a, b) => a * b, 1), seed).map((v) => 127.5 + 200 * v), dims: shape });
const image = [BATCH, 3, SIZE, SIZE];
/** A loss linear in `y` along a fixed random direction: its backward pass is the same work as the real loss's. */
const linearLoss = (y: Value): Value => F.reduceSum(F.mul(y, y.graph.input('direction', y.shape as number[])));
const measure = async (graph: Graph, feeds: Record<string, RunTensor>, threads: number, runs: number, label: string): Promise<number> =>
  withModel(toOnnxBytes(graph), { threads }, label, async (model) => (await time(() => model.run(feeds), runs, 1)).medianMs);

if (mode === 'step') {
  const [architecture, vggPath, photosDir, stylePath] = args;
  const [threads, warmup, steps] = args.slice(4).map(Number);
  const progress: TrainProgress[] = [];
  const t0 = performance.now();
  await trainTransformer({
    architecture: { name: architecture, config: resolveArchitecture(architecture).config }, photos: await listPhotos(photosDir),
    styles: [{ image: (await readImage(stylePath)).image, name: stylePath }], vgg: await loadVggWeights(vggPath, { depth: 19, lastTap: 'relu5_1' }),
    steps: warmup + steps, runtime: { threads }, onProgress: (p) => progress.push(p),
  });
  const measured = progress.slice(warmup);
  console.log(JSON.stringify({
    stepMs: measured.map((p) => p.stepMs), dataWaitMs: measured.map((p) => p.dataWaitMs),
    warmupMs: progress.slice(0, warmup).map((p) => p.stepMs),
    firstLoss: progress[0].loss, firstTerms: progress[0].terms,
    seconds: (performance.now() - t0) / 1000, maxRssMiB: peakRssMiB(),
  }));
} else if (mode === 'transformer') {
  const [architecture] = args;
  const [threads, runs] = args.slice(1).map(Number);
  const { config } = resolveArchitecture(architecture);
  const params = initTransformerParams(config, 1);
  const feeds = { content: input(image, 1), ...Object.fromEntries([...params].map(([name, t]) => [name, { data: t.data, dims: t.shape }])) };
  const network = (backward: boolean): Graph => {
    const graph = new Graph();
    const built = buildTransformerInto(graph, graph.input('content', image), config, 'inputs', { clip: false });
    if (!backward) {
      graph.output(built.output, 'y');
      return graph;
    }
    const names = [...transformerParamShapes(config).keys()];
    grad(linearLoss(built.output), names.map((n) => built.params.get(n)!)).forEach((g, i) => graph.output(g, `grad.${names[i]}`));
    return graph;
  };
  const forwardMs = await measure(network(false), feeds, threads, runs, 'transformer forward');
  const bothMs = await measure(network(true), { ...feeds, direction: input(image, 2) }, threads, runs, 'transformer forward + backward');

  // Adam's update alone: the objective hands back a fixed gradient, so only the moment and parameter loops run.
  let total = 0;
  for (const t of params.values()) total += t.data.length;
  const gradient = deterministic(total, 4);
  const adam = new Adam(() => Promise.resolve({ loss: 0, grad: gradient }), new Float32Array(total), { learningRate: TRAIN_DEFAULTS.learningRate });
  const adamMs = (await time(() => adam.step(), 9, 2)).medianMs;
  console.log(JSON.stringify({ forwardMs, bothMs, adamMs, parameters: total, maxRssMiB: peakRssMiB() }));
} else if (mode === 'vgg') {
  const [vggPath] = args;
  const [threads, runs] = args.slice(1).map(Number);
  const vgg = await loadVggWeights(vggPath, { depth: 19, lastTap: 'relu5_1' });
  const network = (deepest: string, backward: boolean): Graph => {
    const graph = new Graph();
    const x = graph.input('x', image);
    const feature = buildVgg(graph, x, vgg.params, { depth: 19, pooling: 'max', preprocessing: vgg.preprocessing, taps: [deepest] }).get(deepest)!;
    if (backward) graph.output(grad(linearLoss(feature), [x])[0], 'grad.x');
    else graph.output(feature, deepest);
    return graph;
  };
  const deepest = TRAIN_STYLE_LAYERS.at(-1)!;
  const x = input(image, 1);
  const outputMs = await measure(network(deepest, false), { x }, threads, runs, 'VGG forward');
  const bothMs = await measure(network(deepest, true), { x, direction: input([BATCH, 512, SIZE / 16, SIZE / 16], 3) }, threads, runs, 'VGG input gradient');
  const contentMs = await measure(network(TRAIN_CONTENT_LAYERS[0], false), { x }, threads, runs, 'VGG forward to the content layer');
  console.log(JSON.stringify({ outputMs, bothMs, contentMs, maxRssMiB: peakRssMiB() }));
} else {
  throw new Error(`train-child: unknown mode '${mode}'`);
}
