/** `pastiche train`: train a transformation network for a style, or distil one into a smaller student. */
import { Command, Option } from 'commander';
import { appendFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { readImage, writeImage } from '../image/codec.js';
import { contactSheet } from '../image/contact-sheet.js';
import { decodeSquareCrop } from '../image/crop.js';
import type { RgbImage } from '../image/types.js';
import { ARCHITECTURES, resolveArchitecture, type TransformerConfig } from '../nets/transformer.js';
import { deepestTap, type VggDepth } from '../nets/vgg.js';
import { openStyleModel } from '../style/model.js';
import { lossPlotSvg } from '../style/loss-plot.js';
import {
  checkTrainingMemory, DISTILL_FEATURE_LAYER, TRAIN_CONTENT_LAYERS, TRAIN_DEFAULTS, TRAIN_STYLE_LAYERS, trainTransformer,
  type TrainOptions, type TrainProgress, type TrainStyle,
} from '../style/train.js';
import { loadCheckpoint, saveCheckpoint, type LossEntry, type TrainRecord, type TrainState } from '../style/train-checkpoint.js';
import { STABILITY_DEFAULTS } from '../style/stability.js';
import { listPhotos } from '../style/train-data.js';
import { CHECKPOINT_FILE, loadStartingParams } from '../style/train-init.js';
import { writeFileAtomically } from '../util/atomic.js';
import { FileError } from '../util/errors.js';
import { parseInteger, parseNumber } from '../util/validate.js';
import { resolveVggWeights } from '../weights/download.js';
import { checkModelName, hasModel, META, saveModel, trainingDir } from '../weights/store.js';
import { loadVggWeights } from '../weights/vgg-weights.js';
import { addRuntimeOptions, collectStyle, interruptSignal, list, report, runtimeOptions, type LossFlags, type StyleArg } from './common.js';
import { createProgressBar } from './progress.js';

interface TrainFlags extends LossFlags {
  style: StyleArg[];
  teacher?: string;
  data?: string;
  name?: string;
  arch?: string;
  widths?: string;
  blocks?: string;
  batch?: string;
  size?: string;
  styleSize?: string;
  steps?: string;
  epochs?: string;
  pixelWeight?: string;
  featureWeight?: string;
  featureLayer?: string;
  stability?: string;
  stabilityNoise?: string;
  stabilityShift?: string;
  vgg?: string;
  vggDepth?: string;
  seed?: string;
  init?: string;
  resume?: string;
  checkpointEvery?: string;
  previewEvery?: string;
  force?: boolean;
  json?: boolean;
  threads?: string;
  executionProvider?: string;
}

const PREVIEW_PHOTOS = 4;

/** The checkpoint `--resume` names: a store name's training folder, a folder, or a file. */
async function checkpointPathFor(spec: string): Promise<string> {
  const info = await stat(spec).catch(() => null);
  if (info?.isFile()) return spec;
  if (info?.isDirectory()) return join(spec, CHECKPOINT_FILE);
  checkModelName(spec);
  const path = join(trainingDir(spec), CHECKPOINT_FILE);
  if (!(await stat(path).catch(() => null))) throw new FileError(spec, `no training checkpoint to resume (looked for ${path})`);
  return path;
}

const optional = <T>(text: string | undefined, parse: (t: string) => T): T | undefined => (text === undefined ? undefined : parse(text));

/** A value from the flags, else the checkpoint's record, else the default. */
function pick<T>(flag: T | undefined, saved: T | undefined, fallback: T): T {
  return flag ?? saved ?? fallback;
}

function formatTerms(p: TrainProgress): string {
  const terms = Object.entries(p.terms).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ');
  return `loss ${p.loss.toExponential(3)} (${terms}) · ${p.imagesPerSecond.toFixed(2)} img/s`;
}

async function run(flags: TrainFlags): Promise<void> {
  const json = Boolean(flags.json);
  const resumeFrom = flags.resume ? await checkpointPathFor(flags.resume) : undefined;
  const resume = resumeFrom ? await loadCheckpoint(resumeFrom) : undefined;
  const saved: Partial<TrainRecord> & { loss?: Record<string, any> } = resume?.record ?? {};
  const savedLoss = (saved.loss ?? {}) as Record<string, any>;

  const stem = (path: string): string => basename(path.replace(/[/\\]+$/, ''), extname(path)).replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+/, '');
  const defaultName = flags.style[0] ? stem(flags.style[0].path) : flags.teacher ? `${stem(flags.teacher)}-${flags.arch ?? 'compact'}` : '';
  if (!flags.name && !saved.name && !defaultName) throw new TypeError('Expected --name for the trained model (or --style / --teacher to name it after)');
  const name = checkModelName(flags.name ?? saved.name ?? defaultName);
  const dir = resumeFrom && !flags.resume!.includes('/') ? trainingDir(name) : resumeFrom ? resolve(resumeFrom, '..') : trainingDir(name);
  if (!resume) {
    if (!flags.force && (await hasModel(name))) throw new Error(`A model named '${name}' is already in the store; pass --force to replace it, or --name another`);
    if (!flags.force && (await stat(join(dir, CHECKPOINT_FILE)).catch(() => null))) {
      throw new Error(`A training run for '${name}' has a checkpoint in ${dir}; continue it with --resume ${name}, or pass --force to start over`);
    }
  }

  // What to train from: style images (perceptual loss) or a teacher (distillation).
  const savedStyles = (savedLoss.styles ?? []) as { path: string; givenWeight: number }[];
  const styleArgs = flags.style.length > 0 ? flags.style : savedStyles.map((s) => ({ path: s.path, weight: s.givenWeight }));
  const teacherSpec = flags.teacher ?? (savedLoss.kind === 'distill' ? savedLoss.teacher as string : undefined);
  if (styleArgs.length > 0 === Boolean(teacherSpec)) {
    throw new TypeError('Expected --style (train a style) or --teacher (distil a model), not both or neither');
  }
  const data = flags.data ?? saved.data;
  if (!data) throw new TypeError('Expected --data: a folder of photos to train on');
  const photos = await listPhotos(data);

  const archName = flags.arch ?? (saved.architecture?.replace(/\[.*$/, '')) ?? (teacherSpec ? 'compact' : 'pytorch-examples');
  // A resumed custom architecture ('compact[4,8,8]x1') takes its widths and blocks from the checkpoint.
  const savedConfig = saved.architecture?.includes('[') && flags.arch === undefined ? saved.config as TransformerConfig : undefined;
  const architecture = resolveArchitecture(archName, {
    widths: optional(flags.widths, (t) => list(t)!.map((w) => parseInteger('--widths', w, 1, 1024))) ?? (savedConfig ? [...savedConfig.widths] : undefined),
    residualBlocks: optional(flags.blocks, (t) => parseInteger('--blocks', t, 0, 64)) ?? (savedConfig ? savedConfig.residualBlocks : undefined),
  });
  const batch = pick(optional(flags.batch, (t) => parseInteger('--batch', t, 1, 256)), saved.batch, TRAIN_DEFAULTS.batch);
  const size = pick(optional(flags.size, (t) => parseInteger('--size', t, 32, 4096)), saved.size, TRAIN_DEFAULTS.size);
  if (size % 4 !== 0) throw new RangeError(`Expected a multiple of 4 for --size (the network halves it twice) but received ${size}`);
  checkTrainingMemory(batch, size);
  const epochs = optional(flags.epochs, (t) => parseNumber('--epochs', t, 0.001, 100000));
  if (epochs !== undefined && flags.steps !== undefined) throw new TypeError('Expected --steps or --epochs, not both');
  const steps = epochs !== undefined
    ? Math.max(1, Math.ceil((epochs * photos.length) / batch))
    : pick(optional(flags.steps, (t) => parseInteger('--steps', t, 1, 10_000_000)), saved.steps, TRAIN_DEFAULTS.steps);

  const contentLayers = list(flags.contentLayers) ?? savedLoss.contentLayers ?? TRAIN_CONTENT_LAYERS;
  const styleLayers = list(flags.styleLayers) ?? savedLoss.styleLayers ?? TRAIN_STYLE_LAYERS;
  const featureWeight = pick(optional(flags.featureWeight, (t) => parseNumber('--feature-weight', t, 0)), savedLoss.featureWeight, TRAIN_DEFAULTS.featureWeight);
  const featureLayer = flags.featureLayer ?? savedLoss.featureLayer ?? DISTILL_FEATURE_LAYER;
  const depth = parseInteger('--vgg-depth', flags.vggDepth ?? String(/^VGG(\d+)/.exec(savedLoss.vgg ?? '')?.[1] ?? '19'), 16, 19);
  if (depth !== 16 && depth !== 19) throw new RangeError(`Expected 16 or 19 for --vgg-depth but received ${depth}`);
  const needsVgg = styleArgs.length > 0 || featureWeight > 0;

  // Read every input before the long work; style images shrunk while decoding to the size their
  // Gram matrices are taken at (a huge painting is never held whole).
  const styleSize = pick(optional(flags.styleSize, (t) => parseInteger('--style-size', t, 32, 8192)), savedLoss.styleSize, TRAIN_DEFAULTS.styleSize);
  const styles: TrainStyle[] = [];
  for (const s of styleArgs) {
    const path = isAbsolute(s.path) ? s.path : resolve(s.path);
    styles.push({ image: (await readImage(path, { maxSide: styleSize })).image, weight: s.weight, name: basename(path), path });
  }
  const init = flags.init ? await loadStartingParams(flags.init) : undefined;
  const runtime = runtimeOptions(flags);
  const teacherModel = teacherSpec ? await openStyleModel(teacherSpec, runtime) : undefined;
  const previewPhotos: RgbImage[] = [];
  for (let i = 0; i < Math.min(PREVIEW_PHOTOS, photos.length); i++) {
    const file = photos[Math.floor((i * photos.length) / Math.min(PREVIEW_PHOTOS, photos.length))];
    const photo = await decodeSquareCrop(file, size).catch(() => null);
    if (photo) previewPhotos.push(photo);
  }

  const { signal, dispose } = interruptSignal();
  try {
    let vgg;
    let vggSource: string | undefined;
    if (needsVgg) {
      const download = createProgressBar('VGG weights', 'MiB', { enabled: !json && process.stderr.isTTY });
      const resolved = await resolveVggWeights({
        vgg: flags.vgg ?? (savedLoss.vggSource || undefined), depth: depth as VggDepth, signal,
        onProgress: (received, total) => download.update(Math.round(received / 2 ** 20), total ? Math.round(total / 2 ** 20) : null),
      });
      download.done();
      vggSource = resolve(resolved.path);
      const taps = styleArgs.length > 0 ? [...contentLayers, ...styleLayers] : [featureLayer];
      vgg = await loadVggWeights(resolved.path, { depth: depth as VggDepth, lastTap: deepestTap(depth as VggDepth, taps) });
    }

    // The training folder and its log appear with the first step: a run refused before it (a
    // checkpoint of another setup, no readable photo) leaves the store as it was.
    const logPath = join(dir, 'log.jsonl');
    let log: Promise<void> | undefined;
    const appendLog = (line: string): void => {
      log = (log ?? (async () => {
        await mkdir(dir, { recursive: true });
        await writeFile(logPath, resume?.history.map((e) => `${JSON.stringify(e)}\n`).join('') ?? '');
      })()).then(() => appendFile(logPath, line));
      log.catch(() => { /* awaited after training */ });
    };
    // Files skipped before the first step are reported with it: if no photo is readable, the one
    // error line says so instead.
    let skipped: string[] | undefined = [];
    const bar = createProgressBar('train', 'steps', { enabled: !json && process.stderr.isTTY });
    const writeLossPlot = async (history: readonly LossEntry[]): Promise<void> => {
      const keys = ['loss', ...Object.keys(history.at(-1)?.terms ?? {})];
      const series = keys.map((k) => ({ name: k, points: history.map((e) => [e.step, k === 'loss' ? e.loss : e.terms[k]] as const) }));
      await writeFileAtomically(join(dir, 'loss.svg'), lossPlotSvg(series, { title: `${name}: training loss` }));
    };
    const started = new Date().toISOString();
    const options: TrainOptions = {
      name, architecture, photos, dataLabel: resolve(data), batch, size, steps,
      styles: styles.length > 0 ? styles : undefined,
      teacher: teacherModel ? { session: teacherModel.session, input: teacherModel.input, output: teacherModel.output, label: teacherSpec! } : undefined,
      vgg, vggSource,
      styleSize,
      learningRate: pick(optional(flags.learningRate, (t) => parseNumber('--learning-rate', t, 1e-9, 10)), saved.learningRate, TRAIN_DEFAULTS.learningRate),
      seed: pick(optional(flags.seed, (t) => parseInteger('--seed', t, 0, 2 ** 32 - 1)), saved.seed, TRAIN_DEFAULTS.seed),
      contentWeight: pick(optional(flags.contentWeight, (t) => parseNumber('--content-weight', t, 0)), savedLoss.contentWeight, TRAIN_DEFAULTS.contentWeight),
      styleWeight: pick(optional(flags.styleWeight, (t) => parseNumber('--style-weight', t, 0)), savedLoss.styleWeight, TRAIN_DEFAULTS.styleWeight),
      tvWeight: pick(optional(flags.tvWeight, (t) => parseNumber('--tv-weight', t, 0)), savedLoss.tvWeight, TRAIN_DEFAULTS.tvWeight),
      contentLayers, styleLayers,
      styleLayerWeights: list(flags.styleLayerWeights)?.map((w) => parseNumber('--style-layer-weights', w, 0)) ?? savedLoss.styleLayerWeights,
      pixelWeight: pick(optional(flags.pixelWeight, (t) => parseNumber('--pixel-weight', t, 0)), savedLoss.pixelWeight, TRAIN_DEFAULTS.pixelWeight),
      featureWeight, featureLayer,
      stability: {
        weight: pick(optional(flags.stability, (t) => parseNumber('--stability', t, 0)), savedLoss.stability?.weight, 0),
        noise: pick(optional(flags.stabilityNoise, (t) => parseNumber('--stability-noise', t, 0, 64)), savedLoss.stability?.noise, STABILITY_DEFAULTS.noise),
        shift: pick(optional(flags.stabilityShift, (t) => parseNumber('--stability-shift', t, 0, 8)), savedLoss.stability?.shift, STABILITY_DEFAULTS.shift),
      },
      init: init ? { params: init.params, label: init.label } : resume?.record.init ? { params: new Map(), label: resume.record.init } : undefined,
      resume,
      runtime, signal,
      checkpointEvery: pick(optional(flags.checkpointEvery, (t) => parseInteger('--checkpoint-every', t, 1)), undefined, TRAIN_DEFAULTS.checkpointEvery),
      previewEvery: pick(optional(flags.previewEvery, (t) => parseInteger('--preview-every', t, 1)), undefined, TRAIN_DEFAULTS.previewEvery),
      previewPhotos,
      onSkip: (file, reason) => {
        if (json) return;
        if (skipped) skipped.push(`skipped ${file}: ${reason}`);
        else bar.log(`skipped ${file}: ${reason}`);
      },
      onProgress: (p) => {
        for (const line of skipped ?? []) bar.log(line);
        skipped = undefined;
        bar.update(p.step, p.steps, formatTerms(p));
        const entry = { step: p.step, loss: p.loss, terms: p.terms, imagesPerSecond: p.imagesPerSecond, dataWaitMs: p.dataWaitMs, stepMs: p.stepMs };
        appendLog(`${JSON.stringify(entry)}\n`);
        if (json) process.stdout.write(`${JSON.stringify({ event: 'step', ...entry, steps: p.steps, etaSeconds: p.etaSeconds })}\n`);
      },
      onCheckpoint: async (state: TrainState) => {
        await saveCheckpoint(join(dir, CHECKPOINT_FILE), state);
        await writeLossPlot(state.history);
      },
      onPreview: async (outputs, state) => {
        const sheet = await contactSheet([previewPhotos, [...outputs]], { cell: Math.min(size, 256) });
        await writeImage(join(dir, `preview-${String(state.step).padStart(6, '0')}.png`), sheet);
        await writeImage(join(dir, 'preview.png'), sheet);
      },
    };
    const result = await trainTransformer(options);
    await log;
    bar.done();
    const last = result.state.history.at(-1);
    const summary = {
      name, steps: result.state.step, imagesSeen: result.state.imagesSeen, seconds: result.state.seconds,
      finalLoss: last ? { loss: last.loss, ...last.terms } : null, interrupted: result.aborted, skippedPhotos: result.skippedPhotos.size, trainingDir: dir,
    };
    if (result.aborted) {
      const checkpointed = result.state.step > (resume?.step ?? 0);
      report(json, summary, checkpointed
        ? `Stopped at step ${result.state.step}/${steps}; checkpoint saved in ${dir}. Continue with: pastiche train --resume ${name}`
        : `Stopped before step ${result.state.step + 1}; nothing new was saved`);
      process.exitCode = 130;
      return;
    }
    const record = {
      ...result.state.record, command: `pastiche ${process.argv.slice(2).join(' ')}`, started, finished: new Date().toISOString(),
      stepsDone: result.state.step, imagesSeen: result.state.imagesSeen, seconds: result.state.seconds, finalLoss: summary.finalLoss, skippedPhotos: result.skippedPhotos.size,
    };
    const stored = await saveModel(name, result.onnx, {
      architecture: architecture.name, source: resolve(data), force: true,
      description: (styles.length > 0
        ? `${architecture.name} network trained by pastiche on ${styles.map((s) => s.name).join(' + ')}, ${result.state.step} steps`
        : `${architecture.name} student of ${teacherSpec}, distilled by pastiche in ${result.state.step} steps`)
        + (options.stability && options.stability.weight > 0 ? `; stabilised against flicker (--stability ${options.stability.weight})` : ''),
      metadata: { [META.training]: JSON.stringify(record) },
    });
    await writeFileAtomically(join(dir, 'training.json'), `${JSON.stringify(record, null, 2)}\n`);
    report(json, { ...summary, path: stored.path }, `${name}: trained ${result.state.step} steps (${result.state.imagesSeen} images, ${(result.state.seconds / 60).toFixed(1)} min${result.skippedPhotos.size ? `, ${result.skippedPhotos.size} unreadable photos skipped` : ''}) → ${stored.path}\n` +
      `  previews and loss curve in ${dir}; use it with: pastiche stylize photo.jpg --model ${name}`);
  } finally {
    dispose();
  }
}

export function trainCommand(): Command {
  const d = TRAIN_DEFAULTS;
  const command = new Command('train')
    .description('Train a fast style network (Johnson et al.) on a folder of photos with a perceptual loss, or distil a model into a smaller, faster student; the result lands in the model store')
    .option('-s, --style <path[:weight]>', 'a style image, with an optional blend weight (repeat for several styles)', collectStyle, [])
    .option('--teacher <model>', 'distil this model (store name, .onnx or checkpoint folder) instead of training on style images')
    .option('-d, --data <folder>', 'folder of training photos, searched recursively (JPEG, PNG, WebP)')
    .option('-n, --name <name>', 'name of the trained model in the store (default: the style image\'s file name)')
    .addOption(new Option('--arch <name>', `network architecture (default: pytorch-examples; compact when distilling)`).choices(Object.keys(ARCHITECTURES)))
    .option('--widths <a,b,c>', 'custom channel widths of the three stages (default: the architecture\'s)')
    .option('--blocks <n>', 'custom number of residual blocks (default: the architecture\'s)')
    .option('--batch <n>', `photos per step (default: ${d.batch})`)
    .option('--size <pixels>', `side of the square training crops, a multiple of 4 (default: ${d.size})`)
    .option('--style-size <pixels>', `longer side of the style images when their Gram matrices are computed (default: ${d.styleSize})`)
    .option('--steps <n>', `optimisation steps (default: ${d.steps})`)
    .option('--epochs <n>', 'passes over the photos instead of --steps (fractions allowed)')
    .option('--learning-rate <x>', `Adam's step size (default: ${d.learningRate})`)
    .option('--content-weight <x>', `weight of the content loss (default: ${d.contentWeight})`)
    .option('--style-weight <x>', `weight of the style loss (default: ${d.styleWeight})`)
    .option('--tv-weight <x>', `weight of the total-variation loss (default: ${d.tvWeight})`)
    .option('--content-layers <list>', `VGG layers of the content loss (default: ${TRAIN_CONTENT_LAYERS.join(',')})`)
    .option('--style-layers <list>', `VGG layers of the style loss (default: ${TRAIN_STYLE_LAYERS.join(',')})`)
    .option('--style-layer-weights <list>', 'one weight per style layer (default: 1 each)')
    .option('--pixel-weight <x>', `distillation: weight of the pixel loss against the teacher (default: ${d.pixelWeight})`)
    .option('--feature-weight <x>', `distillation: weight of a VGG feature loss against the teacher (default: ${d.featureWeight}, off)`)
    .option('--feature-layer <layer>', `distillation: VGG layer of the feature loss (default: ${DISTILL_FEATURE_LAYER})`)
    .option('--stability <weight>', 'weight of the stability loss against video flicker: the output of a slightly shifted, noisy photo must be the shifted output (default: 0, off)')
    .option('--stability-noise <sigma>', `stability loss: noise added to the shifted photo, in 0..255 units (default: ${STABILITY_DEFAULTS.noise})`)
    .option('--stability-shift <pixels>', `stability loss: largest sub-pixel shift along each axis (default: ${STABILITY_DEFAULTS.shift})`)
    .option('--vgg <path>', 'VGG weights: Keras .h5, PyTorch .pth, TF.js model folder or .safetensors (default: $PASTICHE_VGG, else downloaded once into the model store)')
    .addOption(new Option('--vgg-depth <n>', 'VGG16 or VGG19 (default: 19)').choices(['16', '19']))
    .option('--seed <n>', `seed of the initial weights and the photo order (default: ${d.seed})`)
    .option('--init <model>', 'start from this model\'s weights (fine-tuning): a store name, a checkpoint, a lengstrom checkpoint folder')
    .option('--resume <name|path>', 'continue an interrupted run from its checkpoint, bit for bit (a store name or a checkpoint file/folder)')
    .option('--checkpoint-every <n>', `save a checkpoint every n steps (also on Ctrl-C) (default: ${d.checkpointEvery})`)
    .option('--preview-every <n>', `write a preview contact sheet every n steps (default: ${d.previewEvery})`)
    .option('--force', 'replace a model or training run of the same name', false)
    .option('--json', 'print one JSON line per step and the result as JSON on stdout', false);
  addRuntimeOptions(command);
  return command.action(async (flags: TrainFlags) => run(flags));
}
