/** `pastiche stylize`: feed-forward style transfer of an image, a folder or a video. */
import { Command, Option } from 'commander';
import { basename, dirname, extname, join } from 'node:path';
import { stat } from 'node:fs/promises';
import { openStyleModel } from '../style/model.js';
import { realtimeModelName } from '../style/realtime.js';
import { COLOR_MODES, DEFAULT_STATS_SIZE, checkTile, stylizeFile, stylizeFolder, stylizeVideo, type StylizeOptions } from '../style/transfer.js';
import { WRITABLE_IMAGE_EXTENSIONS } from '../image/codec.js';
import { DEFAULT_MAX_MEMORY } from '../image/budget.js';
import { modelTag, placeOutput, resolveImageOutput } from '../image/output.js';
import { AbortError, FileError } from '../util/errors.js';
import { refuseOverwritingInputs } from '../util/same-file.js';
import { checkVideoOutput } from '../video/encode.js';
import { parseInteger, parseNumber } from '../util/validate.js';
import { addRuntimeOptions, interruptSignal, report, runtimeOptions } from './common.js';
import { createProgressBar } from './progress.js';

export const VIDEO_EXTENSIONS = ['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi'];

interface StylizeFlags {
  model: string;
  output?: string;
  size?: string;
  tile?: string;
  tileOverlap?: string;
  fastStats?: boolean;
  statsSize?: string;
  realtime?: boolean;
  margin?: string;
  strength?: string;
  preserveColors?: (typeof COLOR_MODES)[number];
  maxMemory?: string;
  format?: string;
  crf?: string;
  temporal?: string;
  threads?: string;
  executionProvider?: string;
  json?: boolean;
}

/** Default outputs for folders and videos; an image's goes through the output door (resolveImageOutput). */
function defaultOutput(input: string, model: string, kind: 'folder' | 'video'): string {
  const tag = modelTag(model);
  if (kind === 'folder') return `${input.replace(/[/\\]+$/, '')}-${tag}`;
  return join(dirname(input), `${basename(input, extname(input))}-${tag}.mp4`);
}

/** A video's output: `--output` a file, or a folder to write the default name into; checked before any work. */
async function resolveVideoOutput(input: string, output: string | undefined, model: string): Promise<string> {
  const target = await placeOutput(output, defaultOutput(input, model, 'video'));
  await refuseOverwritingInputs([{ input, output: target }]);
  await checkVideoOutput(target);
  return target;
}

const GiB = 2 ** 30;

function checkStatsSize(flags: StylizeFlags): number {
  const size = parseInteger('--stats-size', flags.statsSize!, 64, 65536);
  if (!flags.fastStats) throw new RangeError(`Expected --fast-stats with --stats-size but received --stats-size ${size} alone`);
  return size;
}

function stylizeOptions(flags: StylizeFlags): StylizeOptions {
  return {
    size: flags.size === undefined ? undefined : parseInteger('--size', flags.size, 8, 65536),
    tile: flags.tile === undefined || flags.tile === 'auto' ? 'auto' : checkTile('--tile', parseInteger('--tile', flags.tile, 0, 65536)),
    tileOverlap: flags.tileOverlap === undefined ? undefined : parseInteger('--tile-overlap', flags.tileOverlap, 0, 4096),
    fastStats: flags.fastStats,
    statsSize: flags.statsSize === undefined ? undefined : checkStatsSize(flags),
    margin: flags.margin === undefined ? undefined : parseInteger('--margin', flags.margin, 0, 1024),
    strength: flags.strength === undefined ? undefined : parseNumber('--strength', flags.strength, 0, 1),
    preserveColors: flags.preserveColors,
    temporal: flags.temporal === undefined ? undefined : parseNumber('--temporal', flags.temporal, 0, 1),
    maxMemory: flags.maxMemory === undefined ? undefined : Math.round(parseNumber('--max-memory', flags.maxMemory, 0.0001) * GiB),
  };
}

/** "interrupted; 3 finished images kept in out, the rest not written", for main's last line. */
function interruptedFolder(error: AbortError, output: string): AbortError {
  const n = error.kept.length;
  if (n === 0) return error;
  return new AbortError(`interrupted; ${n} finished image${n === 1 ? '' : 's'} kept in ${output}, the rest not written`, error.kept);
}

async function run(input: string, given: StylizeFlags): Promise<void> {
  // --realtime swaps the style for its real-time network before anything is named after the model.
  const flags = given.realtime ? { ...given, model: await realtimeModelName(given.model) } : given;
  const info = await stat(input).catch(() => null);
  if (!info) throw new FileError(input, 'no such file or directory');
  const kind = info.isDirectory() ? 'folder' : VIDEO_EXTENSIONS.includes(extname(input).toLowerCase()) ? 'video' : 'image';
  const options = stylizeOptions(flags);
  const format = flags.format === undefined ? undefined : `.${flags.format.replace(/^\./, '').toLowerCase()}`;
  if (format !== undefined && !WRITABLE_IMAGE_EXTENSIONS.includes(format)) {
    throw new RangeError(`Expected one of ${WRITABLE_IMAGE_EXTENSIONS.join(', ')} for --format but received '${flags.format}'`);
  }
  const crf = flags.crf === undefined ? undefined : parseInteger('--crf', flags.crf, 0, 51);
  // Blending needs a previous frame; an image or a folder given it is a mistaken command, not a no-op.
  if (options.temporal !== undefined && kind !== 'video') {
    throw new RangeError(`Expected a video input for --temporal but received the ${kind} ${input}`);
  }
  // An image's or a video's output is decided and checked here, before the model is even loaded.
  const output = kind === 'image' ? await resolveImageOutput(input, flags.output, modelTag(flags.model))
    : kind === 'video' ? await resolveVideoOutput(input, flags.output, flags.model)
    : flags.output ?? defaultOutput(input, flags.model, kind);
  const style = await openStyleModel(flags.model, runtimeOptions(flags));
  const { signal, dispose } = interruptSignal();
  const json = Boolean(flags.json);
  const started = performance.now();
  try {
    if (kind === 'image') {
      const bar = createProgressBar('tiles', 'tiles', { enabled: !json && process.stderr.isTTY });
      const result = await stylizeFile(style, input, output, { ...options, signal, onTile: (d, t) => bar.update(d, t) });
      bar.done();
      const seconds = (performance.now() - started) / 1000;
      report(json, { input, ...result, seconds }, `${result.output} (${result.width}x${result.height}, ${seconds.toFixed(2)} s)`);
    } else if (kind === 'folder') {
      const bar = createProgressBar('images', 'img', { enabled: !json && process.stderr.isTTY });
      const result = await stylizeFolder(style, input, output, {
        ...options, format, signal,
        onProgress: (p) => {
          // Each skip is printed once, as it happens; the summary only counts them.
          if (p.error && !json) bar.log(`skipped ${p.error}`);
          bar.update(p.done, p.total, basename(p.file));
        },
      }).catch((error: unknown) => {
        throw error instanceof AbortError ? interruptedFolder(error, output) : error;
      });
      bar.done();
      const seconds = (performance.now() - started) / 1000;
      report(json, { input, output, ...result, seconds },
        `${output}: ${result.written.length} written, ${result.failed.length} skipped (${seconds.toFixed(1)} s)`);
      if (result.failed.length > 0) process.exitCode = 1;
    } else {
      const bar = createProgressBar('frames', 'frames', { enabled: !json && process.stderr.isTTY });
      const result = await stylizeVideo(style, input, output, { ...options, crf, signal, onProgress: (p) => bar.update(p.frame, p.total) });
      bar.done();
      report(json, { input, output, ...result },
        `${output} (${result.frames} frames, ${result.width}x${result.height} @ ${result.fps}, ${(result.frames / result.seconds).toFixed(1)} fps)`);
    }
  } finally {
    dispose();
  }
}

export function stylizeCommand(): Command {
  const command = new Command('stylize')
    .description('Repaint an image, every image in a folder, or a video with a trained style model (one network pass per image or frame)')
    .argument('<input>', "an image (JPEG, PNG, WebP, AVIF, TIFF, GIF), a folder of images (recursive; links inside are not followed), or a video (mp4, mov, mkv, webm, avi)")
    .requiredOption('-m, --model <model>', 'a model store name (see `pastiche models list`), an .onnx file, or a checkpoint folder')
    .option('--realtime', "use the style's real-time network: the store model <model>-rt, or <model> itself when it is one (default: off, the model as named)", false)
    .option('-o, --output <path>', 'output file, or a folder to write <input>-<model>.<ext> into (default: beside the input, named <input>-<model>; a GIF gives a PNG)')
    .option('--size <pixels>', 'resize so the longer side has this many pixels, while decoding (default: keep the size)')
    .option('--max-memory <GiB>', `memory budget for one image, checked from its header before decoding (default: ${DEFAULT_MAX_MEMORY / GiB})`)
    .option('--strength <0..1>', 'how much style: 0 returns the content, 1 the full network output (default: 1)')
    .addOption(new Option('--preserve-colors <mode>', "keep the content's colours: luminance (style on brightness only) or histogram (match each channel's histogram to the content) (default: off)").choices([...COLOR_MODES]))
    .option('--margin <pixels>', 'reflected border added while the network runs, hiding the frame its padding paints at the edges; 0 is fastest (default: 48 for imported and zero-padded networks, 0 for the reflection-padded pastiche architectures, which paint no frame)')
    .option('--tile <pixels|auto>', 'run large images in overlapping tiles of this size; 0 never tiles (default: auto, above ~4 MP)')
    .option('--tile-overlap <pixels>', 'overlap between tiles; the network sees this much context past each seam (default: 64)')
    .option('--fast-stats', 'tiled images (above ~4 MP): instance-norm statistics from one run over a downscaled copy, then one pass over the tiles: ~8x less work than the default exact statistics (one pass over every tile per norm), but not the same picture (~21 dB PSNR against exact on a 4000x3000 photo: the texture changes) (default: off, exact)', false)
    .option('--stats-size <pixels>', `with --fast-stats: longer side of the downscaled copy (default: ${DEFAULT_STATS_SIZE})`)
    .option('--format <ext>', 'for folders: write every image in this format (png, jpg, webp, avif, tiff) (default: keep each extension; GIF becomes png)')
    .option('--crf <0..51>', 'for videos: H.264 quality, lower is better (default: 18)')
    .option('--temporal <0..1>', 'for videos: against flicker, keep this much of the previous output frame where the input frame is unchanged (motion and cuts take the new one) (default: 0, off)')
    .option('--json', 'print the result as JSON on stdout', false);
  addRuntimeOptions(command);
  return command.action(async (input: string, flags: StylizeFlags) => run(input, flags));
}
