/**
 * `npm run bench -- --only inference`: every style network pastiche can reach, side by side in one
 * run, at 256² and 640x480, batch 1, fp32 and int8 (quantizeModel, calibrated on 6 photos/train
 * photos; PSNR against fp32 on a photos/val photo at that size):
 *  - the built-in styles and the store's float models (`pastiche models list`; the int8 ones are the rows' int8 columns),
 *    the shared lengstrom checkpoints la_muse and wave (the other four are the same network) and the
 *    REALTIME preset (random weights);
 *  - ms through Model.run (the network alone) and through stylizeImage with its defaults (what
 *    `pastiche stylize` does per image or frame: margin, padding to a multiple of 4, clamping);
 *  - PyTorch on the CPU (Debian's python3-torch) running the quality network (bench/inference-peer.py);
 *  - real-time candidates at 640x480 (bench/inference-candidates.ts);
 *  - the lengstrom network against its plain-ONNX export and TF.js-wasm (bench/transformer.ts).
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toOnnxBytes } from '../src/graph/index.js';
import { readImage } from '../src/image/codec.js';
import { reflectPadTo } from '../src/image/pad.js';
import { resizeImage } from '../src/image/resize.js';
import type { RgbImage } from '../src/image/types.js';
import { buildTransformer, initTransformerParams, REALTIME } from '../src/nets/transformer.js';
import { clearModelCache, loadModel } from '../src/runtime/index.js';
import type { StyleModel } from '../src/style/model.js';
import { psnr } from '../src/style/quantize-stored.js';
import { stylizeImage } from '../src/style/transfer.js';
import { encodeOnnx } from '../src/weights/onnx-file.js';
import { quantizeModel } from '../src/weights/quantize.js';
import { listModels, META, modelFromSource } from '../src/weights/store.js';
import { benchCandidates } from './inference-candidates.js';
import { benchTransformer } from './transformer.js';
import { torchPython } from './train.js';
import { table, time } from './util.js';

const SIZES: [number, number][] = [[256, 256], [640, 480]];
const RUNS = 7;
const CHECKPOINTS = ['la_muse', 'wave'];
const peer = fileURLToPath(new URL('./inference-peer.py', import.meta.url));

interface Network { readonly name: string; readonly kind: string; readonly fp32: Uint8Array; readonly int8?: Uint8Array }
interface Row { network: string; kind: string; size: string; run: [number, number]; user: [number, number]; db: number }

const fpsOf = (ms: number): string => (1000 / ms).toFixed(1);

/** Every float network: the store's, the shared checkpoints, the REALTIME preset. */
async function networks(dataDir: string): Promise<Network[]> {
  const found: Network[] = [];
  const stored = await listModels();
  for (const m of stored.filter((s) => s.precision === 'fp32' && s.architecture !== 'unreadable')) {
    // An int8 copy already in the store (`models quantize`) is timed as this model's int8.
    const int8 = stored.find((s) => s.precision === 'int8' && s.source === m.name);
    // Through the model door: built-ins keep float16 weights on disk, which it unpacks to float32.
    const fp32 = encodeOnnx((await modelFromSource(m.path)).model);
    found.push({ name: `${m.builtin ? 'built-in' : 'store'}: ${m.name}`, kind: m.architecture, fp32, int8: int8 ? await readFile(int8.path) : undefined });
  }
  const checkpoints = join(dataDir, 'models/fast-style');
  // The other checkpoints (scream, udnie, rain_princess, wreck) are the same network with other
  // weights: same timings, so two stand for all six.
  for (const name of CHECKPOINTS) {
    found.push({ name: `fast-style/${name}`, kind: 'lengstrom', fp32: encodeOnnx((await modelFromSource(join(checkpoints, name))).model) });
  }
  found.push({ name: 'REALTIME preset (random weights)', kind: 'realtime', fp32: toOnnxBytes(buildTransformer(REALTIME, initTransformerParams(REALTIME, 1)).graph) });
  return found;
}

async function photos(dir: string, count: number, maxSide: number): Promise<RgbImage[]> {
  const files = (await readdir(dir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, count);
  return Promise.all(files.map(async (f) => reflectPadTo((await readImage(join(dir, f), { maxSide })).image, 4).image));
}

/** A StyleModel as `stylize` would open it: its architecture decides the default margin (0 for pastiche's reflection-padded networks, 48 otherwise). */
function styleModel(net: Network, session: StyleModel['session'], bytes: Uint8Array, threads: number): StyleModel {
  return { label: net.name, session, input: 'image', output: 'stylized', metadata: { [META.architecture]: net.kind }, bytes, runtime: { threads } };
}

/** One network at every size: Model.run and stylizeImage, fp32 and int8, and int8's PSNR on a photo. */
async function measure(net: Network, calibration: RgbImage[], photo: RgbImage, threads: number): Promise<Row[]> {
  const int8 = net.int8 ?? await quantizeModel(net.fp32, calibration, { threads, label: net.name });
  const models = await Promise.all([net.fp32, int8].map(async (bytes, i) => {
    const session = await loadModel(bytes, { threads }, `${net.name} ${i ? 'int8' : 'fp32'}`);
    return { session, style: styleModel(net, session, bytes, threads) };
  }));
  const rows: Row[] = [];
  for (const [w, h] of SIZES) {
    const image = await resizeImage(photo, w, h);
    const feeds = { image: { data: image.data, dims: [1, 3, h, w] } };
    const run = [0, 0] as [number, number];
    const user = [0, 0] as [number, number];
    const outputs: Float32Array[] = [];
    for (const [i, { session, style }] of models.entries()) {
      run[i] = (await time(() => session.run(feeds), RUNS, 2)).medianMs;
      user[i] = (await time(() => stylizeImage(style, image), RUNS, 1)).medianMs;
      outputs.push((await session.run(feeds)).stylized.data);
    }
    rows.push({ network: net.name + (net.int8 ? ' (int8 from the store)' : ''), kind: net.kind, size: `${w}x${h}`, run, user, db: psnr(outputs[0], outputs[1]) });
  }
  await clearModelCache();
  return rows;
}

/** PyTorch on the quality network at every size, or why not. */
function torchPeer(threads: number): { version: string; ms: Record<string, number> } | { skip: string } {
  const torch = torchPython();
  if (!('python' in torch)) return torch;
  const out = execFileSync(torch.python, [peer, String(threads), '1', '3', ...SIZES.map(([w, h]) => `${w}x${h}`)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as { torch: string; ms: Record<string, number[]> };
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { version: result.torch, ms: Object.fromEntries(Object.entries(result.ms).map(([k, v]) => [k, median(v)])) };
}

export async function benchInference(dataDir: string, threads: number): Promise<void> {
  const loadBefore = loadavg()[0];
  const calibration = await photos(join(dataDir, 'photos/train'), 6, 384);
  const [photo] = await photos(join(dataDir, 'photos/val'), 1, 1024);
  const rows: Row[] = [];
  for (const net of await networks(dataDir)) rows.push(...(await measure(net, calibration, photo, threads)));
  const torch = torchPeer(threads);
  const loadAfter = loadavg()[0];

  console.log(`\n## Inference: every network, fp32 and int8, batch 1, ${threads} threads\n`);
  console.log(`Median of ${RUNS} runs. run: Model.run, the network alone. stylize: stylizeImage with its defaults (the model's margin: 48 px reflected for imported networks, none for pastiche's reflection-padded ones; padding to a multiple of 4, clamping), what \`pastiche stylize\` does per image or video frame.`);
  console.log('int8: quantizeModel (QDQ → QLinearConv, uint8 activations per tensor, int8 weights per channel, last conv float) calibrated on the first 6 photos/train photos (≤ 384 px); PSNR: int8 vs fp32 output on the first photos/val photo at that size.');
  console.log(`Load average (1 min) before: ${loadBefore.toFixed(1)}, after: ${loadAfter.toFixed(1)} on ${cpus().length} logical cores (other work inflates every figure).\n`);
  console.log(table(['network', 'kind', 'size', 'fp32 run ms', 'fp32 fps', 'int8 run ms', 'int8 fps', 'int8 speed-up', 'fp32 stylize ms', 'int8 stylize ms', 'int8 stylize fps', 'int8 PSNR dB'],
    rows.map((r) => [r.network, r.kind, r.size, r.run[0].toFixed(1), fpsOf(r.run[0]), r.run[1].toFixed(1), fpsOf(r.run[1]), `${(r.run[0] / r.run[1]).toFixed(2)}x`,
      r.user[0].toFixed(1), r.user[1].toFixed(1), fpsOf(r.user[1]), r.db.toFixed(1)])));

  console.log(`\n### PyTorch CPU peer: the quality network (lengstrom, random weights), ${threads} threads\n`);
  if ('skip' in torch) {
    console.log(`PyTorch peer skipped: ${torch.skip}.`);
  } else {
    const quality = rows.filter((r) => r.network === 'fast-style/la_muse');
    console.log(`PyTorch ${torch.version}, torch.set_num_threads(${threads}), inference_mode, median of 3 runs after 1.\n`);
    console.log(table(['size', 'PyTorch ms', 'PyTorch fps', 'pastiche fp32 run ms (la_muse)', 'pastiche int8 run ms', 'fp32 speed-up', 'int8 speed-up'],
      SIZES.map(([w, h]) => {
        const size = `${w}x${h}`;
        const ms = torch.ms[size];
        const own = quality.find((r) => r.size === size);
        return [size, ms.toFixed(0), fpsOf(ms), own?.run[0].toFixed(1) ?? '—', own?.run[1].toFixed(1) ?? '—',
          own ? `${(ms / own.run[0]).toFixed(1)}x` : '—', own ? `${(ms / own.run[1]).toFixed(1)}x` : '—'];
      })));
  }
  await benchCandidates(threads);
  await benchTransformer(dataDir, threads);
}
