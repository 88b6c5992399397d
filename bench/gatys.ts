/**
 * Gatys optimisation: one loss + gradient evaluation of VGG19 (style relu1_1…relu5_1, content
 * relu4_2) at 256² and 512² against the forward pass alone and against TF.js-wasm computing the
 * same loss and gradient in this process; peak memory per size in child processes; and two whole
 * runs (256 px, 200 L-BFGS iterations; 300 iterations coarse-to-fine to 512²).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/runtime/index.js';
import { lossModel, targetsModel, type LossLayers } from '../src/style/gatys-graphs.js';
import { DEFAULT_STYLE_LAYERS, DEFAULTS } from '../src/style/optimize.js';
import { loadVggWeights } from '../src/weights/vgg-weights.js';
import { tf } from '../test/helpers/tf-reference.js';
import { STYLE_TAPS, tfGatysLoss } from '../test/helpers/tf-vgg.js';
import { syntheticImage, table, time, useTfWasm } from './util.js';

const LAYERS: LossLayers = { content: ['relu4_2'], style: DEFAULT_STYLE_LAYERS, styleLayerWeights: DEFAULT_STYLE_LAYERS.map(() => 1), pooling: 'max' };
const child = fileURLToPath(new URL('./gatys-child.ts', import.meta.url));
const DEFAULTS_WEIGHTS = { content: DEFAULTS.contentWeight, style: DEFAULTS.styleWeight, tv: DEFAULTS.tvWeight };

function runChild(args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['--import', 'tsx', child, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

export async function benchGatys(dataDir: string, threads: number): Promise<void> {
  const vggPath = join(dataDir, 'models/vgg19-imagenet-tfjs-uint8');
  const vgg = await loadVggWeights(vggPath, { depth: 19 });
  const rows: (string | number)[][] = [];
  let tfMs = Number.NaN;
  let peerBuild = '';
  for (const size of [256, 512]) {
    const loss = await loadModel(lossModel({ vgg, layers: LAYERS, weights: DEFAULTS_WEIGHTS, width: size, height: size, hasContent: true, styles: [{ weight: 1 }] }), { threads });
    const forward = await loadModel(targetsModel(vgg, LAYERS, size, size), { threads });
    const image = { data: syntheticImage(size, size), dims: [1, 3, size, size] };
    const targets = await forward.run({ image });
    const feeds = { image, 'content.relu4_2': targets['feat.relu4_2'], ...Object.fromEntries(DEFAULT_STYLE_LAYERS.map((l) => [`style0.${l}`, targets[`gram.${l}`]])) };
    const both = await time(() => loss.run(feeds), 5, 1);
    const fwd = await time(() => forward.run({ image }), 5, 1);
    if (size === 256) {
      peerBuild = await useTfWasm(threads);
      const tensor = (t: { data: Float32Array; dims: readonly number[] }) => ({ data: t.data, shape: [...t.dims] });
      const tfTargets = { content: tensor(targets['feat.relu4_2']), grams: new Map(STYLE_TAPS.map((l) => [l, tensor(targets[`gram.${l}`])])) };
      const peer = await time(() => tfGatysLoss({ data: image.data, shape: image.dims }, vgg.params, 'max', tfTargets, { content: 5, style: [100, 100, 100, 100, 100] }), 2, 1);
      tfMs = peer.medianMs;
      await tf.setBackend('cpu');
    }
    rows.push([`${size}x${size}`, (both.medianMs / 1000).toFixed(3), (fwd.medianMs / 1000).toFixed(3),
      ((both.medianMs - fwd.medianMs) / fwd.medianMs).toFixed(2) + 'x',
      size === 256 ? (tfMs / 1000).toFixed(2) : '—', size === 256 ? (tfMs / both.medianMs).toFixed(1) + 'x' : '—']);
  }
  console.log(`\n## Gatys: one VGG19 loss + gradient evaluation (${threads} threads)\n`);
  console.log('PyTorch 1.13 CPU on this machine (issue #3): 4.44 s @256², 24.5 s @512².');
  console.log(`${peerBuild} · onnxruntime-node threads: ${threads}\n`);
  console.log(table(['size', 'loss+grad s (median)', 'forward s', 'backward / forward', 'TF.js-wasm loss+grad s', 'speed-up'], rows));

  const memory: (string | number)[][] = [];
  for (const size of [512, 1024, 2048]) {
    const r = runChild(['evaluate', vggPath, String(size), String(threads)]);
    memory.push([`${size}x${size}`, (r.seconds as number).toFixed(1), (r.maxRssMiB as number).toFixed(0)]);
  }
  console.log('\n## Gatys memory: build + one evaluation, fresh process each\n');
  console.log(table(['size', 'seconds', 'peak RSS MiB'], memory));

  const runs: (string | number)[][] = [];
  for (const [label, args] of [
    ['256 px, 200 L-BFGS iterations', ['run', vggPath, dataDir, '256', '200', String(threads)]],
    ['coarse-to-fine 256→512, 150 + 150 iterations', ['run', vggPath, dataDir, '256,512', '150', String(threads)]],
  ] as const) {
    const r = runChild([...args]);
    runs.push([label, (r.seconds as number).toFixed(0), r.evaluations as number, (r.styleFirst as number).toExponential(2), (r.styleLast as number).toExponential(2),
      ((r.styleFirst as number) / (r.styleLast as number)).toFixed(0) + 'x', (r.maxRssMiB as number).toFixed(0)]);
  }
  console.log('\n## Gatys end to end: tubingen + starry_night, defaults\n');
  console.log(table(['run', 'seconds', 'evaluations', 'style loss first', 'style loss last', 'reduction', 'peak RSS MiB'], runs));
}

