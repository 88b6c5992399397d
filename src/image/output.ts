/**
 * The OUTPUT door for images: where a run writes, decided and checked before any work, the same
 * for the library, the CLI and the server. An output is a format pastiche can write, never one of
 * the inputs, and in a place that can be written; nothing is created here (folders are made when
 * the file is written, and removed again if that fails).
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { WRITABLE_IMAGE_EXTENSIONS, outputFormatProblem } from './codec.js';
import { checkWritableDir } from '../util/atomic.js';
import { FileError } from '../util/errors.js';
import { refuseOverwritingAnyInput } from '../util/same-file.js';

/** The output extension when the input's own cannot be written (GIF). */
export const FALLBACK_EXTENSION = '.png';

/** A model's name as it appears in default output names: its file or store name, safe in a file name. */
export function modelTag(label: string): string {
  return basename(label.replace(/[/\\]+$/, ''), extname(label)).replace(/[^\w.-]/g, '_');
}

/** `input`'s extension when pastiche can write it, else {@link FALLBACK_EXTENSION} (a GIF becomes a PNG). */
export function outputExtension(input: string): string {
  const ext = extname(input);
  return WRITABLE_IMAGE_EXTENSIONS.includes(ext.toLowerCase()) ? ext : FALLBACK_EXTENSION;
}

/**
 * The file stylising `input` with the model tagged `tag` writes, given `--output` as the user
 * gave it: none → `<input stem>-<tag><ext>` beside the input; an existing folder, or a path ending
 * in '/' → that name inside it; otherwise the file named, whose extension must be one pastiche
 * writes. The extension is the input's, or .png where that cannot be written (GIF).
 *
 * @example await resolveImageOutput('in/photo.gif', 'out/', 'la_muse'); // 'out/photo-la_muse.png'
 * @throws {FileError} naming the output when its format cannot be written (listing those that
 *   can), when it is the input, or when its folder cannot be written — all before any work.
 */
export async function resolveImageOutput(input: string, output: string | undefined, tag: string): Promise<string> {
  const target = await placeOutput(output, join(dirname(input), `${basename(input, extname(input))}-${tag}${outputExtension(input)}`));
  await checkImageOutput(target, [input]);
  return target;
}

/**
 * Where `--output` as the user gave it puts a file whose default path is `defaultPath`: none →
 * `defaultPath`; an existing folder, or a path ending in '/' → the default's name inside it;
 * otherwise the path given.
 */
export async function placeOutput(output: string | undefined, defaultPath: string): Promise<string> {
  if (output === undefined) return defaultPath;
  return /[/\\]$/.test(output) || (await isFolder(output)) ? join(output, basename(defaultPath)) : output;
}

/**
 * Checks, before any work and creating nothing, that the image file `target` can be written by a
 * run reading `inputs`: a format pastiche writes, none of the inputs, a writable place.
 *
 * @throws {FileError} naming `target` with the reason.
 */
export async function checkImageOutput(target: string, inputs: readonly string[]): Promise<void> {
  const problem = outputFormatProblem(target);
  if (problem !== undefined) throw new FileError(target, problem);
  await refuseOverwritingAnyInput(target, inputs);
  await checkWritableDir(target);
}

/**
 * Checks a folder run's output folder before any work: not a file, and inside a writable folder.
 * @throws {FileError} naming `outputDir`.
 */
export async function checkOutputFolder(outputDir: string): Promise<void> {
  const info = await stat(outputDir).catch(() => null);
  if (info !== null && !info.isDirectory()) throw new FileError(outputDir, 'is a file, not a folder; a folder run writes into a folder');
  await checkWritableDir(join(outputDir, 'x'));
}

async function isFolder(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}
