/** `pastiche stylize`: feed-forward style transfer of an image, a folder or a video. */
import { Command, Option } from 'commander';
import { basename, dirname, extname, join } from 'node:path';
import { stat } from 'node:fs/promises';
import { openStyleModel } from '../style/model.js';
import { COLOR_MODES, checkTile, stylizeFile, stylizeFolder, stylizeVideo, type StylizeOptions } from '../style/transfer.js';
import { WRITABLE_IMAGE_EXTENSIONS } from '../image/codec.js';
import { FileError } from '../util/errors.js';
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
  margin?: string;
  strength?: string;
  preserveColors?: (typeof COLOR_MODES)[number];
  format?: string;
  crf?: string;
  threads?: string;
  executionProvider?: string;
  json?: boolean;
}

function defaultOutput(input: string, model: string, kind: 'image' | 'folder' | 'video'): string {
  const tag = basename(model, extname(model)).replace(/[^\w.-]/g, '_');
  if (kind === 'folder') return `${input.replace(/[/\\]+$/, '')}-${tag}`;
  const ext = extname(input);
  return join(dirname(input), `${basename(input, ext)}-${tag}${kind === 'video' ? '.mp4' : ext}`);
}

function stylizeOptions(flags: StylizeFlags): StylizeOptions {
  return {
    size: flags.size === undefined ? undefined : parseInteger('--size', flags.size, 8, 65536),
    tile: flags.tile === undefined || flags.tile === 'auto' ? 'auto' : checkTile('--tile', parseInteger('--tile', flags.tile, 0, 65536)),
    tileOverlap: flags.tileOverlap === undefined ? undefined : parseInteger('--tile-overlap', flags.tileOverlap, 0, 4096),
    margin: flags.margin === undefined ? undefined : parseInteger('--margin', flags.margin, 0, 1024),
    strength: flags.strength === undefined ? undefined : parseNumber('--strength', flags.strength, 0, 1),
    preserveColors: flags.preserveColors,
  };
}

async function run(input: string, flags: StylizeFlags): Promise<void> {
  const info = await stat(input).catch(() => null);
  if (!info) throw new FileError(input, 'no such file or directory');
  const kind = info.isDirectory() ? 'folder' : VIDEO_EXTENSIONS.includes(extname(input).toLowerCase()) ? 'video' : 'image';
  const options = stylizeOptions(flags);
  const format = flags.format === undefined ? undefined : `.${flags.format.replace(/^\./, '').toLowerCase()}`;
  if (format !== undefined && !WRITABLE_IMAGE_EXTENSIONS.includes(format)) {
    throw new RangeError(`Expected one of ${WRITABLE_IMAGE_EXTENSIONS.join(', ')} for --format but received '${flags.format}'`);
  }
  const crf = flags.crf === undefined ? undefined : parseInteger('--crf', flags.crf, 0, 51);
  const output = flags.output ?? defaultOutput(input, flags.model, kind);
  const style = await openStyleModel(flags.model, runtimeOptions(flags));
  const { signal, dispose } = interruptSignal();
  const json = Boolean(flags.json);
  const started = performance.now();
  try {
    if (kind === 'image') {
      const bar = createProgressBar('tiles', 'tiles', { enabled: !json && process.stderr.isTTY });
      const size = await stylizeFile(style, input, output, { ...options, signal, onTile: (d, t) => bar.update(d, t) });
      bar.done();
      const seconds = (performance.now() - started) / 1000;
      report(json, { input, output, ...size, seconds }, `${output} (${size.width}x${size.height}, ${seconds.toFixed(2)} s)`);
    } else if (kind === 'folder') {
      const bar = createProgressBar('images', 'img', { enabled: !json && process.stderr.isTTY });
      const result = await stylizeFolder(style, input, output, {
        ...options, format, signal,
        onProgress: (p) => {
          if (p.error && !json) bar.log(`skipped ${p.error}`);
          bar.update(p.done, p.total, basename(p.file));
        },
      });
      bar.done();
      const seconds = (performance.now() - started) / 1000;
      report(json, { input, output, ...result, seconds },
        `${output}: ${result.written.length} written, ${result.failed.length} skipped (${seconds.toFixed(1)} s)` +
        result.failed.map((f) => `\n  skipped ${f.error}`).join(''));
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
    .argument('<input>', 'an image (JPEG, PNG, WebP, AVIF, TIFF), a folder of images (recursive), or a video (mp4, mov, mkv, webm, avi)')
    .requiredOption('-m, --model <model>', 'a model store name (see `pastiche models list`), an .onnx file, or a checkpoint folder')
    .option('-o, --output <path>', 'output file or folder (default: beside the input, named <input>-<model>)')
    .option('--size <pixels>', 'resize so the longer side has this many pixels (default: keep the size)')
    .option('--strength <0..1>', 'how much style: 0 returns the content, 1 the full network output (default: 1)')
    .addOption(new Option('--preserve-colors <mode>', "keep the content's colours: luminance (style on brightness only) or histogram (match each channel's histogram to the content) (default: off)").choices([...COLOR_MODES]))
    .option('--margin <pixels>', 'reflected border added while the network runs, hiding the frame its padding paints at the edges; 0 is fastest (default: 32)')
    .option('--tile <pixels|auto>', 'run large images in overlapping tiles of this size; 0 never tiles (default: auto, above ~4 MP)')
    .option('--tile-overlap <pixels>', 'overlap between tiles; the network sees this much context past each seam (default: 128)')
    .option('--format <ext>', 'for folders: write every image in this format (png, jpg, webp, avif, tiff) (default: keep each extension)')
    .option('--crf <0..51>', 'for videos: H.264 quality, lower is better (default: 18)')
    .option('--json', 'print the result as JSON on stdout', false);
  addRuntimeOptions(command);
  return command.action(async (input: string, flags: StylizeFlags) => run(input, flags));
}
