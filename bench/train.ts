/**
 * Training a transformation network (`pastiche train`): batch 4, 256², VGG19 perceptual loss with
 * the defaults (content relu4_2, style relu1_1…relu5_1), for pytorch-examples and compact.
 *  - the whole step through trainTransformer's own loop on real photos, in a child process each
 *    (median step, data wait, peak RSS);
 *  - where the time goes: the step's pieces as separate graphs from the same builders, with their
 *    convolution GFLOP and the GFLOPS they reach against the ~350 GFLOPS roofline (DESIGN.md);
 *  - PyTorch on the CPU (Debian's python3-torch, installed with apt-get when missing) running the
 *    same network, VGG weights, layers, losses and Adam from the same starting parameters, photos
 *    and style image (bench/train-peer.py): its first loss terms must match pastiche's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../src/graph/index.js';
import { readImage } from '../src/image/codec.js';
import { fitLongerSide, resizeImage } from '../src/image/resize.js';
import { initTransformerParams, resolveArchitecture, transformerMacs, transformerParamShapes, type TransformerConfig } from '../src/nets/transformer.js';
import { listPhotos, PhotoLoader } from '../src/style/train-data.js';
import { TRAIN_DEFAULTS } from '../src/style/train.js';
import { writeSafetensors } from '../src/weights/safetensors.js';
import { loadVggWeights } from '../src/weights/vgg-weights.js';
import { table } from './util.js';

const ARCHITECTURES = ['pytorch-examples', 'compact'] as const;
const BATCH = TRAIN_DEFAULTS.batch;
const SIZE = TRAIN_DEFAULTS.size;
const WARMUP = 2;
const STEPS = 5;
const PART_RUNS = 5;
const TORCH_WARMUP = 1;
const TORCH_STEPS = 3;
/** Peak fp32 convolution throughput on the 2-core Intel machine (DESIGN.md, "Measured facts"). */
const ROOFLINE_GFLOPS = 350;
const STYLE_IMAGE = 'images/style/starry_night.jpg';
const child = fileURLToPath(new URL('./train-child.ts', import.meta.url));
const peer = fileURLToPath(new URL('./train-peer.py', import.meta.url));

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lastJsonLine = <T>(out: string): T => JSON.parse(out.trim().split('\n').at(-1)!) as T;

function runChild<T>(args: (string | number)[]): T {
  return lastJsonLine<T>(execFileSync(process.execPath, ['--import', 'tsx', child, ...args.map(String)], { encoding: 'utf8', maxBuffer: 1 << 24 }));
}

/** 2·N·MACs of every convolution of the network at batch × size² (transformerMacs), and of conv1 alone. */
function transformerConvFlops(config: TransformerConfig, batch: number, size: number): { total: number; first: number } {
  const conv1 = transformerParamShapes(config).get('conv1.conv2d.weight')!;
  const side = size / (config.firstStride ?? 1);
  return { total: 2 * batch * transformerMacs(config, size, size), first: 2 * batch * side * side * conv1.reduce((a, b) => a * b, 1) };
}

/** VGG19 convolution FLOPs up to `lastConv` ('conv5_1', 'conv4_2'). */
function vggConvFlops(lastConv: string, batch: number, size: number): number {
  const blocks = [2, 2, 4, 4, 4];
  const widths = [64, 128, 256, 512, 512];
  let inC = 3;
  let total = 0;
  for (const [b, count] of blocks.entries()) {
    const s = size / 2 ** b;
    for (let i = 1; i <= count; i++) {
      total += 2 * batch * s * s * widths[b] * inC * 9;
      inC = widths[b];
      if (`conv${b + 1}_${i}` === lastConv) return total;
    }
  }
  return total;
}

/** Gram matrices of the style layers: forward N·C²·HW multiply-adds per layer; autodiff's backward twice that. */
function gramFlops(batch: number, size: number): number {
  const layers = [[64, size], [128, size / 2], [256, size / 4], [512, size / 8], [512, size / 16]];
  return layers.reduce((sum, [c, s]) => sum + 2 * batch * c * c * s * s, 0) * 3;
}

/** A python3 that imports torch, installing Debian's python3-torch when there is none; or why not. */
export function torchPython(): { python: string; version: string } | { skip: string } {
  const probe = (python: string): string | null => {
    try {
      return execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  // Debian's package installs for the system interpreter, which a pyenv or venv python3 on PATH does not see.
  const candidates = ['/usr/bin/python3', 'python3'];
  for (const python of candidates) {
    const version = probe(python);
    if (version) return { python, version };
  }
  if (process.getuid?.() !== 0) return { skip: 'PyTorch is not installed and installing python3-torch with apt-get needs root' };
  console.log('\nPyTorch peer: no python3 imports torch; installing Debian\'s python3-torch (apt-get update; apt-get install -y python3-torch)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', 'python3-torch']]) {
    try {
      execFileSync('apt-get', args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, timeout: 20 * 60_000 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      const why = (e.stderr ?? '').trim().split('\n').at(-1) || e.message.split('\n')[0];
      return { skip: `apt-get ${args.join(' ')} failed: ${why}` };
    }
  }
  const version = probe('/usr/bin/python3');
  return version ? { python: '/usr/bin/python3', version } : { skip: 'python3-torch installed, but /usr/bin/python3 still cannot import torch' };
}

/** The peer's inputs: VGG weights, each architecture's starting parameters, the first photo batch, the style image. */
async function writePeerInputs(path: string, dataDir: string, vggPath: string): Promise<void> {
  const tensors = new Map<string, Tensor>();
  const vgg = await loadVggWeights(vggPath, { depth: 19, lastTap: 'relu5_1' });
  for (const [name, t] of vgg.params) tensors.set(`vgg.${name}`, t);
  for (const architecture of ARCHITECTURES) {
    for (const [name, t] of initTransformerParams(resolveArchitecture(architecture).config, TRAIN_DEFAULTS.seed)) tensors.set(`${architecture}.${name}`, t);
  }
  // trainTransformer's first batch: same files, order and seed.
  const loader = new PhotoLoader(await listPhotos(join(dataDir, 'photos/train')), { batch: BATCH, size: SIZE, seed: TRAIN_DEFAULTS.seed });
  try {
    tensors.set('content', { data: (await loader.next()).data, shape: [BATCH, 3, SIZE, SIZE] });
  } finally {
    loader.close();
  }
  // The style image as trainTransformer resizes it for its Gram targets.
  const style = (await readImage(join(dataDir, STYLE_IMAGE))).image;
  const { width, height } = fitLongerSide(style.width, style.height, Math.min(TRAIN_DEFAULTS.styleSize, Math.max(style.width, style.height)));
  const resized = width === style.width && height === style.height ? style : await resizeImage(style, width, height);
  tensors.set('style', { data: resized.data, shape: [1, 3, height, width] });
  await writeSafetensors(path, tensors);
}

/** What train-child.ts and train-peer.py print. */
interface StepResult { stepMs: number[]; dataWaitMs: number[]; warmupMs: number[]; firstTerms: Record<string, number>; firstLoss: number; maxRssMiB: number }
interface PeerResult extends StepResult { torch: string; threads: number; vgg: string }
interface TransformerParts { forwardMs: number; bothMs: number; adamMs: number; parameters: number }
interface VggParts { outputMs: number; bothMs: number; contentMs: number }

export async function benchTrain(dataDir: string, threads: number, options: { torchVgg16?: boolean } = {}): Promise<void> {
  const vggPath = join(dataDir, 'models/vgg19-imagenet-tfjs-uint8');
  const photos = join(dataDir, 'photos/train');
  const loadBefore = loadavg()[0];
  const steps = new Map<string, StepResult>();
  const parts = new Map<string, TransformerParts>();
  for (const architecture of ARCHITECTURES) {
    steps.set(architecture, runChild<StepResult>(['step', architecture, vggPath, photos, join(dataDir, STYLE_IMAGE), threads, WARMUP, STEPS]));
    parts.set(architecture, runChild<TransformerParts>(['transformer', architecture, threads, PART_RUNS]));
  }
  const vgg = runChild<VggParts>(['vgg', vggPath, threads, PART_RUNS]);

  const torch = torchPython();
  const peers = new Map<string, PeerResult>();
  let vgg16: PeerResult | undefined;
  if ('python' in torch) {
    const dir = await mkdtemp(join(tmpdir(), 'pastiche-bench-train-'));
    try {
      const inputs = join(dir, 'inputs.safetensors');
      await writePeerInputs(inputs, dataDir, vggPath);
      const runPeer = (architecture: string, steps: number, extra: string[] = []): PeerResult => lastJsonLine<PeerResult>(execFileSync(torch.python,
        [peer, inputs, architecture, String(threads), String(TORCH_WARMUP), String(steps), ...extra], { encoding: 'utf8', maxBuffer: 1 << 24 }));
      for (const architecture of ARCHITECTURES) peers.set(architecture, runPeer(architecture, TORCH_STEPS));
      if (options.torchVgg16) vgg16 = runPeer('pytorch-examples', 3, ['vgg16']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  console.log(`\n## Training: batch ${BATCH}, ${SIZE}x${SIZE}, VGG19 perceptual loss (content relu4_2 ×${TRAIN_DEFAULTS.contentWeight}, style relu1_1…relu5_1 ×${TRAIN_DEFAULTS.styleWeight}, TV ×${TRAIN_DEFAULTS.tvWeight}), Adam, ${threads} threads\n`);
  console.log(`pastiche: trainTransformer's loop on photos/train (${WARMUP} warm-up steps, median of ${STEPS}), fresh process per network.`);
  console.log('python' in torch
    ? `PyTorch ${torch.version} (${torch.python}), torch.set_num_threads(${threads}): the same network, VGG19 weights, layers, losses and Adam, same starting parameters, first photo batch (reused every step, no data loading) and style image; ${TORCH_WARMUP} warm-up step, median of ${TORCH_STEPS}.`
    : `PyTorch peer skipped: ${torch.skip}.`);
  console.log('Earlier PyTorch figure (DESIGN.md / issue): 9.3 s per step for pytorch-examples with VGG16 relu1_2…relu4_3 on this machine.');
  // pastiche and PyTorch run one after the other: other work on the machine skews their ratio.
  console.log(`Load average (1 min) before this section: ${loadBefore.toFixed(1)}, after it: ${loadavg()[0].toFixed(1)} (counting the bench's own ${threads} threads) on ${cpus().length} logical cores: other work inflates every figure.\n`);

  const rows = ARCHITECTURES.map((architecture) => {
    const own = steps.get(architecture)!;
    const ms = median(own.stepMs);
    const theirs = peers.get(architecture);
    const theirMs = theirs ? median(theirs.stepMs) : Number.NaN;
    return [architecture, (ms / 1000).toFixed(2), (BATCH / (ms / 1000)).toFixed(2), median(own.dataWaitMs).toFixed(0), parts.get(architecture)!.adamMs.toFixed(1),
      (own.maxRssMiB / 1024).toFixed(2), theirs ? (theirMs / 1000).toFixed(2) : '—', theirs ? (BATCH / (theirMs / 1000)).toFixed(2) : '—',
      theirs ? (theirMs / ms).toFixed(2) + 'x' : '—', theirs ? (theirs.maxRssMiB / 1024).toFixed(2) : '—'];
  });
  console.log(table(['network', 's/step', 'images/s', 'data wait ms', 'Adam ms', 'peak RSS GiB', 'PyTorch s/step', 'PyTorch images/s', 'pastiche / PyTorch', 'PyTorch peak GiB'], rows));
  console.log('\nTarget (issue): pastiche ≥ 4x PyTorch\'s images/s for pytorch-examples; peak RSS ≤ 6 GiB.');
  if (vgg16) {
    console.log(`PyTorch, pytorch-examples with its own loss network (VGG16, content relu2_2, style relu1_2…relu4_3; random weights, timing only): ${(median(vgg16.stepMs) / 1000).toFixed(2)} s/step (median of ${vgg16.stepMs.length}).`);
  }

  if (peers.size > 0) {
    console.log('\nFirst step\'s weighted loss terms (same parameters, photos and style: the two must agree):\n');
    const termRows = ARCHITECTURES.flatMap((architecture) => ['content', 'style', 'tv'].map((term) => {
      const a = steps.get(architecture)!.firstTerms[term];
      const b = peers.get(architecture)!.firstTerms[term];
      return [architecture, term, a.toPrecision(6), b.toPrecision(6), (Math.abs(a - b) / Math.max(Math.abs(b), 1e-30)).toExponential(1)];
    }));
    console.log(table(['network', 'term', 'pastiche', 'PyTorch', 'relative difference'], termRows));
  }

  // Where the time goes: every row is a separate graph (or the loop's own figures for data and Adam).
  const vggOut = vggConvFlops('conv5_1', BATCH, SIZE);
  const vggContent = vggConvFlops('conv4_2', BATCH, SIZE);
  for (const architecture of ARCHITECTURES) {
    const { config } = resolveArchitecture(architecture);
    const own = steps.get(architecture)!;
    const part = parts.get(architecture)!;
    const stepMs = median(own.stepMs);
    const dataMs = median(own.dataWaitMs);
    const net = transformerConvFlops(config, BATCH, SIZE);
    // Backward: weight and input gradients (2x forward), less the first layer's input gradient (nothing needs it).
    const netBackward = 2 * net.total - net.first;
    const gram = gramFlops(BATCH, SIZE);
    const pieces: [string, number, number][] = [
      ['transformer forward', part.forwardMs, net.total],
      ['transformer backward (weights + inputs)', part.bothMs - part.forwardMs, netBackward],
      ['VGG forward on the output (to relu5_1)', vgg.outputMs, vggOut],
      ['VGG backward (input gradient)', vgg.bothMs - vgg.outputMs, vggOut],
      ['VGG forward on the content (to relu4_2)', vgg.contentMs, vggContent],
      ['Adam update', part.adamMs, 0],
      ['data wait', dataMs, 0],
    ];
    const accounted = pieces.reduce((s, [, ms]) => s + ms, 0);
    pieces.push(['rest: Gram + loss heads, copies, overhead', stepMs - accounted, gram]);
    const totalFlops = pieces.reduce((s, [, , f]) => s + f, 0);
    const rowsOf = [...pieces, ['whole step', stepMs, totalFlops] as [string, number, number]].map(([label, ms, flops]) => [
      label, ms.toFixed(0), `${((100 * ms) / stepMs).toFixed(0)}%`, flops ? (flops / 1e9).toFixed(1) : '—',
      flops && ms > 0 ? (flops / 1e9 / (ms / 1000)).toFixed(0) : '—', flops && ms > 0 ? `${((100 * flops / 1e9 / (ms / 1000)) / ROOFLINE_GFLOPS).toFixed(0)}%` : '—',
    ]);
    console.log(`\n### Where the time goes: ${architecture} (${(part.parameters / 1e6).toFixed(2)} M parameters), batch ${BATCH}, ${SIZE}x${SIZE}\n`);
    console.log(table(['part', 'ms', 'of step', 'GFLOP', 'GFLOPS', `of ${ROOFLINE_GFLOPS} GFLOPS`], rowsOf));
  }
  console.log(`\nParts are separate graphs built with the same builders (median of ${PART_RUNS} runs after 1): transformer forward; forward + every parameter's gradient of sum(y·r);`);
  console.log('VGG19 forward; forward + input gradient of sum(relu5_1·r). Backward = (forward + backward) − forward. GFLOP counts convolutions only (2·N·Hout·Wout·Cout·Cin·k²;');
  console.log('backward 2x forward for weights + inputs, 1x for inputs only); the rest row counts the Gram matrices (forward + two backward products).');
  console.log('The VGG rows are measured once and shared by both networks. Data wait: median time the loop waited for its photos.');
}
