/**
 * Flicker (issue 14): the warping error (Lai et al. 2018; src/video/warping-error.ts) of a
 * per-frame model A and its stabilised version B (trained or fine-tuned with `train --stability`),
 * each with and without the run-time option (`stylize --temporal`), on clips whose flow is exact:
 * pans and zooms cut from still photos (with per-frame noise, like a decoded video) and the
 * Sintel pairs with ground-truth flow and occlusions. Next to it: B's style and content losses
 * against A's (stability must not erase the style), and the frame rate at 640x480. A contact
 * sheet (rows: input, A, B) and a side-by-side clip (input | A | B) go to bench/out/.
 *
 * Pairs: `--temporal-models A=B[,A=B…]` or $PASTICHE_TEMPORAL_MODELS, default
 * `<data>/models/fast-style/wave=wave-lengstrom-stable`; each side a store name, an .onnx file or a
 * checkpoint folder. `--style PATH` names the style image of the losses (default: B's training
 * record, else images/style/<A's name>.jpg).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contactSheet } from '../src/image/contact-sheet.js';
import { readImage, writeImage } from '../src/image/codec.js';
import { toInterleaved, toRgbImage } from '../src/image/pixels.js';
import type { RgbImage } from '../src/image/types.js';
import { openStyleModel, type StyleModel } from '../src/style/model.js';
import { stylizeImage } from '../src/style/transfer.js';
import { messageOf } from '../src/util/errors.js';
import { createEncoder } from '../src/video/encode.js';
import type { Flow } from '../src/video/flow.js';
import { createTemporalBlend } from '../src/video/temporal.js';
import { occlusionMask } from '../src/video/flow.js';
import { estimateFlow } from '../src/video/optical-flow.js';
import { readSintelPair, syntheticMotionClip, warpingError } from '../src/video/warping-error.js';
import { META } from '../src/weights/store.js';
import { createLossMeter, geomean, vggWeights } from './perceptual.js';
import { table, time } from './util.js';

const OUT_DIR = fileURLToPath(new URL('./out/', import.meta.url));
/** Strength of the run-time option in this bench. */
const RUNTIME_STRENGTH = 0.8;
const WIDTH = 640;
const HEIGHT = 480;
const FRAMES = 12;
/** DAVIS frames per clip (854x480; two TV-L1 flows, ~5 s, per pair). */
const DAVIS_FRAMES = 8;
const PHOTOS = ['tubingen.jpg', 'golden_gate.jpg'];
const GOAL = { warping: 0.5, losses: 1.1 };

interface Clip {
  readonly name: string;
  readonly frames: RgbImage[];
  readonly flows: Flow[];
  readonly masks?: Uint8Array[];
  /** 'synthetic' and 'sintel' have exact flow; 'davis' has TV-L1 estimates (src/video/optical-flow.ts). */
  readonly kind: 'synthetic' | 'sintel' | 'davis';
}

const argValue = (args: readonly string[], flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
const nameOf = (spec: string): string => basename(spec.replace(/[/\\]+$/, ''), extname(spec)).replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';
const sci = (x: number): string => x.toExponential(3);
const ratio = (x: number): string => `${x.toFixed(2)}x`;

/** Each frame through `model` on its own. */
async function stylizeClip(model: StyleModel, frames: readonly RgbImage[]): Promise<RgbImage[]> {
  const out: RgbImage[] = [];
  for (const frame of frames) out.push(await stylizeImage(model, frame));
  return out;
}

/** The run-time option on per-frame outputs, as `stylize --temporal` applies it frame after frame. */
function blendClip(frames: readonly RgbImage[], outputs: readonly RgbImage[], strength: number): RgbImage[] {
  const { width, height } = frames[0];
  const blend = createTemporalBlend({ strength, width, height });
  return outputs.map((out, i) => toRgbImage(blend.apply(toInterleaved(frames[i]), toInterleaved(out)), width, height));
}

async function clips(dataDir: string): Promise<Clip[]> {
  const out: Clip[] = [];
  for (const file of PHOTOS) {
    const path = join(dataDir, 'images/content', file);
    if (!existsSync(path)) continue;
    const photo = (await readImage(path)).image;
    for (const motion of ['pan', 'zoom'] as const) {
      const clip = await syntheticMotionClip(photo, { frames: FRAMES, width: WIDTH, height: HEIGHT, motion, noise: 2, jpegQuality: 90 });
      out.push({ name: `${nameOf(file)} ${motion}`, ...clip, kind: 'synthetic' });
    }
  }
  for (const level of ['easy', 'medium', 'hard']) {
    const dir = join(dataDir, 'video/sintel-flow/clean', level);
    if (!existsSync(dir)) continue;
    out.push({ name: `sintel ${level}`, ...(await readSintelPair(dir)), kind: 'sintel' });
  }
  for (const name of ['blackswan', 'car-roundabout']) {
    const dir = join(dataDir, 'video/davis', name);
    if (!existsSync(dir)) continue;
    const files = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort().slice(0, DAVIS_FRAMES);
    const frames = await Promise.all(files.map(async (f) => (await readImage(join(dir, f))).image));
    const flows: Flow[] = [];
    const masks: Uint8Array[] = [];
    for (let t = 0; t + 1 < frames.length; t++) {
      const forward = estimateFlow(frames[t], frames[t + 1]);
      flows.push(forward);
      masks.push(occlusionMask(forward, estimateFlow(frames[t + 1], frames[t])));
    }
    out.push({ name: `davis ${name}`, frames, flows, masks, kind: 'davis' });
  }
  return out;
}

interface RecordedLoss {
  readonly styles?: { path?: string }[];
  readonly stability?: { weight: number; noise: number; shift: number };
}

/** The loss a model's training record describes (style images, stability); empty when it has no record. */
function recordedLoss(model: StyleModel): RecordedLoss {
  try {
    return (JSON.parse(model.metadata[META.training] ?? '{}') as { loss?: RecordedLoss }).loss ?? {};
  } catch {
    return {};
  }
}

export async function benchTemporal(dataDir: string, threads: number, args: readonly string[] = []): Promise<void> {
  console.log(`\n## Temporal stability: warping error of per-frame (A) and stabilised (B) models (${threads} thread(s))\n`);
  const spec = argValue(args, '--temporal-models') ?? process.env.PASTICHE_TEMPORAL_MODELS ?? `${join(dataDir, 'models/fast-style/wave')}=wave-lengstrom-stable`;
  const pairs = spec.split(',').filter(Boolean).map((item) => item.split('='));
  const vgg = await vggWeights(dataDir);
  if (typeof vgg === 'string') {
    console.log(`skipped: ${vgg}`);
    return;
  }
  const all = await clips(dataDir);
  if (all.length === 0) {
    console.log('skipped: no content photos or Sintel frames in the shared data');
    return;
  }
  console.log(`Clips: ${all.filter((c) => c.kind === 'synthetic').length} synthetic (${FRAMES} frames of ${WIDTH}x${HEIGHT} from a still photo, `
    + 'exact flow, Gaussian noise σ 2 and JPEG q90 per frame), Sintel frame pairs with ground-truth flow and occlusions, '
    + `and the first ${DAVIS_FRAMES} frames of DAVIS clips with TV-L1 flow estimated here (occlusions by forward-backward check). `
    + `Warping error: mean squared difference (RGB in 0..1) between output t and output t+1 warped back by the input's flow, over non-occluded pixels; `
    + `run-time option "+rt": --temporal ${RUNTIME_STRENGTH}.\n`);

  for (const [aSpec, bSpec] of pairs) {
    if (!aSpec || !bSpec) {
      console.log(`skipped: expected a pair A=B in --temporal-models but received '${[aSpec, bSpec].join('=')}'`);
      continue;
    }
    let a: StyleModel;
    let b: StyleModel;
    try {
      a = await openStyleModel(aSpec, { threads });
      b = await openStyleModel(bSpec, { threads });
    } catch (error) {
      console.log(`${aSpec} vs ${bSpec}: skipped: ${messageOf(error)}`);
      continue;
    }
    const stylePath = argValue(args, '--style') ?? (recordedLoss(b).styles?.[0]?.path || undefined) ?? join(dataDir, 'images/style', `${nameOf(aSpec)}.jpg`);
    if (!existsSync(stylePath)) {
      console.log(`${aSpec} vs ${bSpec}: skipped: style image ${stylePath} not found (give --style PATH)`);
      continue;
    }
    const meter = await createLossMeter(vgg, stylePath, threads);
    const { stability } = recordedLoss(b);
    console.log(`A = ${aSpec}\nB = ${bSpec} (${stability ? `trained with --stability ${stability.weight}, noise ${stability.noise}, shift ${stability.shift}`
      : 'no stability in its training record: not trained with --stability, compared as given'})\n`);
    const rows: string[][] = [];
    const bucket = (): { b: number[]; art: number[]; brt: number[] } => ({ b: [], art: [], brt: [] });
    const ratios = { synthetic: bucket(), sintel: bucket(), davis: bucket() };
    const losses: { a: { style: number; content: number }; b: { style: number; content: number } }[] = [];
    let sample: { input: RgbImage[]; a: RgbImage[]; b: RgbImage[] } | undefined;
    for (const clip of all) {
      const outA = await stylizeClip(a, clip.frames);
      const outB = await stylizeClip(b, clip.frames);
      const outArt = blendClip(clip.frames, outA, RUNTIME_STRENGTH);
      const outBrt = blendClip(clip.frames, outB, RUNTIME_STRENGTH);
      const we = (frames: RgbImage[]): number => warpingError(frames, clip.flows, clip.masks);
      const [input, wa, wb, wart, wbrt] = [we(clip.frames), we(outA), we(outB), we(outArt), we(outBrt)];
      const bucket = ratios[clip.kind];
      bucket.b.push(wb / wa);
      bucket.art.push(wart / wa);
      bucket.brt.push(wbrt / wa);
      rows.push([clip.name, sci(input), sci(wa), sci(wb), ratio(wb / wa), sci(wart), ratio(wart / wa), sci(wbrt), ratio(wbrt / wa)]);
      const [la, lb] = await meter.measure(clip.frames[0], [outA[0], outB[0]]);
      losses.push({ a: la, b: lb });
      if (!sample && clip.kind === 'synthetic') sample = { input: clip.frames, a: outA, b: outB };
    }
    for (const [label, kind] of [['synthetic clips', ratios.synthetic], ['Sintel', ratios.sintel], ['DAVIS (estimated flow)', ratios.davis]] as const) {
      if (kind.b.length === 0) continue;
      rows.push([`geometric mean, ${label}`, '', '', '', ratio(geomean(kind.b)), '', ratio(geomean(kind.art)), '', ratio(geomean(kind.brt))]);
    }
    console.log(table(['clip', 'input', 'A', 'B', 'B/A', 'A+rt', 'A+rt/A', 'B+rt', 'B+rt/A'], rows));

    const styleRatio = geomean(losses.map((l) => l.b.style / l.a.style));
    const contentRatio = geomean(losses.map((l) => l.b.content / l.a.content));
    console.log(`\nLosses on each clip's first frame (${meter.description}): B/A style ${ratio(styleRatio)}, content ${ratio(contentRatio)} (geometric means)`);

    const frame = all.find((c) => c.kind === 'synthetic')?.frames[0] ?? all[0].frames[0];
    const ta = await time(() => stylizeImage(a, frame), 5, 1);
    const tb = await time(() => stylizeImage(b, frame), 5, 1);
    const blend = createTemporalBlend({ strength: RUNTIME_STRENGTH, width: frame.width, height: frame.height });
    const [rgbIn, rgbOut] = [toInterleaved(frame), toInterleaved(frame)];
    const tBlend = await time(() => blend.apply(rgbIn, rgbOut), 20, 3);
    console.log(`\nSpeed at ${frame.width}x${frame.height} (median of 5, in-process stylizeImage): A ${ta.medianMs.toFixed(0)} ms (${(1000 / ta.medianMs).toFixed(1)} fps), `
      + `B ${tb.medianMs.toFixed(0)} ms (${(1000 / tb.medianMs).toFixed(1)} fps); the run-time blend adds ${tBlend.medianMs.toFixed(1)} ms a frame.`);

    const sw = geomean(ratios.synthetic.b.length ? ratios.synthetic.b : [Number.NaN]);
    const ss = geomean(ratios.sintel.b.length ? ratios.sintel.b : [Number.NaN]);
    const met = (ok: boolean): string => (ok ? 'met' : 'not met');
    console.log(`\nGoal (issue 14): B's warping error ≤ ${GOAL.warping}x A's on the synthetic clips (${ratio(sw)}, ${met(sw <= GOAL.warping)}) and on Sintel `
      + `(${ratio(ss)}, ${met(ss <= GOAL.warping)}), at style ≤ ${GOAL.losses}x (${ratio(styleRatio)}, ${met(styleRatio <= GOAL.losses)}) `
      + `and content ≤ ${GOAL.losses}x (${ratio(contentRatio)}, ${met(contentRatio <= GOAL.losses)}).`);

    if (sample) {
      await mkdir(OUT_DIR, { recursive: true });
      const tag = `${nameOf(aSpec)}-vs-${nameOf(bSpec)}`;
      const sheetPath = join(OUT_DIR, `temporal-${tag}.png`);
      const pick = (frames: RgbImage[]): RgbImage[] => frames.slice(0, 4);
      await writeImage(sheetPath, await contactSheet([pick(sample.input), pick(sample.a), pick(sample.b)], { cell: 256 }));
      const clipPath = join(OUT_DIR, `temporal-${tag}.mp4`);
      await writeSideBySide(clipPath, [sample.input, sample.a, sample.b]);
      console.log(`\nContact sheet (rows: input, A, B; frames 1-4): ${sheetPath}\nSide-by-side clip (input | A | B): ${clipPath}`);
    }
  }
}

/** The rows of frames placed side by side, one video frame each, as an H.264 clip at 12 fps. */
async function writeSideBySide(path: string, rows: readonly RgbImage[][]): Promise<void> {
  const { width, height } = rows[0][0];
  const encoder = await createEncoder({ output: path, width: width * rows.length, height, fps: '12' });
  for (let f = 0; f < rows[0].length; f++) {
    const frame = new Uint8Array(width * rows.length * height * 3);
    rows.forEach((frames, i) => {
      const part = toInterleaved(frames[f]);
      for (let y = 0; y < height; y++) frame.set(part.subarray(y * width * 3, (y + 1) * width * 3), (y * width * rows.length + i * width) * 3);
    });
    await encoder.write(frame);
  }
  await encoder.finish();
}
