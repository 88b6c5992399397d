import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile, access, constants } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { FileError, messageOf } from './errors.js';

/**
 * A temporary path beside `target` (same directory, so the final rename is atomic), keeping the
 * extension so tools that pick a format by extension (sharp, ffmpeg) still see the right one.
 */
export function tempPathFor(target: string): string {
  const ext = extname(target);
  const stem = basename(target, ext);
  return join(dirname(target), `.${stem}.pastiche-tmp-${randomBytes(4).toString('hex')}${ext}`);
}

/** Checks that `target`'s directory exists (creating it) and is writable, before any work is done. */
export async function ensureWritableDir(target: string): Promise<void> {
  const dir = dirname(target);
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new FileError(target, `cannot write here (${messageOf(error)})`, { cause: error });
  }
}

/**
 * Runs `write` against a temporary path and renames it to `target` only if it succeeds;
 * on failure (or cancellation) the temporary file is removed and `target` is untouched.
 */
export async function writeAtomically<T>(target: string, write: (tempPath: string) => Promise<T>): Promise<T> {
  await ensureWritableDir(target);
  const temp = tempPathFor(target);
  try {
    const result = await write(temp);
    await rename(temp, target);
    return result;
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Writes bytes to `target` atomically. */
export async function writeFileAtomically(target: string, data: Uint8Array | string): Promise<void> {
  await writeAtomically(target, (temp) => writeFile(temp, data));
}
