/**
 * Quality against a reference (issue 9's acceptance): a network trained by pastiche next to a
 * published checkpoint of the same painting, both stylising the classic content photos (longer
 * side 512). For each output, with VGG19: the style loss against the style image (Gram MSE summed
 * over relu1_1…relu5_1, Grams normalised by C·H·W as in training, style image at 512 longer side)
 * and the content loss against the photo (MSE of relu4_2 features), unweighted and with the
 * training defaults' weights. The goal: style and content losses at most 1.5x the checkpoint's
 * (geometric mean of the per-photo ratios). A contact sheet (rows: photo, model A, model B) goes
 * to bench/out/quality-<model>.png.
 *
 * Pairs: `--models A=B[,A=B…]` or $PASTICHE_QUALITY_MODELS, default `wave=<data>/models/fast-style/wave`.
 * A is a store name (a name not yet in the store falls back on its training checkpoint,
 * <store>/training/<name>/checkpoint.safetensors), an .onnx file or a checkpoint folder; so is B.
 * The style image is the one A was trained on (its training record), else images/style/<name>.jpg;
 * `--style PATH` overrides. `--photos a,b` keeps some photos only; `--size N` changes 512.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toOnnxBytes } from '../src/graph/index.js';
import { contactSheet } from '../src/image/contact-sheet.js';
import { readImage, writeImage } from '../src/image/codec.js';
import { listFolderImages } from '../src/image/folder.js';
import type { RgbImage } from '../src/image/types.js';
import { buildTransformer, resolveArchitecture, type TransformerConfig } from '../src/nets/transformer.js';
import { loadModel } from '../src/runtime/index.js';
import { openStyleModel, type StyleModel } from '../src/style/model.js';
import { loadCheckpoint } from '../src/style/train-checkpoint.js';
import { TRAIN_DEFAULTS } from '../src/style/train.js';
import { stylizeImage } from '../src/style/transfer.js';
import { hasModel, META, trainingDir } from '../src/weights/store.js';
import { messageOf } from '../src/util/errors.js';
import { createLossMeter, geomean, vggWeights } from './perceptual.js';
import { table } from './util.js';

const SIZE = 512;
const GOAL = 1.5;
const OUT_DIR = fileURLToPath(new URL('./out/', import.meta.url));

interface Pair {
  readonly a: string;
  readonly b: string;
}

interface Opened {
  readonly model: StyleModel;
  /** What it is, for the report (store model, or the training checkpoint at step N). */
  readonly description: string;
  /** The style image its training record names, if any. */
  readonly stylePath?: string;
}

const argValue = (args: readonly string[], flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);

function parsePairs(spec: string): Pair[] {
  return spec.split(',').filter(Boolean).map((item) => {
    const at = item.indexOf('=');
    if (at <= 0 || at === item.length - 1) throw new RangeError(`Expected a pair A=B in --models / PASTICHE_QUALITY_MODELS but received '${item}'`);
    return { a: item.slice(0, at), b: item.slice(at + 1) };
  });
}

const nameOf = (spec: string): string => basename(spec, extname(spec)).replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';

function styleFromRecord(record: unknown): string | undefined {
  const styles = (record as { loss?: { styles?: { path?: string }[] } } | undefined)?.loss?.styles;
  return styles?.[0]?.path;
}

/** A trained model: from the store, from its training checkpoint when not stored yet, or from a path. */
async function openTrained(spec: string, threads: number): Promise<Opened | string> {
  const runtime = { threads };
  const isName = !/[\\/]/.test(spec) && !spec.endsWith('.onnx') && !spec.startsWith('.');
  if (isName && !(await hasModel(spec))) {
    const checkpoint = join(trainingDir(spec), 'checkpoint.safetensors');
    if (!existsSync(checkpoint)) return `no model '${spec}' in the store and no training checkpoint at ${checkpoint}`;
    const state = await loadCheckpoint(checkpoint);
    const { record } = state;
    // The record holds the full configuration; the named architecture (custom sizes stripped) fills any gap.
    const config = { ...resolveArchitecture(record.architecture.replace(/\[.*$/, '')).config, ...(record.config as Partial<TransformerConfig>) };
    const bytes = toOnnxBytes(buildTransformer(config, state.params).graph);
    const session = await loadModel(bytes, runtime, `${spec} (checkpoint)`);
    return {
      model: { label: spec, session, input: 'image', output: 'stylized', metadata: {}, bytes, runtime },
      description: `${spec}: not in the store yet — the training checkpoint at step ${state.step} of ${record.steps} (${checkpoint})`,
      stylePath: styleFromRecord(record),
    };
  }
  const model = await openStyleModel(spec, runtime);
  let record: unknown;
  try {
    record = model.metadata[META.training] ? JSON.parse(model.metadata[META.training]) : undefined;
  } catch {
    record = undefined;
  }
  const steps = (record as { stepsDone?: number } | undefined)?.stepsDone;
  return { model, description: `${spec}: ${isName ? 'store model' : 'model'}${steps !== undefined ? `, ${steps} steps` : ''}`, stylePath: styleFromRecord(record) };
}

const sci = (x: number): string => x.toExponential(3);
const ratio = (x: number): string => `${x.toFixed(2)}x`;

export async function benchQuality(dataDir: string, threads: number, args: readonly string[] = []): Promise<void> {
  console.log(`\n## Quality: pastiche-trained model vs reference checkpoint (VGG19 losses, ${threads} thread(s))\n`);
  const size = Number(argValue(args, '--size') ?? SIZE);
  const pairs = parsePairs(argValue(args, '--models') ?? process.env.PASTICHE_QUALITY_MODELS ?? `wave=${join(dataDir, 'models/fast-style/wave')}`);
  const contentDir = join(dataDir, 'images/content');
  if (!existsSync(contentDir)) {
    console.log(`skipped: no content photos (${contentDir} not found)`);
    return;
  }
  const only = argValue(args, '--photos')?.split(',');
  const photos = (await listFolderImages(contentDir))
    .filter((p) => p.skip === undefined)
    .map((p) => p.input)
    .filter((p) => !only || only.includes(nameOf(p)))
    .sort();
  if (photos.length === 0) {
    console.log(`skipped: no photos in ${contentDir}${only ? ` named ${only.join(', ')}` : ''}`);
    return;
  }
  const vgg = await vggWeights(dataDir);
  if (typeof vgg === 'string') {
    console.log(`skipped: ${vgg}`);
    return;
  }
  for (const pair of pairs) {
    const a = await openTrained(pair.a, threads).catch((error: unknown) => messageOf(error));
    if (typeof a === 'string') {
      console.log(`${pair.a} vs ${pair.b}: skipped: ${a}`);
      continue;
    }
    if (!existsSync(pair.b)) {
      console.log(`${pair.a} vs ${pair.b}: skipped: reference ${pair.b} not found`);
      continue;
    }
    const b = await openStyleModel(resolve(pair.b), { threads });
    const name = nameOf(pair.a);
    const stylePath = argValue(args, '--style') ?? a.stylePath ?? join(dataDir, 'images/style', `${name}.jpg`);
    if (!existsSync(stylePath)) {
      console.log(`${pair.a} vs ${pair.b}: skipped: style image ${stylePath} not found (give --style PATH)`);
      continue;
    }
    const meter = await createLossMeter(vgg, stylePath, threads);
    console.log(`A = ${a.description}`);
    console.log(`B = ${pair.b} (reference checkpoint)`);
    console.log(`${meter.description}; photos at ${size} px longer side\n`);

    const rows: (string | number)[][] = [];
    const styleRatios: number[] = [];
    const contentRatios: number[] = [];
    const sheet: RgbImage[][] = [[], [], []];
    const totals = { a: { style: 0, content: 0 }, b: { style: 0, content: 0 } };
    for (const path of photos) {
      const photo = (await readImage(path, { size })).image;
      const outA = await stylizeImage(a.model, photo);
      const outB = await stylizeImage(b, photo);
      const [la, lb] = await meter.measure(photo, [outA, outB]);
      styleRatios.push(la.style / lb.style);
      contentRatios.push(la.content / lb.content);
      for (const k of ['style', 'content'] as const) {
        totals.a[k] += la[k] / photos.length;
        totals.b[k] += lb[k] / photos.length;
      }
      rows.push([`${nameOf(path)} ${photo.width}x${photo.height}`, sci(la.style), sci(lb.style), ratio(la.style / lb.style),
        sci(la.content), sci(lb.content), ratio(la.content / lb.content)]);
      sheet[0].push(photo);
      sheet[1].push(outA);
      sheet[2].push(outB);
    }
    const gStyle = geomean(styleRatios);
    const gContent = geomean(contentRatios);
    rows.push(['geometric mean of ratios', '', '', ratio(gStyle), '', '', ratio(gContent)]);
    console.log(table(['photo', 'style A', 'style B', 'A/B', 'content A', 'content B', 'A/B'], rows));

    const sw = TRAIN_DEFAULTS.styleWeight;
    const cw = TRAIN_DEFAULTS.contentWeight;
    console.log(`\nWeighted with the training defaults (style ${sw}, content ${cw}), mean over the photos:\n`);
    console.log(table(['model', `style × ${sw}`, `content × ${cw}`, 'sum'], [
      ['A', sci(sw * totals.a.style), sci(cw * totals.a.content), sci(sw * totals.a.style + cw * totals.a.content)],
      ['B', sci(sw * totals.b.style), sci(cw * totals.b.content), sci(sw * totals.b.style + cw * totals.b.content)],
    ]));
    const verdict = (g: number): string => (g <= GOAL ? 'met' : 'not met');
    console.log(`\nGoal (issue 9): style ≤ ${GOAL}x the checkpoint's: ${ratio(gStyle)}, ${verdict(gStyle)}; `
      + `content ≤ ${GOAL}x: ${ratio(gContent)}, ${verdict(gContent)}.`);

    await mkdir(OUT_DIR, { recursive: true });
    const out = join(OUT_DIR, `quality-${name}.png`);
    await writeImage(out, await contactSheet(sheet, { cell: 256 }));
    console.log(`\nContact sheet (columns: ${photos.map((p) => nameOf(p)).join(', ')}; rows: photo, A, B): ${out}`);
  }
}
