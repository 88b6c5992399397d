/** `pastiche optimize`: Gatys et al. style transfer by optimising the image itself. */
import { Command, Option } from 'commander';
import { basename, dirname, extname, join } from 'node:path';
import { readImage, writeImage } from '../image/codec.js';
import type { RgbImage } from '../image/types.js';
import { checkTaps, deepestTap, type VggDepth } from '../nets/vgg.js';
import { DEFAULTS, DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, checkMaskAspect, optimizeImage, type OptimizeProgress, type StyleInput } from '../style/optimize.js';
import { checkImageOutput, placeOutput } from '../image/output.js';
import { parseInteger, parseNumber } from '../util/validate.js';
import { resolveVggWeights } from '../weights/download.js';
import { loadVggWeights } from '../weights/vgg-weights.js';
import { addRuntimeOptions, collectStyle, interruptSignal, list, report, runtimeOptions, type LossFlags, type StyleArg } from './common.js';
import { createProgressBar } from './progress.js';

interface OptimizeFlags extends LossFlags {
  style: StyleArg[];
  contentMask?: string;
  output?: string;
  size?: string;
  scales?: string;
  iterations?: string;
  optimizer: 'lbfgs' | 'adam';
  pooling: 'max' | 'avg';
  init?: 'content' | 'noise' | 'style';
  seed?: string;
  styleScale?: string;
  preserveColors?: 'luminance' | 'histogram';
  vgg?: string;
  vggDepth: string;
  saveEvery?: string;
  threads?: string;
  executionProvider?: string;
  json?: boolean;
}

/** A mask image as [H·W] in 0..1 (its brightness), its longer side at most `maxSide`. */
async function readMask(path: string, maxSide: number): Promise<{ data: Float32Array; width: number; height: number }> {
  const { image } = await readImage(path, { maxSide });
  const n = image.width * image.height;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (image.data[i] + image.data[n + i] + image.data[2 * n + i]) / (3 * 255);
  return { data, width: image.width, height: image.height };
}

function defaultOutput(content: string | undefined, styles: StyleArg[]): string {
  const style = basename(styles[0].path, extname(styles[0].path));
  if (!content) return `${style}-texture.png`;
  return join(dirname(content), `${basename(content, extname(content))}-${style}.png`);
}

function formatLoss(p: OptimizeProgress): string {
  const e = (v: number): string => v.toExponential(2);
  return `scale ${p.scale + 1}/${p.scales} ${p.width}x${p.height} · loss ${e(p.loss)} (content ${e(p.content)}, style ${e(p.style)}, tv ${e(p.tv)})`;
}

async function run(contentPath: string | undefined, flags: OptimizeFlags): Promise<void> {
  if (flags.style.length === 0) throw new TypeError('Expected at least one --style image');
  const depth = parseInteger('--vgg-depth', flags.vggDepth, 16, 19);
  if (depth !== 16 && depth !== 19) throw new RangeError(`Expected 16 or 19 for --vgg-depth but received ${depth}`);
  const contentLayers = list(flags.contentLayers) ?? DEFAULT_CONTENT_LAYERS;
  const styleLayers = list(flags.styleLayers) ?? DEFAULT_STYLE_LAYERS;
  checkTaps(depth as VggDepth, [...contentLayers, ...styleLayers]);
  const output = await placeOutput(flags.output, defaultOutput(contentPath, flags.style));
  const inputs = [contentPath, flags.contentMask, ...flags.style.flatMap((s) => [s.path, s.mask])].filter((p): p is string => p !== undefined);
  await checkImageOutput(output, inputs);
  const json = Boolean(flags.json);
  const number = (name: string, text: string | undefined, min?: number, max?: number): number | undefined =>
    text === undefined ? undefined : parseNumber(name, text, min, max);
  const integer = (name: string, text: string | undefined, min?: number, max?: number): number | undefined =>
    text === undefined ? undefined : parseInteger(name, text, min, max);
  const scales = list(flags.scales)?.map((s) => parseInteger('--scales', s, 16, 16384));
  const saveEvery = integer('--save-every', flags.saveEvery, 1);
  const size = integer('--size', flags.size, 16, 16384);
  const styleScale = number('--style-scale', flags.styleScale, 0.05, 8);

  // Read every input before the (possibly long) weights download and optimisation, shrunk while
  // decoding to the largest size the optimisation uses (a huge photo is never held whole).
  const outputSide = scales?.at(-1) ?? size ?? DEFAULTS.size;
  const styleSide = Math.ceil(outputSide * (styleScale ?? DEFAULTS.styleScale));
  const content = contentPath ? (await readImage(contentPath, { maxSide: outputSide })).image : undefined;
  const styles: StyleInput[] = [];
  for (const s of flags.style) {
    styles.push({
      image: (await readImage(s.path, { maxSide: content ? styleSide : Math.max(styleSide, outputSide) })).image,
      weight: s.weight, mask: s.mask ? await readMask(s.mask, outputSide) : undefined,
    });
  }
  const contentMask = flags.contentMask ? await readMask(flags.contentMask, outputSide) : undefined;
  // Masks are checked here too, so a wrong one is refused before the VGG weights are fetched.
  if (content) {
    for (const [i, s] of flags.style.entries()) if (styles[i].mask) checkMaskAspect(`--style-mask ${s.mask}`, styles[i].mask!, content);
    if (contentMask) checkMaskAspect(`--content-mask ${flags.contentMask}`, contentMask, content);
  }

  const { signal, dispose } = interruptSignal();
  try {
    const download = createProgressBar('VGG weights', 'MiB', { enabled: !json && process.stderr.isTTY });
    const resolved = await resolveVggWeights({
      vgg: flags.vgg, depth: depth as VggDepth, signal,
      onProgress: (received, total) => download.update(Math.round(received / 2 ** 20), total ? Math.round(total / 2 ** 20) : null),
    });
    download.done();
    const vgg = await loadVggWeights(resolved.path, { depth: depth as VggDepth, lastTap: deepestTap(depth as VggDepth, [...contentLayers, ...styleLayers]) });

    const bar = createProgressBar('optimise', 'it', { enabled: !json && process.stderr.isTTY });
    const ext = extname(output);
    const result = await optimizeImage({
      content, styles, vgg, contentMask, signal,
      size,
      scales,
      iterations: integer('--iterations', flags.iterations, 0, 100000),
      optimizer: flags.optimizer,
      learningRate: number('--learning-rate', flags.learningRate, 0),
      contentWeight: number('--content-weight', flags.contentWeight, 0),
      styleWeight: number('--style-weight', flags.styleWeight, 0),
      tvWeight: number('--tv-weight', flags.tvWeight, 0),
      contentLayers, styleLayers,
      styleLayerWeights: list(flags.styleLayerWeights)?.map((w) => parseNumber('--style-layer-weights', w, 0)),
      pooling: flags.pooling,
      init: flags.init,
      seed: integer('--seed', flags.seed, 0, 2 ** 32 - 1),
      styleScale,
      preserveColors: flags.preserveColors,
      runtime: runtimeOptions(flags),
      onProgress: (p) => bar.update(p.iteration, p.iterations, formatLoss(p)),
      snapshotEvery: saveEvery,
      onSnapshot: saveEvery ? async (image: RgbImage, p) => {
        const path = join(dirname(output), `${basename(output, ext)}.scale${p.scale + 1}.iter${String(p.iteration).padStart(4, '0')}${ext}`);
        await writeImage(path, image);
        bar.log(`saved ${path}`);
      } : undefined,
    });
    bar.done();
    await writeImage(output, result.image);
    const summary = {
      output, width: result.image.width, height: result.image.height, seconds: result.seconds, evaluations: result.evaluations,
      interrupted: result.aborted, history: result.history,
    };
    const last = result.history.at(-1)!;
    report(json, summary, `${output} (${result.image.width}x${result.image.height}, ${result.evaluations} evaluations, ${result.seconds.toFixed(1)} s; ` +
      `style loss ${result.history[0].first.style.toExponential(2)} → ${last.last.style.toExponential(2)})` +
      (result.aborted ? ' — interrupted: this is the best image so far' : ''));
    if (result.aborted) process.exitCode = 130;
  } finally {
    dispose();
  }
}

export function optimizeCommand(): Command {
  const command = new Command('optimize')
    .description('Gatys et al. style transfer: optimise the image so its VGG features match the content and its Gram matrices the style(s); slow, but needs no trained model')
    .argument('[content]', 'the content image; leave it out to synthesise a texture from the style(s)')
    .option('-s, --style <path[:weight]>', 'a style image, with an optional blend weight (repeat for several styles; default weight 1)', collectStyle, [])
    .option('--style-mask <path>', 'where the preceding --style applies: a mask image (white = this style) of the content\'s aspect ratio', (value: string, _prev: unknown) => value)
    .option('--content-mask <path>', 'where the content loss applies (white = keep the content) (default: everywhere)')
    .option('-o, --output <path>', 'output image (default: <content>-<style>.png beside the content)')
    .option('--size <pixels>', `longer side of the result (default: ${DEFAULTS.size}, or the content's size if smaller)`)
    .option('--scales <list>', 'coarse-to-fine schedule of longer sides, e.g. 256,512,1024; each scale starts from the previous result (default: one scale, --size)')
    .option('--iterations <n>', `optimiser iterations per scale (default: ${DEFAULTS.iterations})`)
    .addOption(new Option('--optimizer <name>', 'lbfgs (few, strong steps) or adam (cheap steps)').choices(['lbfgs', 'adam']).default('lbfgs'))
    .option('--learning-rate <x>', 'adam: step in grey levels; lbfgs: step multiplier (default: 10 for adam, 1 for lbfgs)')
    .option('--content-weight <x>', `weight of the content loss (default: ${DEFAULTS.contentWeight})`)
    .option('--style-weight <x>', `weight of the style loss (default: ${DEFAULTS.styleWeight})`)
    .option('--tv-weight <x>', `weight of the total-variation smoothness loss (default: ${DEFAULTS.tvWeight})`)
    .option('--content-layers <list>', `VGG layers for the content loss (default: ${DEFAULT_CONTENT_LAYERS.join(',')})`)
    .option('--style-layers <list>', `VGG layers for the style loss (default: ${DEFAULT_STYLE_LAYERS.join(',')})`)
    .option('--style-layer-weights <list>', 'one weight per style layer (default: 1 each)')
    .addOption(new Option('--pooling <kind>', 'VGG pooling: max, or avg as Gatys et al. suggest').choices(['max', 'avg']).default('max'))
    .addOption(new Option('--init <from>', 'starting image (default: content, or noise without a content image)').choices(['content', 'noise', 'style']))
    .option('--seed <n>', 'seed for noise initialisation, so runs repeat exactly (default: 1)')
    .option('--style-scale <x>', 'resize style images to this fraction of the result\'s size: smaller gives larger brush strokes (default: 1)')
    .addOption(new Option('--preserve-colors <mode>', "keep the content's colours: luminance (transfer on brightness only) or histogram (recolour the style to the content's palette first) (default: off)").choices(['luminance', 'histogram']))
    .option('--vgg <path>', 'VGG weights: Keras .h5, PyTorch .pth, TF.js model folder or .safetensors (default: $PASTICHE_VGG, else downloaded once into the model store)')
    .addOption(new Option('--vgg-depth <n>', 'VGG16 or VGG19').choices(['16', '19']).default('19'))
    .option('--save-every <n>', 'also write the image every n iterations, beside the output (default: off)')
    .option('--json', 'print the result as JSON on stdout', false);
  addRuntimeOptions(command);
  // --style-mask attaches to the --style before it, so options are read in order.
  command.on('option:style-mask', (path: string) => {
    const styles = command.getOptionValue('style') as StyleArg[];
    if (styles.length === 0) throw new TypeError('--style-mask must follow the --style it applies to');
    styles[styles.length - 1].mask = path;
  });
  return command.action(async (content: string | undefined, flags: OptimizeFlags) => run(content, flags));
}
